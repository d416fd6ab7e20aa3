"""The plain manager behind the handlers: settings, RentalService's lifecycle, sign-in, JSON views.

No tornado here: the handlers parse a request, call one method, and write what it returns.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from .._version import __version__
from ..api import ConfigurationError, Settings
from ..api.settings import (
    DEFAULT_API_URL,
    ENV_SID,
    ENV_SID_SOURCE,
    SIGN_IN_HOW,
    api_url_from_env,
    default_credentials_file,
    normalize_url,
)
from ..rest.host import ClientFactory, ServiceHost
from ..rest.layer import status_reply
from ..saves import SaveOptions
from ..service import RentalService
from ..service.idle import ActivitySource, default_idle_minutes
from ..service.options import ServiceConfig

#: Where the sid came from when it is set in the Jupyter server's own configuration.
SID_SETTING_SOURCE = "the GpuOutletApp.sid setting of the Jupyter server"


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
    #: Saving before a stop, and syncing (``gpuoutlet_jupyter.saves``).
    saves: SaveOptions = field(default_factory=SaveOptions)
    #: Where a relative local folder of a sync is (the server's root folder); None: the cwd.
    local_root: Path | None = None


def resolve_settings(config: ManagerConfig) -> tuple[Settings, str | None]:
    """The client settings, and what keeps the extension from using them (or None).

    The environment and the credentials file are read by ``Settings.from_env`` only; settings
    made in the server's configuration take precedence over them. No sid is no problem: the
    server then waits for a sign-in (the sidebar, ``%gpu_login``).
    """
    try:
        if config.api_url and config.sid is not None:
            settings = Settings(
                api_url=normalize_url(config.api_url), sid=config.sid, sid_source=SID_SETTING_SOURCE
            )
        else:
            settings = Settings.from_env(api_url=config.api_url or None)
            if config.sid is not None:
                settings = replace(settings, sid=config.sid, sid_source=SID_SETTING_SOURCE)
    except ConfigurationError as exc:
        fallback = config.api_url or api_url_from_env() or DEFAULT_API_URL
        return Settings(api_url=fallback.strip().rstrip("/")), str(exc)
    settings = replace(settings, timeout_seconds=config.service.request_timeout)
    if settings.sid is not None and not settings.sid.get_secret_value().strip():
        settings = replace(settings, sid=None, sid_source=None)
    return settings, None


def not_configured_message(api_url: str) -> str:
    """How to give the server a session, for the 503 ``not_configured`` answer and the status."""
    return (
        f"Not signed in to gpuoutlet at {api_url}. {SIGN_IN_HOW}: the server uses the session "
        f"at once and keeps it in {default_credentials_file()} (0600). Or set {ENV_SID}=<sid> "
        "in the environment the Jupyter server starts from (or c.GpuOutletApp.sid) and restart "
        "it."
    )


def pinned_source(settings: Settings) -> str | None:
    """Where a sid comes from that a restart prefers to the credentials file (None: the file)."""
    if settings.sid_source in (ENV_SID_SOURCE, SID_SETTING_SOURCE):
        return settings.sid_source
    return None


class RentalsManager:
    """Hosts one RentalService for the server (a ``ServiceHost``): built and started on the live
    loop, replaced by a sign-in, closed by a sign-out or at stop.

    Without a session (or with unusable settings) it still exists: every call raises a
    ConfigurationError saying how to sign in or fix it, and ``status()`` says why.
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
        settings, problem = resolve_settings(config)
        self.host = ServiceHost(
            settings,
            config.service,
            name="this Jupyter server",
            fix_hint="Fix GpuOutletApp.ssh_dir, ssh_user or identity_file and restart the "
            "Jupyter server.",
            not_signed_in=not_configured_message,
            problem=problem,
            pinned=pinned_source(settings),
            client_factory=client_factory,
            activity=activity,
            start_timeout=config.start_timeout,
            saves=config.saves,
            local_root=config.local_root,
        )
        #: The JSON layer the handlers call (shared with the in-process host).
        self.api = self.host.api
        #: Signing in and out (the ``auth/*`` handlers).
        self.signin = self.host.signin
        #: ``{base_url}proxy/`` when jupyter-server-proxy serves this server (set at start).
        self.proxy_base: str | None = None

    @property
    def settings(self) -> Settings:
        """The settings the current session runs on (the sid only as a SecretStr)."""
        return self.host.settings

    @property
    def client_factory(self) -> ClientFactory:
        """Makes the service's client from the settings (at each start and sign-in)."""
        return self.host.client_factory

    @client_factory.setter
    def client_factory(self, factory: ClientFactory) -> None:
        self.host.client_factory = factory

    # Lifecycle.

    async def start(self) -> None:
        """Build the client, the SSH writer and the service, and start watching. Never raises."""
        await self.host.start()

    async def stop(self) -> None:
        """Stop every watcher and close the client; rentals keep running upstream."""
        await self.host.stop()

    async def service(self) -> RentalService:
        """The running service, once started; raises a how-to-fix error when there is none."""
        return await self.host.service()

    def saw(self, error: BaseException) -> None:
        """A request met ``error`` (gpuoutlet's 401: the session has ended)."""
        self.host.saw(error)

    # The status (the rest of the endpoints are ``self.api``'s and ``self.signin``'s).

    async def status(self) -> dict[str, Any]:
        """Where the API is, whether (and where from) a sid is set (never its value), who is
        signed in and until when, the version."""
        return status_reply(
            await self.host.status(
                {
                    "backend": "server",
                    "version": __version__,
                    "sshDir": self._ssh_dir(),
                    "maxWait": self.config.max_wait,
                    "idleStopMinutes": self._idle_default(),
                    "idleGpuUtil": self._idle_gpu_default(),
                    "proxyBase": self.proxy_base,
                }
            )
        )

    def _ssh_dir(self) -> str:
        return str(self.config.service.ssh_dir or Path(os.path.expanduser("~/.ssh")))

    def _idle_gpu_default(self) -> float | None:
        """The GPU threshold an idle stop gets when a create says nothing (None: off)."""
        percent = self.config.service.options.idle_gpu_util
        return percent if percent > 0 and self.activity is not None else None

    def _idle_default(self) -> float | None:
        """The idle stop a create gets when it says nothing (None: off, or no kernels to judge)."""
        minutes = self.config.service.options.idle_stop_minutes
        return default_idle_minutes(minutes, can_judge=self.activity is not None)
