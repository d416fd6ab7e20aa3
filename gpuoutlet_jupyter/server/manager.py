"""The plain manager behind the handlers: settings, RentalService's lifecycle, JSON-ready views.

No tornado here: the handlers parse a request, call one method, and write what it returns.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from .._version import __version__
from ..api import AsyncRentalsClient, ConfigurationError, Settings
from ..api.settings import DEFAULT_API_URL, ENV_SID, default_credentials_file, normalize_url
from ..rest.errors import ExtensionUnavailableError
from ..rest.layer import JsonAPI, status_reply
from ..service import RentalService
from ..service.build import build_service
from ..service.idle import ActivitySource, default_idle_minutes
from ..service.options import ServiceConfig

log = logging.getLogger(__name__)

#: Where the sid came from when it is set in the Jupyter server's own configuration.
SID_SETTING_SOURCE = "the GpuOutletApp.sid setting of the Jupyter server"
#: How a person sets a sid for the server (appended to "not configured" messages).
_RESTART_HINT = (
    " Then restart the Jupyter server (or set c.GpuOutletApp.sid in jupyter_server_config.py)."
)

ClientFactory = Callable[[Settings], AsyncRentalsClient]


@dataclass(frozen=True)
class ManagerConfig:
    """What the manager needs, from the ExtensionApp's traitlets."""

    service: ServiceConfig
    #: Empty: GPUOUTLET_API_URL, then the credentials file, then https://gpuoutlet.ai.
    api_url: str = ""
    #: None: GPUOUTLET_SID, then the credentials file.
    sid: SecretStr | None = None
    #: The cap on a long-poll's ``wait``, in seconds.
    max_wait: float = 60.0
    #: How long a request waits for the service to finish starting before a 503.
    start_timeout: float = 60.0


def resolve_settings(config: ManagerConfig) -> tuple[Settings, str | None]:
    """The client settings, and the reason the extension cannot talk to the API (or None).

    The environment and the credentials file are read by ``Settings.from_env`` only; settings
    made in the server's configuration take precedence over them.
    """
    try:
        if config.api_url and config.sid is not None:
            settings = Settings(
                api_url=normalize_url(config.api_url), sid=config.sid, sid_source=SID_SETTING_SOURCE
            )
        else:
            settings = Settings.from_env()
            if config.api_url:
                settings = replace(settings, api_url=normalize_url(config.api_url))
            if config.sid is not None:
                settings = replace(settings, sid=config.sid, sid_source=SID_SETTING_SOURCE)
    except ConfigurationError as exc:
        fallback = config.api_url.strip().rstrip("/") or DEFAULT_API_URL
        return Settings(api_url=fallback), str(exc)
    settings = replace(settings, timeout_seconds=config.service.request_timeout)
    if settings.sid is None or not settings.sid.get_secret_value().strip():
        return settings, not_configured_message(settings.api_url)
    return settings, None


def not_configured_message(api_url: str) -> str:
    """How to give the server a sid, for the 503 ``not_configured`` answer and the status."""
    return (
        f"No gpuoutlet session is configured for {api_url}. Sign in on the website, copy the "
        f"`sid` cookie, and either set {ENV_SID}=<sid> in the environment the Jupyter server "
        f"starts from, or write `sid=<sid>` to {default_credentials_file()} and run "
        f"`chmod 600` on it.{_RESTART_HINT}"
    )


class RentalsManager:
    """Hosts one RentalService for the server: built and started on the live loop, closed at stop.

    Without a sid (or with unusable settings) it still exists: every call raises a
    ConfigurationError saying how to fix it, and ``status()`` says ``configured: false``.
    """

    def __init__(
        self,
        config: ManagerConfig,
        *,
        client_factory: ClientFactory | None = None,
        activity: ActivitySource | None = None,
    ) -> None:
        self.config = config
        self.activity = activity
        self.settings, self._problem = resolve_settings(config)
        #: Makes the service's client from the settings (at ``start``).
        self.client_factory: ClientFactory = client_factory or AsyncRentalsClient
        self._service: RentalService | None = None
        self._state = "new"
        self._ready = asyncio.Event()
        #: The JSON layer the handlers call (shared with the in-process host).
        self.api = JsonAPI(self.service)
        #: ``{base_url}proxy/`` when jupyter-server-proxy serves this server (set at start).
        self.proxy_base: str | None = None

    # Lifecycle.

    async def start(self) -> None:
        """Build the client, the SSH writer and the service, and start watching. Never raises."""
        if self._state != "new":
            return
        self._state = "starting"
        try:
            if self._problem is not None:
                log.warning("gpuoutlet: %s", self._problem)
                return
            try:
                service = self._build_service()
            except ConfigurationError as exc:
                self._problem = str(exc)
                log.warning("gpuoutlet: %s", self._problem)
                return
            except Exception as exc:
                # The client is built from the sid: an unexpected error here may carry it in its
                # message or arguments, so only its type is shown.
                self._problem = (
                    f"The gpuoutlet extension could not set up its client ({type(exc).__name__}). "
                    "Check GPUOUTLET_API_URL and the sid's source, then restart the server."
                )
                log.error("gpuoutlet: %s", self._problem)
                return
            try:
                await service.start()
            except Exception as exc:
                # A broken state folder or the like must not take the Jupyter server down.
                log.exception("gpuoutlet: the rental service could not start")
                self._problem = (
                    f"The gpuoutlet extension could not start its rental service "
                    f"({type(exc).__name__}: {exc}). Check the Jupyter server's log and the "
                    f"state folder {self.config.service.state_dir}, then restart the server."
                )
                await self._close_quietly(service, warn_running=False)
                return
            self._service = service
            log.info(
                "gpuoutlet: watching rentals at %s (sid from %s)",
                self.settings.api_url,
                self.settings.sid_source,
            )
        finally:
            self._state = "running" if self._service is not None else "not_configured"
            self._ready.set()

    async def stop(self) -> None:
        """Stop every watcher and close the client; rentals keep running upstream."""
        service, self._service = self._service, None
        self._state = "stopped"
        self._ready.set()
        if service is not None:
            # The server is going away: rentals left running are named in the log.
            await self._close_quietly(service, warn_running=True)

    def _build_service(self) -> RentalService:
        return build_service(
            self.settings,
            self.config.service,
            fix_hint="Fix GpuOutletApp.ssh_dir, ssh_user or identity_file and restart the "
            "Jupyter server.",
            client=self.client_factory(self.settings),
            activity=self.activity,
        )

    @staticmethod
    async def _close_quietly(service: RentalService, *, warn_running: bool) -> None:
        try:
            await service.close(warn_running=warn_running)
        except Exception:
            log.exception("gpuoutlet: error while closing the rental service")

    async def service(self) -> RentalService:
        """The running service, once started; raises a how-to-fix error when there is none."""
        if not self._ready.is_set():
            try:
                await asyncio.wait_for(self._ready.wait(), self.config.start_timeout)
            except asyncio.TimeoutError:
                raise ExtensionUnavailableError(
                    "The gpuoutlet extension is still starting (it reconciles with the rentals "
                    "API first). Try again in a few seconds.",
                    code="starting",
                ) from None
        if self._service is not None:
            return self._service
        if self._state == "stopped":
            raise ExtensionUnavailableError(
                "The gpuoutlet extension is shutting down with the Jupyter server.",
                code="stopped",
            )
        raise ConfigurationError(self._problem or not_configured_message(self.settings.api_url))

    # The status (the rest of the endpoints are ``self.api``'s).

    async def status(self) -> dict[str, Any]:
        """Where the API is, whether (and where from) a sid is set (never its value), who is
        signed in and until when, the version."""
        sid_set = self.settings.sid is not None
        session = problem = None
        if self._service is not None:
            session, problem = await self.api.session()
        options = self.config.service.options
        return status_reply(
            {
                "configured": self._problem is None and sid_set,
                "state": self._state,
                "backend": "server",
                "apiUrl": self.settings.api_url,
                "sidConfigured": sid_set,
                "sidSource": self.settings.sid_source if sid_set else None,
                "problem": self._problem,
                "version": __version__,
                "sshDir": self._ssh_dir(),
                "pollInterval": options.poll_interval,
                "maxPolls": options.max_polls,
                "maxWait": self.config.max_wait,
                "idleStopMinutes": self._idle_default(),
                "idleWarnMinutes": options.idle_warning_minutes,
                "idleGpuUtil": (options.idle_gpu_util or None) if self.activity else None,
                "telemetryInterval": options.telemetry_interval,
                "proxyBase": self.proxy_base,
                "maxHourlySpendCents": options.max_hourly_spend_cents or None,
                # What was wrong with the rentals state file at start (see service/store.py).
                "stateProblems": list(self._service.state_problems) if self._service else [],
            },
            session,
            problem,
        )

    def _ssh_dir(self) -> str:
        return str(self.config.service.ssh_dir or Path(os.path.expanduser("~/.ssh")))

    def _idle_default(self) -> float | None:
        """The idle stop a create gets when it says nothing (None: off, or no kernels to judge)."""
        minutes = self.config.service.options.idle_stop_minutes
        return default_idle_minutes(minutes, can_judge=self.activity is not None)
