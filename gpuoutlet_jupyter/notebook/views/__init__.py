"""What the magics return and the widgets show: rentals, lists and the account, each with an HTML
repr for notebooks and text elsewhere."""

from __future__ import annotations

from .account import StatusInfo, WalletInfo
from .idle import IdleStop
from .rental import ELSEWHERE, FINAL_STATUSES, KERNEL_HINT, RentalInfo
from .tables import (
    CreatesTable,
    FamiliesTable,
    KeysTable,
    RentalsTable,
    TemplatesTable,
    warnings_of,
)
from .text import duration, minutes_text, parse_time

__all__ = [
    "ELSEWHERE",
    "FINAL_STATUSES",
    "KERNEL_HINT",
    "CreatesTable",
    "FamiliesTable",
    "IdleStop",
    "KeysTable",
    "RentalInfo",
    "RentalsTable",
    "StatusInfo",
    "TemplatesTable",
    "WalletInfo",
    "duration",
    "minutes_text",
    "parse_time",
    "warnings_of",
]
