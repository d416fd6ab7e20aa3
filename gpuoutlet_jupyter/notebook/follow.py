"""Following one rental: the narrow interface a view gets to keep following it after the magic
returns, and how long one look waits (stdlib only: loaded with the session at ``%load_ext``)."""

from __future__ import annotations

from dataclasses import dataclass
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


def ready_or_final(rental: RentalInfo) -> bool:
    """Following a new rental ends when it runs (with its SSH step done), fails or stops."""
    if rental.gone or rental.status in ("failed", "stopped", "stopping"):
        return True
    # Its working folder is pushed and set up before its kernel is offered (--sync-workdir).
    workdir = rental.data.get("workdir") or {}
    if workdir.get("state") not in (None, "done", "failed"):
        return False
    # The service writes the SSH entry (or records why it could not) in the same change.
    return rental.status == "running" and rental.data.get("ssh") is not None


def stopped_or_final(rental: RentalInfo) -> bool:
    """Following a stop ends when the rental is stopped (or failed, or gone)."""
    return rental.gone or rental.status in ("stopped", "failed")


@dataclass(frozen=True)
class FollowOptions:
    """How the core follows rentals."""

    #: Seconds one long-poll may wait for a change (the elapsed time moves at least this often).
    wait_seconds: float = WAIT_SECONDS
    #: Failed follow-up requests in a row before following gives up (the rental goes on).
    max_failures: int = 5


def next_steps(rental_id: str) -> str:
    """The two lines that tell a person how to pick a rental up again."""
    return f"  %gpu_wait {rental_id}    follow it again\n  %gpu_stop {rental_id}    stop it"
