"""ULID-like identifiers: 10 characters of millisecond time, 16 of randomness, Crockford base32."""

from __future__ import annotations

import secrets
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid(now: float | None = None) -> str:
    """26 characters that sort by creation time (to the millisecond)."""
    millis = int((time.time() if now is None else now) * 1000) & ((1 << 48) - 1)
    value = (millis << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def rental_id() -> str:
    return f"rent_{ulid()}"


def account_id() -> str:
    return f"acct_{ulid()}"
