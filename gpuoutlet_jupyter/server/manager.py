"""The plain manager behind the handlers: settings, RentalService's lifecycle, JSON-ready views.

No tornado here: the handlers parse a request, call one method, and write what it returns.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from .._version import __version__
from ..api import (
    AsyncRentalsClient,
    ConfigurationError,
    RequestValidationError,
    Settings,
)
from ..api.settings import DEFAULT_API_URL, ENV_SID, default_credentials_file, normalize_url
from ..service import RentalService
from ..service.config import ServiceConfig, build_service
from ..service.idle import IDLE_FIELD, ActivitySource, parse_create, parse_idle_minutes
from .errors import ExtensionUnavailableError, InvalidBodyError, InvalidQueryError

log = logging.getLogger(__name__)

#: Where the sid came from when it is set in the Jupyter server's own configuration.
SID_SETTING_SOURCE = "the GpuOutletApp.sid setting of the Jupyter server"
#: How a person sets a sid for the server (appended to "not configured" messages).
_RESTART_HINT = (
    " Then restart the Jupyter server (or set c.GpuOutletApp.sid in jupyter_server_config.py)."
)

ClientFactory = Callable[[Settings], AsyncRentalsClient]
#: What an Idempotency-Key passed through to the API may look like.
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")


@dataclass(frozen=True)
class ManagerConfig:
    """What the manager needs, from the ExtensionApp's traitlets."""

    service: ServiceConfig
    #: Empty: GPUOUTLET_API_URL, then the credentials file, then https://gpuoutlet.ai.
    api_url: str = ""
    #: None: GPUOUTLET_SID, then the credentials file.
    sid: SecretStr | None = None
    request_timeout: float = 30.0
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
    settings = replace(settings, timeout_seconds=config.request_timeout)
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


@dataclass(frozen=True)
class LongPoll:
    """A long-poll request: answer once the version exceeds ``since``, or after ``wait`` s."""

    wait: float
    since: int


def parse_long_poll(wait: str | None, since: str | None, *, max_wait: float) -> LongPoll | None:
    """``?wait=SECONDS&since=VERSION`` → LongPoll (wait capped at ``max_wait``); neither → None."""
    if wait is None and since is None:
        return None
    problems: list[tuple[str, str]] = []
    seconds = 0.0
    version = 0
    if wait is None:
        problems.append(("wait", "is required with since (seconds to wait for a change)"))
    else:
        try:
            seconds = float(wait)
        except ValueError:
            seconds = math.nan
        if not math.isfinite(seconds) or seconds < 0:
            problems.append(("wait", f"must be a number of seconds, 0 or more (got {wait!r})"))
    if since is None:
        problems.append(("since", "is required with wait (the last version you have)"))
    else:
        try:
            version = int(since)
        except ValueError:
            problems.append(("since", f"must be a whole number, a version (got {since!r})"))
    if problems:
        raise InvalidQueryError(problems)
    return LongPoll(wait=min(seconds, max_wait), since=version)


def parse_json_object(body: bytes) -> dict[str, Any]:
    """A request body that must be one JSON object."""
    if not body.strip():
        raise InvalidBodyError(
            "The request has no body: send a JSON object such as "
            '{"familyId": "rtx-4090", "gpuCount": 1}.'
        )
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidBodyError(
            f"The request body is not valid JSON ({exc}). Send a JSON object such as "
            '{"familyId": "rtx-4090", "gpuCount": 1}.'
        ) from None
    except RecursionError:
        # json.loads recurses once per nesting level; no body of ours nests more than twice.
        raise InvalidBodyError(
            "The request body is nested too deeply to be read. Send one flat JSON object such as "
            '{"familyId": "rtx-4090", "gpuCount": 1}.'
        ) from None
    if not isinstance(data, dict):
        raise InvalidBodyError(
            f"The request body must be a JSON object, not a {type(data).__name__}: "
            'for example {"familyId": "rtx-4090", "gpuCount": 1}.'
        )
    return data


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
        self._client_factory: ClientFactory = client_factory or AsyncRentalsClient
        self._service: RentalService | None = None
        self._state = "new"
        self._ready = asyncio.Event()

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
            client=self._client_factory(self.settings),
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

    # Views for the handlers: JSON-ready dicts.

    def status(self) -> dict[str, Any]:
        """Where the API is, whether (and where from) a sid is set (never its value), version."""
        sid_set = self.settings.sid is not None
        return {
            "configured": self._problem is None and sid_set,
            "state": self._state,
            "apiUrl": self.settings.api_url,
            "sidConfigured": sid_set,
            "sidSource": self.settings.sid_source if sid_set else None,
            "problem": self._problem,
            "version": __version__,
            "sshDir": str(self.config.service.ssh_dir or Path("~/.ssh").expanduser()),
            "pollInterval": self.config.service.options.poll_interval,
            "maxPolls": self.config.service.options.max_polls,
            "maxWait": self.config.max_wait,
            "idleStopMinutes": self._idle_default(),
            "idleWarnMinutes": self.config.service.options.idle_warning_minutes,
            # What was wrong with the rentals state file at start (see service/store.py).
            "stateProblems": list(self._service.state_problems) if self._service else [],
        }

    def _idle_default(self) -> float | None:
        """The idle stop a create gets when it says nothing (None: off, or no kernels to judge)."""
        minutes = self.config.service.options.idle_stop_minutes
        return minutes if minutes > 0 and self.activity is not None else None

    async def families(self) -> dict[str, Any]:
        families = await (await self.service()).families()
        return {"families": [f.model_dump(mode="json", by_alias=True) for f in families]}

    async def wallet(self) -> dict[str, Any]:
        """The wallet plus the burn of the active rentals and the hours it leaves."""
        return await (await self.service()).wallet_view()

    async def rentals(self, poll: LongPoll | None = None) -> dict[str, Any]:
        """Every tracked rental and the list's version; with ``poll``, once anything changed."""
        service = await self.service()
        if poll is None:
            rentals = service.rentals()
        else:
            rentals = await service.wait_for_any_change(poll.since, poll.wait)
        # No await since the list was read: this version is the one of that list.
        return {"rentals": rentals, "version": service.version}

    async def rental(self, rental_id: str, poll: LongPoll | None = None) -> dict[str, Any]:
        """One rental; with ``poll``, once its version exceeds ``poll.since`` (or at the cap)."""
        service = await self.service()
        if poll is None:
            return await service.rental(rental_id)
        return await service.wait_for_change(rental_id, poll.since, poll.wait)

    async def create(self, body: dict[str, Any], idempotency_key: str | None) -> dict[str, Any]:
        """Validate the camelCase body (the API's fields and ours), then create.

        The key makes retries safe; ``idleStopMinutes`` (ours, not sent upstream) sets the
        rental's idle auto-stop.
        """
        request, idle = parse_create(body)
        if idempotency_key and not _IDEMPOTENCY_KEY.fullmatch(idempotency_key):
            raise RequestValidationError(
                [("Idempotency-Key", "must be 1 to 255 visible ASCII characters, no spaces")]
            )
        service = await self.service()
        return await service.create(
            request, idempotency_key=idempotency_key or None, idle_stop_minutes=idle
        )

    async def stop_rental(self, rental_id: str) -> dict[str, Any]:
        return await (await self.service()).stop(rental_id)

    async def keep(self, rental_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """ "Keep it": restart the idle timer; ``{"idleStopMinutes": N}`` also changes it."""
        unknown = sorted(set(body) - {IDLE_FIELD})
        if unknown:
            raise RequestValidationError(
                [(name, f"is not accepted here: only {IDLE_FIELD} is") for name in unknown]
            )
        minutes = parse_idle_minutes(body.get(IDLE_FIELD))
        return await (await self.service()).keep(rental_id, idle_stop_minutes=minutes)
