"""Following one rental: the narrow interface a view gets to keep following it after the magic
returns, and how long one look waits (stdlib only: loaded with the session at ``%load_ext``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .views import RentalInfo


#: Seconds one long-poll may wait for a change while the core follows a rental (the elapsed
#: time moves at least this often): ``NotebookSession.wait_seconds``'s default.
WAIT_SECONDS = 5.0


class RentalFollow(Protocol):
    """One rental, followed: all a progress view may ask of the session behind it."""

    @property
    def rental_id(self) -> str:
        """The rental followed."""

    @property
    def live(self) -> bool:
        """False once the session let its backend go (unloaded, a setting changed): a view
        then stops, rather than reconnect behind the user's back."""

    async def changed(self, since: int, wait: float) -> RentalInfo:
        """The rental once its version exceeds ``since``, or as it is after ``wait`` seconds,
        without blocking the kernel's loop. Raises ``NotFoundError`` once it is not known."""

    def keep(self) -> RentalInfo:
        """ "Keep it": restart the rental's idle timer; the rental as it is then."""
