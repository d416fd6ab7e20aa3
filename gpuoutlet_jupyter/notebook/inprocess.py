"""InProcessBackend: RentalService hosted on a background thread's event loop, for kernels without a server.

Terminal IPython, VS Code and any kernel whose launcher is not a Jupyter server with the
extension use this. The service runs on its own loop in a daemon thread; the kernel's thread
calls it with ``run_coroutine_threadsafe`` through the same JSON layer as the server's handlers
(``rest.layer.JsonAPI``): the same validation, the same create rules, the same replies.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from .._version import __version__
from ..api import ConfigurationError, Settings
from ..api.settings import (
    DEFAULT_API_URL,
    ENV_SID,
    ENV_SID_SOURCE,
    api_url_from_env,
    default_credentials_file,
    normalize_url,
)
from ..rest.host import ServiceHost
from ..rest.kernels import KernelBoard, KernelsJson
from ..rest.layer import LongPoll, status_reply
from ..saves import SaveOptions
from ..service.options import ServiceConfig
from .backend import RentalJSON

T = TypeVar("T")

_CONTEXT = (
    "This kernel was not started by a Jupyter server with the gpuoutlet extension, so it "
    "talks to the rentals API itself"
)


def _not_signed_in(api_url: str) -> str:
    return (
        f"{_CONTEXT}, and it is not signed in to gpuoutlet at {api_url}. Sign in with "
        "`%gpu_login you@example.com` (gpuoutlet emails a 6-digit code; the session is kept in "
        f"{default_credentials_file()}, 0600), or set {ENV_SID}=<sid> in its environment."
    )


#: Seconds ``close()`` gives the service to stop its watchers and save its state.
_CLOSE_TIMEOUT = 10.0


class InProcessBackend:
    """The same RentalService the server hosts, on a private event loop in this process.

    It exists without a session too: the calls then say how to sign in (``%gpu_login``), and a
    sign-in starts the service at once, as the server's does (one ``ServiceHost``).
    """

    kind = "in-process"

    def __init__(
        self,
        config: ServiceConfig,
        *,
        note: str | None = None,
        settings: Settings | None = None,
        saves: SaveOptions | None = None,
    ) -> None:
        problem = None
        try:
            settings = settings or Settings.from_env()
        except ConfigurationError as exc:
            problem = f"{_CONTEXT}. {exc}"
            settings = Settings(api_url=normalize_url(api_url_from_env() or DEFAULT_API_URL))
        settings = replace(settings, timeout_seconds=config.request_timeout)
        self.config = config
        #: Saving before a stop and syncing, to this kernel's machine.
        self.saves = saves or SaveOptions()
        self._note = note
        self._closed = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="gpuoutlet-service", daemon=True
        )
        self._thread.start()
        try:
            self._host = self._run(self._open(settings, problem))
        except BaseException:
            self._stop_loop()
            raise
        self._api = self._host.api
        # The remote kernels' records (no Jupyter server here: Reattach only marks one).
        self._kernels = KernelsJson(KernelBoard(config.state_dir))
        # Save the state and stop the watchers when the kernel exits (the rentals go on).
        atexit.register(self._close_at_exit)

    def __repr__(self) -> str:
        return f"InProcessBackend(api_url={self.settings.api_url!r})"

    async def _open(self, settings: Settings, problem: str | None) -> ServiceHost:
        # Made on the service's loop, so its locks and events belong to it.
        host = ServiceHost(
            settings,
            self.config,
            name="this kernel",
            fix_hint="Fix NotebookSession.ssh_dir, ssh_user or identity_file with %config.",
            not_signed_in=_not_signed_in,
            problem=problem,
            pinned=ENV_SID_SOURCE if settings.sid_source == ENV_SID_SOURCE else None,
            saves=self.saves,
        )
        await host.start()
        if host.problem is not None and settings.sid is not None:
            # A session that cannot be used (bad SSH settings, say): say so now, as before.
            raise ConfigurationError(host.problem)
        return host

    @property
    def settings(self) -> Settings:
        """The settings of the current session (the sid only as a SecretStr)."""
        return self._host.settings

    # Calling into the loop.

    def _submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        if self._closed:
            coro.close()
            raise ConfigurationError(
                "The in-process rental service was closed; run `%reload_ext gpuoutlet_jupyter`."
            )
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def _run(self, coro: Coroutine[Any, Any, T], *, cancel_on_interrupt: bool = True) -> T:
        future = self._submit(coro)
        try:
            return future.result()
        except KeyboardInterrupt:
            # Ctrl-C stops this call only (a long-poll); the service's watchers go on.
            if cancel_on_interrupt:
                future.cancel()
            raise
        except BaseException as exc:
            self._host.saw(exc)  # gpuoutlet's 401: the session has ended
            raise

    # The interface.

    @property
    def where(self) -> str:
        text = f"this kernel (in-process, rentals API at {self.settings.api_url})"
        return f"{text}; {self._note}" if self._note else text

    @property
    def api_url(self) -> str | None:
        return self.settings.api_url

    def status(self) -> dict[str, Any]:
        ssh_dir = self.config.ssh_dir or Path(os.path.expanduser("~/.ssh"))
        return self._run(self._status(ssh_dir))

    async def _status(self, ssh_dir: Path) -> dict[str, Any]:
        return status_reply(
            await self._host.status(
                {
                    "state": "stopped" if self._closed else self._host.state,
                    "backend": self.kind,
                    "version": __version__,
                    "sshDir": str(ssh_dir),
                    "maxWait": None,
                    "idleStopMinutes": None,
                    "note": self._note,
                }
            )
        )

    # Signing in and out (the same flow as the server's).

    def auth(self) -> dict[str, Any]:
        return self._run(self._host.signin.auth())

    def request_code(self, email: str) -> dict[str, Any]:
        return self._run(self._host.signin.request_code({"email": email}))

    def verify_code(self, email: str, code: str) -> dict[str, Any]:
        body = {"email": email, "code": code}
        return self._run(self._host.signin.verify_code(body), cancel_on_interrupt=False)

    def sign_out(self) -> dict[str, Any]:
        return self._run(self._host.signin.sign_out(), cancel_on_interrupt=False)

    def templates(self) -> dict[str, Any]:
        return self._run(self._api.templates())

    def families(self) -> dict[str, Any]:
        return self._run(self._api.families())

    def wallet(self) -> dict[str, Any]:
        return self._run(self._api.wallet())

    def keys(self) -> dict[str, Any]:
        return self._run(self._api.keys())

    def add_key(self, name: str | None = None) -> dict[str, Any]:
        body = {} if name is None else {"name": name}
        return self._run(self._api.add_key(body), cancel_on_interrupt=False)

    def rentals(self, *, since: int | None = None, wait: float | None = None) -> dict[str, Any]:
        return self._run(self._api.rentals(_poll(since, wait)))

    def rental(
        self, rental_id: str, *, since: int | None = None, wait: float | None = None
    ) -> RentalJSON:
        return self._run(self._api.rental(rental_id, _poll(since, wait)))

    def preview(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._run(self._api.preview(body))

    def create(self, body: dict[str, Any]) -> RentalJSON:
        # Never cancelled half-way: a rental created upstream is then tracked, not lost.
        # The service refuses an idle stop here: nothing in this kernel sees the remote kernels.
        return self._run(self._api.create(body), cancel_on_interrupt=False)

    def stop(self, rental_id: str, *, save: bool = True) -> RentalJSON:
        body = {"save": save}
        return self._run(self._api.stop(rental_id, body), cancel_on_interrupt=False)

    def save_size(self, rental_id: str) -> dict[str, Any]:
        return self._run(self._api.work.save_size(rental_id))

    def save(self, rental_id: str) -> dict[str, Any]:
        return self._run(self._api.work.save(rental_id), cancel_on_interrupt=False)

    def start_transfer(self, rental_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._run(self._api.work.start_transfer(rental_id, body), cancel_on_interrupt=False)

    def transfer(
        self, rental_id: str, *, since: int | None = None, wait: float | None = None
    ) -> dict[str, Any]:
        poll = _poll(since, wait)
        api = self._api.work
        if poll is None:
            return self._run(api.transfer(rental_id, None, 0.0))
        return self._run(api.transfer(rental_id, poll.since, poll.wait))

    def cancel_transfer(self, rental_id: str) -> dict[str, Any]:
        return self._run(self._api.work.cancel(rental_id), cancel_on_interrupt=False)

    def settle_create(self, create_id: str, keep: list[str] | None) -> dict[str, Any]:
        body = {"keep": "all" if keep is None else keep}
        return self._run(self._api.settle_create(create_id, body), cancel_on_interrupt=False)

    def keep(self, rental_id: str, *, idle_stop_minutes: float | None = None) -> RentalJSON:
        body = {} if idle_stop_minutes is None else {"idleStopMinutes": idle_stop_minutes}
        return self._run(self._api.keep(rental_id, body))

    def telemetry(
        self, rental_id: str, *, since: int | None = None, wait: float | None = None
    ) -> dict[str, Any]:
        return self._run(self._api.pods.telemetry(rental_id, since, max(0.0, wait or 0.0)))

    def ports(self, rental_id: str) -> dict[str, Any]:
        return self._run(self._api.pods.ports(rental_id))

    def forward(self, rental_id: str, port: int) -> dict[str, Any]:
        return self._run(self._api.pods.forward(rental_id, {"port": port}))

    def cancel_forward(self, rental_id: str, port: int) -> dict[str, Any]:
        return self._run(self._api.pods.cancel_forward(rental_id, port))

    @property
    def server_url(self) -> str | None:
        return None  # no Jupyter server, no proxy: forwards open on this machine

    async def atelemetry(self, rental_id: str, *, since: int, wait: float) -> dict[str, Any]:
        future = self._submit(self._api.pods.telemetry(rental_id, since, max(0.0, wait)))
        return await asyncio.wrap_future(future)

    def kernels(self, rental_id: str | None = None) -> dict[str, Any]:
        return self._run(self._kernels.kernels(rental_id=rental_id))

    def reattach_kernel(self, wrapper: str) -> dict[str, Any]:
        return self._run(self._kernels.reattach(wrapper), cancel_on_interrupt=False)

    def shut_down_kernel(self, wrapper: str) -> dict[str, Any]:
        return self._run(self._kernels.shut_down(wrapper), cancel_on_interrupt=False)

    async def arental(self, rental_id: str, *, since: int, wait: float) -> RentalJSON:
        future = self._submit(self._api.rental(rental_id, _poll(since, wait)))
        return await asyncio.wrap_future(future)

    async def arentals(self, *, since: int, wait: float) -> dict[str, Any]:
        return await asyncio.wrap_future(self._submit(self._api.rentals(_poll(since, wait))))

    async def awallet(self) -> dict[str, Any]:
        return await asyncio.wrap_future(self._submit(self._api.wallet()))

    def watching(self) -> list[str]:
        """Ids of the rentals this service is polling."""
        return self._run(self._watching())

    async def _watching(self) -> list[str]:
        return (await self._host.service()).watching()

    def _close_at_exit(self) -> None:
        # The kernel is exiting: nothing will watch the rentals still running, so say so.
        self.close(warn_running=True)

    def close(self, *, warn_running: bool = False) -> None:
        """Stop the watchers and save the state (rentals keep running), then end the thread.

        No warning about running rentals by default: a settings change closes the backend
        and the next magic resumes watching them.
        """
        if self._closed:
            return
        atexit.unregister(self._close_at_exit)
        future = self._submit(self._host.stop(warn_running=warn_running))
        self._closed = True
        # Closing must not raise: the state was saved on every change anyway.
        with contextlib.suppress(Exception):
            future.result(_CLOSE_TIMEOUT)
        self._stop_loop()

    def _stop_loop(self) -> None:
        self._closed = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(_CLOSE_TIMEOUT)
        if not self._thread.is_alive():
            self._loop.close()


def _poll(since: int | None, wait: float | None) -> LongPoll | None:
    return None if since is None else LongPoll(wait=max(0.0, wait or 0.0), since=since)
