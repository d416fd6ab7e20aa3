"""Entity ids as the vendor makes them: a type prefix and a 26-character Crockford ULID."""

from __future__ import annotations

import hashlib
import secrets
import time

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: The prefixes of the sheet (1.3): users, rentals, SSH keys, ledger entries, catalog listings,
#: invoices and invoice line items.
PREFIXES = ("usr", "rent", "key", "led", "lst", "inv", "li")
#: The moment the catalog's stable listing ids claim as their creation time (2026-01-01Z).
_CATALOG_EPOCH_MS = 1_767_225_600_000


def _encode(value: int) -> str:
    chars = []
    for _ in range(26):
        chars.append(CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def ulid(now: float | None = None) -> str:
    """26 characters: 48 bits of milliseconds, then 80 random bits (sorts by creation time)."""
    millis = int((time.time() if now is None else now) * 1000) & ((1 << 48) - 1)
    return _encode((millis << 80) | secrets.randbits(80))


def new_id(prefix: str, now: float | None = None) -> str:
    """`usr_01H…`, `rent_01H…`: a fresh id of one entity type."""
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    return f"{prefix}_{ulid(now)}"


def stable_id(prefix: str, name: str) -> str:
    """The same valid id for the same `name` on every run (catalog listings keep their ids)."""
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    digest = int.from_bytes(hashlib.sha256(name.encode()).digest()[:10], "big")
    return f"{prefix}_{_encode((_CATALOG_EPOCH_MS << 80) | digest)}"
