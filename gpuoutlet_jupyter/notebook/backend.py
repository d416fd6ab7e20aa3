"""The one interface the magics and widgets use to reach a rentals service (typing only).

``ServerBackend`` (rest.py) calls the Jupyter server's gpuoutlet REST API; ``InProcessBackend``
(inprocess.py) hosts RentalService on a background thread's event loop behind the same JSON
layer; ``connect.open_backend`` chooses. Both return the REST API's replies
(``gpuoutlet_jupyter.rest.models``, as camelCase dicts), and raise the client's error hierarchy.
"""

from __future__ import annotations

from typing import Any, Protocol

RentalJSON = dict[str, Any]


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
        Besides the request's wire fields the body may hold ``idleStopMinutes`` and
        ``notebook`` (ours). A lost answer is settled by the service (``CreateReply.note``;
        ``CreateNotMadeError``, ``CreateAmbiguousError``)."""

    def stop(self, rental_id: str, *, save: bool = True) -> RentalJSON:
        """Save its work (unless ``save`` is False), then stop the rental for good
        (``StopReply``); it is watched until stopped. Waits for the save."""

    def save_size(self, rental_id: str) -> dict[str, Any]:
        """What a save of the rental would copy now (``SaveSizeView``)."""

    def save(self, rental_id: str) -> dict[str, Any]:
        """Start saving its work now, as a job (``TransferReply``)."""

    def start_transfer(self, rental_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Start an upload or download (``{"direction", "localDir", "remoteDir"?}``)."""

    def transfer(
        self, rental_id: str, *, since: int | None = None, wait: float | None = None
    ) -> dict[str, Any]:
        """The running or last transfer (``TransferReply``); with ``since``, once it changed."""

    def cancel_transfer(self, rental_id: str) -> dict[str, Any]:
        """Cancel the running transfer (what arrived whole is kept)."""

    def settle_create(self, create_id: str, keep: list[str] | None) -> dict[str, Any]:
        """Keep ``keep`` (None: all) of the rentals that match a create whose answer was lost;
        the others are stopped (``SettleReply``)."""

    def keep(self, rental_id: str, *, idle_stop_minutes: float | None = None) -> RentalJSON:
        """ "Keep it": restart the rental's idle timer; with minutes, also change its idle stop
        (0 turns it off)."""

    def telemetry(
        self, rental_id: str, *, since: int | None = None, wait: float | None = None
    ) -> dict[str, Any]:
        """The rental's GPU telemetry (``TelemetryView``); a look: sampled while looks last.
        With ``since``, once a sample newer than that version came (or ``wait`` s passed)."""

    def ports(self, rental_id: str) -> dict[str, Any]:
        """The template's known ports, the pod's listening ones, the forwards (``PortsView``)."""

    def forward(self, rental_id: str, port: int) -> dict[str, Any]:
        """Forward the pod's ``port`` to a free local port (``ForwardView``)."""

    def cancel_forward(self, rental_id: str, port: int) -> dict[str, Any]:
        """End the forward of the pod's ``port`` (``ForwardsView``: those left)."""

    @property
    def server_url(self) -> str | None:
        """The Jupyter server's URL (its proxy opens forwarded ports); None in-process."""

    async def atelemetry(self, rental_id: str, *, since: int, wait: float) -> dict[str, Any]:
        """``telemetry(id, since=, wait=)`` without blocking the caller's event loop."""

    def kernels(self, rental_id: str | None = None) -> dict[str, Any]:
        """The rentals' remote kernels and their connection state, or one rental's
        (``KernelsView``)."""

    def reattach_kernel(self, wrapper: str) -> dict[str, Any]:
        """Adopt a detached remote kernel (``ReattachReply``)."""

    def shut_down_kernel(self, wrapper: str) -> dict[str, Any]:
        """End a detached remote kernel on its machine (``KernelShutDownReply``)."""

    def auth(self) -> dict[str, Any]:
        """Who is signed in and until when (``AuthView``)."""

    def request_code(self, email: str) -> dict[str, Any]:
        """Have gpuoutlet email a sign-in code (``CodeSentReply``)."""

    def verify_code(self, email: str, code: str) -> dict[str, Any]:
        """Sign in with the code: the host keeps the session and uses it (``SignedInReply``)."""

    def sign_out(self) -> dict[str, Any]:
        """Sign out: gpuoutlet told, the credentials file deleted (``SignedOutReply``)."""

    async def arental(self, rental_id: str, *, since: int, wait: float) -> RentalJSON:
        """``rental(id, since=, wait=)`` without blocking the caller's event loop."""

    async def arentals(self, *, since: int, wait: float) -> dict[str, Any]:
        """``rentals(since=, wait=)`` without blocking the caller's event loop."""

    async def awallet(self) -> dict[str, Any]:
        """``wallet()`` without blocking the caller's event loop."""

    def close(self) -> None:
        """Release connections (and the in-process service's thread)."""
