"""Billing arithmetic in integer cents: per-second proration, rounded half-up."""

from __future__ import annotations

from .settings import HOUR_SECONDS

#: A pod stopped (by anyone) before it ran this long is refunded in full (sheet 3.5).
REFUND_UNDER_SECONDS = 60


def charge_cents(price_per_hour_cents: int, seconds: int) -> int:
    """price × seconds / 3600, half-up, exactly in integers: the meter's invariant (sheet 2.2)."""
    if seconds <= 0:
        return 0
    return (2 * price_per_hour_cents * seconds + HOUR_SECONDS) // (2 * HOUR_SECONDS)


def dollars(cents: int) -> float:
    """Dollars as the meter reports `ratePerHour` (the one money field that is not cents)."""
    return cents / 100
