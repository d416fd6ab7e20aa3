"""How old what the notebook shows is, and why it is not fresh: the rentals API's last word on
each rental (``checkedAt``) and its failures (``apiProblem`` of the list and the status)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from ...api.errors import clause
from .rental import RentalInfo
from .text import ago_text, since_text

#: A rental confirmed longer ago than this is shown with its age, when the API is failing.
SHOWN_AGE_SECONDS = 30.0


def problem_of(reply: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ``apiProblem`` of a list or status reply (None: the API answers)."""
    value = (reply or {}).get("apiProblem")
    return value if isinstance(value, dict) and value.get("message") else None


def age_seconds(rental: RentalInfo, now: datetime | None = None) -> float | None:
    """Seconds since the rentals API last confirmed the rental; None: not since the start."""
    checked = rental.checked_at
    if checked is None:
        return None
    return max(0.0, ((now or datetime.now(timezone.utc)) - checked).total_seconds())


def status_as_of(rental: RentalInfo, problem: dict[str, Any] | None) -> str:
    """``running (as of 3 min ago)`` while the API fails and this is old; else the status."""
    stale = problem is not None or rental.upstream_error is not None
    age = age_seconds(rental)
    if not stale or not rental.is_active:
        return ""
    if age is None:
        return " (not confirmed since this server started)"
    return f" (as of {ago_text(age)} ago)" if age >= SHOWN_AGE_SECONDS else ""


def not_fresh_lines(problem: dict[str, Any] | None, rentals: list[RentalInfo]) -> list[str]:
    """Why the list is not fresh and how old it is (nothing when it is fresh)."""
    if problem is None:
        failing = [r for r in rentals if r.is_active and r.upstream_error]
        if not failing:
            return []
        oldest = failing[0]
        return [
            f"⚠ Not up to date: the last poll of {oldest.id} failed ({oldest.upstream_error}); "
            "what is shown is what gpuoutlet said last, and it is retried."
        ]
    ages = [a for r in rentals if r.is_active and (a := age_seconds(r)) is not None]
    since = since_text(problem.get("since"))
    last = since_text(problem.get("lastOkAt"))
    text = f"⚠ Not up to date: the rentals API has not answered since {since or 'the start'}"
    text += f": {clause(str(problem['message']))}."
    if ages:
        text += (
            f" What is listed is what it said last (the oldest {ago_text(max(ages))} ago); a "
            "running rental goes on costing money meanwhile."
        )
    elif last:
        text += f" It last answered at {last}."
    return [text]
