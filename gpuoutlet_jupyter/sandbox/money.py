"""Billing arithmetic in integer cents: per-second proration, rounded up at each settlement."""

from __future__ import annotations

from dataclasses import dataclass

from .settings import HOUR_SECONDS


def cost_cents(price_per_hour_cents: int, seconds: int) -> int:
    """ceil(price * seconds / 3600), computed exactly in integers."""
    if seconds <= 0:
        return 0
    return -(-price_per_hour_cents * seconds // HOUR_SECONDS)


@dataclass(frozen=True)
class Settlement:
    """How one settlement moves a rental's money; every field is >= 0."""

    #: Reserved cents that become spent.
    from_reserved: int
    #: Available cents that become spent.
    from_available: int
    #: Reserved cents handed back to available.
    released: int

    @property
    def charged(self) -> int:
        return self.from_reserved + self.from_available


def settle(*, due: int, reserved: int, available: int) -> Settlement:
    """Pay `due` from the rental's reservation first, then from available (as far as it goes),
    and release whatever is left of the reservation."""
    due = max(0, due)
    from_reserved = min(due, reserved)
    from_available = min(due - from_reserved, available)
    return Settlement(from_reserved, from_available, reserved - from_reserved)
