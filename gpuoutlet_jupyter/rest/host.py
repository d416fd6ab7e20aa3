"""ServiceHost: one RentalService for a host (the Jupyter server, or a kernel renting by itself),
built from the settings, replaced when the session changes, closed at a sign-out or the end.

The server's manager and the in-process backend both hold one, so both start, sign in and sign
out the same way. A replacement never watches a rental twice (the old service's watchers end
before the new one's start) and never strands a viewer: the old service answers its long-polls
as it closes, the JSON layer then asks the new one, and the new one numbers its rentals above
the old one's last version, so every cursor a viewer holds stays valid.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..api import AsyncRentalsClient, ConfigurationError, GpuOutletError, Settings
from ..api.errors import UnauthorizedError
from ..api.settings import default_credentials_file
from ..saves import SaveOptions, attach_saver, save_status
from ..service import RentalService
from ..service.account import Account, AccountNote, rentals_on_file
from ..service.build import build_service
from ..service.idle import ActivitySource
from ..service.options import ServiceConfig
from .errors import ExtensionUnavailableError
from .layer import JSON, JsonAPI
from .signin import SignInFlow

if TYPE_CHECKING:
    from ..saves.saver import Saver

log = logging.getLogger(__name__)

ClientFactory = Callable[[Settings], AsyncRentalsClient]


class ServiceHost:
    """Hosts one RentalService at a time; every call below is made on the host's event loop.

    Without a session (or with unusable settings) it still exists: ``service()`` raises a
    ConfigurationError saying how to sign in or what to fix, and the status says why.
    """

    def __init__(
        self,
        settings: Settings,
        config: ServiceConfig,
        *,
        name: str,
        fix_hint: str,
        not_signed_in: Callable[[str], str],
        problem: str | None = None,
        pinned: str | None = None,
        credentials_file: Path | None = None,
        client_factory: ClientFactory | None = None,
        activity: ActivitySource | None = None,
        start_timeout: float = 60.0,
        saves: SaveOptions | None = None,
        local_root: Path | None = None,
    ) -> None:
        self.settings = settings
        self.config = config
        #: "this Jupyter server" or "this kernel", for messages.
        self.name = name
        self.fix_hint = fix_hint
        self._not_signed_in = not_signed_in
        #: Where a sid that a restart prefers to the credentials file comes from (the
        #: environment, a setting); None when the file is where the session lives.
        self.pinned = pinned
        self.credentials_file = credentials_file or default_credentials_file()
        self.client_factory: ClientFactory = client_factory or AsyncRentalsClient
        self.activity = activity
        self.start_timeout = start_timeout
        #: Saving before every stop and syncing (``gpuoutlet_jupyter.saves``): one Saver per
        #: service, over its RemoteManager; relative local folders are under ``local_root``.
        self.saves = saves or SaveOptions()
        self.local_root = local_root
        self._saver: Saver | None = None
        self.account_note = AccountNote(config.state_dir)
        self._problem = problem
        self._service: RentalService | None = None
        #: Called with every service built here, before it starts (each session gets a new
        #: one): where the Jupyter server adds its hooks.
        self.on_build: list[Callable[[RentalService], None]] = []
        self._state = "new"
        self._ready = asyncio.Event()
        self._lock = asyncio.Lock()
        # The last version of a service closed here: the next one numbers its rentals above it.
        self._version = 0
        # gpuoutlet answered 401 to this session: it has ended (cleared by a sign-in); what
        # it said, in words.
        self._expired: str | None = None
        #: The JSON layer the handlers (or the in-process backend) call.
        self.api = JsonAPI(self.service, saver=self.saver)
        #: Signing in and out (``rest.signin``).
        self.signin = SignInFlow(self)

    @property
    def state(self) -> str:
        """``new``, ``starting``, ``running``, ``not_configured`` or ``stopped``."""
        return self._state

    @property
    def problem(self) -> str | None:
        """Why there is no service (None: there is one, or it is starting)."""
        if self._service is None and self._problem is None and self.settings.sid is None:
            return self._not_signed_in(self.settings.api_url)
        return self._problem

    @property
    def running(self) -> RentalService | None:
        """The service, if one runs now (no waiting)."""
        return self._service

    # Lifecycle.

    async def start(self) -> None:
        """Build and start the service from the settings. Never raises."""
        if self._state != "new":
            return
        self._state = "starting"
        try:
            await self._launch()
        finally:
            self._settle()

    async def stop(self, *, warn_running: bool = True) -> None:
        """Close the service for good; the rentals keep running upstream (``warn_running``:
        those that may still be billed are named in the log)."""
        async with self._lock:
            service, self._service = self._service, None
            self._state = "stopped"
            self._ready.set()
            if service is not None:
                await self._close_saver()
                await self._close_quietly(service, warn_running=warn_running)

    def check_open(self) -> None:
        """Refuse a sign-in while the host shuts down (nothing would use the session)."""
        if self._state == "stopped":
            raise ExtensionUnavailableError(
                f"gpuoutlet is shutting down with {self.name}: sign in once it runs again.",
                code="stopped",
            )

    async def use_session(self, settings: Settings) -> str | None:
        """Replace the service with one on ``settings`` (a new session); returns why it could
        not start, or None. Viewers keep their long-polls; requests meanwhile wait for it."""
        self.check_open()
        async with self._lock:
            self._ready.clear()
            self._state = "starting"
            try:
                await self._retire(warn_running=False)
                self.settings = settings
                self._problem = None
                self._expired = None
                await self._launch()
            finally:
                self._settle()
            return self._problem

    async def end_session(self) -> list[str]:
        """Close the service and forget the session (a sign-out); returns the ids of the rentals
        that may still be billed, which nothing here watches from now on."""
        async with self._lock:
            self._ready.clear()
            try:
                running = await self._retire(warn_running=True)
                self.settings = replace(self.settings, sid=None, sid_source=None)
                self._problem = None
                self._expired = None
            finally:
                self._settle()
            return running

    async def _retire(self, *, warn_running: bool) -> list[str]:
        service, self._service = self._service, None
        if service is None:
            return []
        running = [str(v["id"]) for v in service.rentals() if _may_cost(v)]
        self._version = max(self._version, service.version)
        await self._close_saver()
        await self._close_quietly(service, warn_running=warn_running)
        return running

    def _settle(self) -> None:
        if self._state != "stopped":
            self._state = "running" if self._service is not None else "not_configured"
        self._ready.set()

    async def _launch(self) -> None:
        if self._problem is not None:
            log.warning("gpuoutlet: %s", self._problem)
            return
        if self.settings.sid is None:
            log.info("gpuoutlet: %s", self.problem)
            return
        try:
            service = build_service(
                self.settings,
                self.config,
                fix_hint=self.fix_hint,
                client=self.client_factory(self.settings),
                activity=self.activity,
            )
        except ConfigurationError as exc:
            self._problem = str(exc)
            log.warning("gpuoutlet: %s", self._problem)
            return
        except Exception as exc:
            # The client is built from the sid: an unexpected error here may carry it in its
            # message or arguments, so only its type is shown.
            self._problem = (
                f"The gpuoutlet extension could not set up its client ({type(exc).__name__}). "
                f"Check the rentals API's URL and the session's source. {self.fix_hint}"
            )
            log.error("gpuoutlet: %s", self._problem)
            return
        service.continue_after(self._version)
        for add in self.on_build:
            add(service)
        # Before the start: a stop made from then on saves first (over the service's one
        # RemoteManager, shared with telemetry and forwards).
        saver = attach_saver(service, self.saves, local_root=self.local_root)
        try:
            await service.start()
        except Exception as exc:
            # A broken state folder or the like must not take the host down.
            log.exception("gpuoutlet: the rental service could not start")
            self._problem = (
                f"The gpuoutlet rental service could not start ({type(exc).__name__}: {exc}). "
                f"Check the state folder {self.config.state_dir}. {self.fix_hint}"
            )
            await self._close_quietly(service, warn_running=False)
            return
        saver.start()
        self._saver = saver
        self._service = service
        log.info(
            "gpuoutlet: watching rentals at %s (session from %s)",
            self.settings.api_url,
            self.settings.sid_source,
        )

    async def _close_saver(self) -> None:
        """Cancel the saver's transfers before its service closes (its connections with it)."""
        saver, self._saver = self._saver, None
        if saver is not None:
            try:
                await saver.close()
            except Exception:
                log.exception("gpuoutlet: error while closing the saver")

    async def saver(self) -> Saver:
        """The running service's saver (raises as ``service()`` does when there is none)."""
        await self.service()
        assert self._saver is not None
        return self._saver

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
                await asyncio.wait_for(self._ready.wait(), self.start_timeout)
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
                f"gpuoutlet is shutting down with {self.name}.", code="stopped"
            )
        raise ConfigurationError(self.problem or self._not_signed_in(self.settings.api_url))

    # The session, as the status and the sign-in see it.

    def saw(self, error: BaseException) -> None:
        """An error a request met: gpuoutlet's 401 means the session has ended."""
        if isinstance(error, UnauthorizedError):
            self._expired = str(error)

    async def session_state(self) -> tuple[str, JSON | None, str | None]:
        """``(state, session, problem)``: signed_in, signed_out, expired or unknown."""
        if self._service is None:
            if self.settings.sid is None:
                return "signed_out", None, self.problem
            return "unknown", None, self.problem
        if self._expired is not None:
            return "expired", None, self._expired
        session, error = await self.api.session()
        if session is not None:
            self.note_account(Account(str(session["userId"]), str(session["email"])))
            return "signed_in", session, None
        if isinstance(error, UnauthorizedError):
            self._expired = str(error)
            return "expired", None, str(error)
        return "unknown", None, str(error) if error is not None else None

    def note_account(self, account: Account) -> None:
        """Remember whose rentals the state dir holds (see ``service.account``)."""
        try:
            self.account_note.write(account)
        except OSError as exc:
            log.warning(
                "gpuoutlet: could not note the account in %s: %s", self.config.state_dir, exc
            )

    @property
    def last_email(self) -> str | None:
        account = self.account_note.read()
        return account.email if account is not None else None

    async def watched(self) -> list[str]:
        """The rentals of the state dir that may still cost money (running service or file)."""
        if self._service is not None:
            return [str(v["id"]) for v in self._service.rentals() if _may_cost(v)]
        try:
            return await asyncio.to_thread(rentals_on_file, self.config.state_dir)
        except (OSError, GpuOutletError):
            return []

    async def status(self, fields: dict[str, Any]) -> dict[str, Any]:
        """The host's part of the status (``StatusView``); ``fields`` add the host's own."""
        state, session, problem = await self.session_state()
        sid_set = self.settings.sid is not None
        options = self.config.options
        service = self._service
        return {
            "configured": self._problem is None and sid_set,
            "state": self._state,
            "apiUrl": self.settings.api_url,
            "sidConfigured": sid_set,
            "sidSource": self.settings.sid_source if sid_set else None,
            "problem": self.problem,
            "pollInterval": options.poll_interval,
            "maxPolls": options.max_polls,
            "idleWarnMinutes": options.idle_warning_minutes,
            "telemetryInterval": options.telemetry_interval,
            "maxHourlySpendCents": options.max_hourly_spend_cents or None,
            # What was wrong with the rentals state file at start (see service/store.py).
            "stateProblems": list(service.state_problems) if service else [],
            # This host's request budget: its share of gpuoutlet's limits, and its use.
            "requestBudget": service.upstream.budget.to_json() if service else None,
            # The rentals API not answering the service's watching: since when, and why.
            "apiProblem": service.health.problem() if service else None,
            "session": session,
            "sessionProblem": problem if state != "signed_in" else None,
            "sessionState": state,
            "lastEmail": self.last_email,
            "credentialsFile": str(self.credentials_file),
            **save_status(self.saves, options.remote_workdir),
            **fields,
        }


def _may_cost(view: dict[str, Any]) -> bool:
    """A rental view that a service would still watch (not final, not gone)."""
    return not view.get("gone") and view.get("status") in ("provisioning", "running", "stopping")
