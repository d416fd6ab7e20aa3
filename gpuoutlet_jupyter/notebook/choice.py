"""Which rental to keep, when a create's answer was lost and several rentals match it (the
creates not settled yet, and the user's choice among their rentals)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..api import CreateAmbiguousError
from ..api.models import STOP_NOTICE
from .errors import NotebookError
from .views import RentalInfo, RentalsTable

if TYPE_CHECKING:
    from .core import GpuCore


def pending_creates(core: GpuCore) -> list[dict[str, Any]]:
    """The creates the service has not settled yet (``PendingCreateView``)."""
    pending: list[dict[str, Any]] = core.backend.rentals().get("pendingCreates") or []
    return pending


def settle(core: GpuCore, create_id: str, keep: list[str] | None) -> RentalsTable:
    """Keep ``keep`` (None: all) of the rentals that match a create whose answer was lost;
    the others are stopped (their stop is said first: it is permanent)."""
    if keep is not None:
        core.say(f"Keeping {', '.join(keep)}; the others are stopped. {STOP_NOTICE}")
    settled = core.backend.settle_create(create_id, keep)
    kept = [RentalInfo(r, core.backend) for r in settled["kept"]]
    for stopped in settled["stopped"]:
        core.say(RentalInfo(stopped, core.backend).stop_line())
    return RentalsTable(kept, title=f"Kept {len(kept)} rental(s)", totals=False)


def which_to_keep(
    core: GpuCore, exc: CreateAmbiguousError, ask: Callable[[str], str | None] | None
) -> RentalInfo:
    """Ask which of the matching rentals to keep (each may cost money; the others are
    stopped); where nothing can be asked, say how to choose later (``%gpu_creates``)."""
    answer = None
    if ask is not None:
        options = "\n".join(f"  {n}. {rid}" for n, rid in enumerate(exc.candidates, 1))
        answer = ask(
            f"{exc}\n{options}\nWhich to keep? Numbers separated by spaces, or 'all' (the "
            "others are stopped; empty: decide later with %gpu_creates): "
        )
    later = f"`%gpu_creates keep {exc.create_id} RENTAL_ID`"
    if answer is None:
        message = str(exc)
        if "%gpu_creates keep" not in message:
            message += (
                f" All {len(exc.candidates)} are watched (each may cost money) until you choose "
                f"with {later} (the others are stopped), or `--all` to keep them all."
            )
        raise NotebookError(message)
    answer = answer.strip()
    if not answer:
        raise NotebookError(
            f"Nothing was chosen: all {len(exc.candidates)} are watched (and may cost money) "
            f"until you run {later}."
        )
    if answer.lower() == "all":
        return settle(core, exc.create_id, None).rentals[0]
    try:
        picks = [exc.candidates[int(word) - 1] for word in answer.split()]
        if any(int(word) < 1 for word in answer.split()):
            raise IndexError(answer)
    except (ValueError, IndexError):
        raise NotebookError(
            f"{answer!r} names none of 1 to {len(exc.candidates)}: nothing was stopped. Choose "
            f"with {later}."
        ) from None
    return settle(core, exc.create_id, picks).rentals[0]
