"""The one interface the magics and widgets use, and the choice between its two implementations.

``ServerBackend`` (rest.py) calls the Jupyter server's gpuoutlet REST API; ``InProcessBackend``
(inprocess.py) hosts RentalService on a background thread's event loop behind the same JSON
layer. Both return the REST API's replies (``gpuoutlet_jupyter.rest.models``, as camelCase
dicts), and raise the client's error hierarchy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from .discovery import ServerLocation, find_server
from .settings import KernelSettings

if TYPE_CHECKING:
    from ..service.options import ServiceConfig

RentalJSON = dict[str, Any]
BackendChoice = Literal["auto", "server", "in-process"]


class Backend(Protocol):
    """Everything the notebook layer asks of a rentals service. Calls block the caller's thread
    (the kernel's), except the ``a``-prefixed coroutines, which run on the caller's loop."""

    #: "server" or "in-process".
    kind: str

    @property
    def where(self) -> str:
        """Where rentals are handled, for messages: "the Jupyter server at URL (found ...)"."""

    @property
    def api_url(self) -> str | None:
        """The rentals API's URL, when known."""

    def status(self) -> dict[str, Any]:
        """Configuration and health: ``configured``, ``apiUrl``, ``sidSource``, ``problem``..."""

    def templates(self) -> dict[str, Any]:
        """``{"templates": [...]}``: the six machine templates (``TemplatesView``)."""

    def families(self) -> dict[str, Any]:
        """``{"families": [...]}``: GPU families derived from the catalog (``FamiliesView``)."""

    def wallet(self) -> dict[str, Any]:
        """The balance, the burn, how long it lasts, warnings (``WalletView``)."""

    def keys(self) -> dict[str, Any]:
        """The account's SSH keys and the local one (``KeysView``)."""

    def add_key(self, name: str | None = None) -> dict[str, Any]:
        """Add the local public key to the account (``AddKeyReply``)."""

    def rentals(self, *, since: int | None = None, wait: float | None = None) -> dict[str, Any]:
        """``{"rentals": [...], "version": n}``; with ``since``, once the list changed (long-poll)."""

    def rental(
        self, rental_id: str, *, since: int | None = None, wait: float | None = None
    ) -> RentalJSON:
        """One rental; with ``since``, once its version exceeds it or ``wait`` s passed."""

    def preview(self, body: dict[str, Any]) -> dict[str, Any]:
        """What a create of ``body`` would do (``PreviewView``), without doing it."""

    def create(self, body: dict[str, Any]) -> RentalJSON:
        """Create from a camelCase request body, once (never retried: no idempotency key).
        Besides the request's wire fields the body may hold ``idleStopMinutes`` (ours)."""

    def stop(self, rental_id: str) -> RentalJSON:
        """Stop the rental for good (``StopReply``); it is watched until stopped."""

    def keep(self, rental_id: str, *, idle_stop_minutes: float | None = None) -> RentalJSON:
        """ "Keep it": restart the rental's idle timer; with minutes, also change its idle stop
        (0 turns it off)."""

    async def arental(self, rental_id: str, *, since: int, wait: float) -> RentalJSON:
        """``rental(id, since=, wait=)`` without blocking the caller's event loop."""

    async def arentals(self, *, since: int, wait: float) -> dict[str, Any]:
        """``rentals(since=, wait=)`` without blocking the caller's event loop."""

    async def awallet(self) -> dict[str, Any]:
        """``wallet()`` without blocking the caller's event loop."""

    def close(self) -> None:
        """Release connections (and the in-process service's thread)."""


@dataclass(frozen=True)
class BackendConfig:
    """How to pick and configure the backend."""

    choice: BackendChoice = "auto"
    #: Cap on one request's wait; the REST client's read timeout is this plus a margin.
    request_timeout: float = 30.0
    #: None: the defaults, with state in <Jupyter data dir>/gpuoutlet/in-process.
    in_process: ServiceConfig | None = None


def open_backend(config: BackendConfig, settings: KernelSettings | None = None) -> Backend:
    """The server this kernel belongs to, if any (probed once); else an in-process service."""
    settings = settings or KernelSettings.from_env()
    location: ServerLocation | None = None
    if config.choice != "in-process":
        location = find_server(settings)
    if location is None and config.choice == "server":
        from .errors import NoServerError

        raise NoServerError(
            "No Jupyter server was found for this kernel (it has neither GPUOUTLET_SERVER_URL "
            "in its environment nor a JPY_PARENT_PID with a runtime file), yet "
            "GpuOutletMagics.backend is 'server'. Start the kernel from a Jupyter server with "
            "the gpuoutlet extension, or run `%config GpuOutletMagics.backend = 'auto'`."
        )
    if location is not None:
        from .errors import ExtensionMissingError
        from .rest import ServerBackend

        server = ServerBackend(location, request_timeout=config.request_timeout)
        try:
            server.status()
        except ExtensionMissingError:
            server.close()
            if config.choice == "server" or location.published:
                raise
            # A Jupyter server without the extension: this kernel talks to the API itself.
            note = f"the Jupyter server at {location.url} does not run the gpuoutlet extension"
            return _in_process(config, note)
        except BaseException:
            server.close()
            raise
        return server
    return _in_process(config, None)


def _in_process(config: BackendConfig, note: str | None) -> Backend:
    from .inprocess import InProcessBackend

    return InProcessBackend(config.in_process, request_timeout=config.request_timeout, note=note)
