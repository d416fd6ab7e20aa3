"""Persisting tracked rentals as one JSON file, written atomically, so a restart resumes them."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ..ssh.fsutil import atomic_write, make_dir
from .record import RentalRecord

log = logging.getLogger(__name__)
STATE_FILE = "rentals.json"
FORMAT_VERSION = 1


class StateStore:
    """`<state_dir>/rentals.json`: every tracked rental, in a private folder."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / STATE_FILE

    def load(self) -> list[RentalRecord]:
        """Every record persisted; a damaged file is set aside (never silently dropped)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        try:
            data: dict[str, Any] = json.loads(raw)
            return [RentalRecord.from_state(item) for item in data["rentals"]]
        except (ValueError, KeyError, TypeError) as exc:
            aside = self.path.with_suffix(".damaged.json")
            self.path.replace(aside)
            log.error(
                "The rentals state file %s could not be read (%s); it was moved to %s and the "
                "rentals will be recovered from the API's list.",
                self.path,
                exc,
                aside,
            )
            return []

    def save(self, records: list[RentalRecord]) -> None:
        """Write every record atomically (temp file, fsync, rename)."""
        self.state_dir.parent.mkdir(parents=True, exist_ok=True)
        make_dir(self.state_dir, enforce_private=True)
        body = {"format": FORMAT_VERSION, "rentals": [r.to_state() for r in records]}
        atomic_write(self.path, json.dumps(body, indent=1, sort_keys=True).encode())
