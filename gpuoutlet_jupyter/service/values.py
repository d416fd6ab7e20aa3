"""Values read back from the state file: a number, count, epoch second, flag or text, else None."""

from __future__ import annotations

import math
from typing import Any

#: Latest epoch second accepted from the state file (the year 9999): beyond it, no date.
MAX_EPOCH = 253_402_300_799.0


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    result = float(value)
    return result if math.isfinite(result) else None


def count(value: Any) -> int | None:
    found = number(value)
    return int(found) if found is not None and 0 <= found < 2**53 else None


def epoch(value: Any) -> float | None:
    found = number(value)
    return found if found is not None and 0 <= found <= MAX_EPOCH else None


def minutes(value: Any) -> float | None:
    found = number(value)
    return found if found is not None and found > 0 else None


def flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
