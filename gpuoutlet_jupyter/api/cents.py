"""Money as the rentals API counts it, integer cents, written for people (stdlib only)."""

from __future__ import annotations


def format_cents(cents: int, currency: str = "USD") -> str:
    """Money for people: 65 → '$0.65', 28000 → '$280.00'; other currencies keep their code."""
    sign = "-" if cents < 0 else ""
    amount = f"{abs(cents) // 100:,}.{abs(cents) % 100:02d}"
    return f"{sign}${amount}" if currency == "USD" else f"{sign}{amount} {currency}"
