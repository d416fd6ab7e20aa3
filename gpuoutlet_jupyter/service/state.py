"""The state the service shares with the other processes on its state dir: the rentals file
(store.py) and who decides each rental's idle stop (owners.py).

Loading at start, merged saves that take back what others set, and the take-over of the idle
stops of a process that is gone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .owners import Owners
from .record import RentalRecord
from .store import Held, Loaded, Signature, StateStore, is_over

log = logging.getLogger(__name__)

#: Seconds after which an idle look merges with the shared state file even if it seems unchanged.
SYNC_INTERVAL = 60.0


class SharedState:
    """This process's side of ``<state_dir>``: its owner id, its saves, what the others set."""

    def __init__(self, state_dir: Path, *, idle_check_interval: float) -> None:
        self.store = StateStore(state_dir)
        # Servers sharing the state dir: who decides each idle stop, and their kernels' activity.
        self.owners = Owners(state_dir, check_interval=idle_check_interval)
        #: What was wrong with the state file at start (empty: nothing), for the status.
        self.problems: list[str] = []
        #: Rentals in the shared state file that may run (other servers' too), at the last save.
        self.shared_active: set[str] = set()
        self._save_error: str | None = None
        # The state file as this process last saved it (see `needs_sync`), and when.
        self._signature: Signature = None
        self._synced_at = -float("inf")
        self._save_lock = asyncio.Lock()

    @property
    def owner_id(self) -> str:
        return self.owners.id

    # Start and end.

    async def open(self) -> Loaded:
        """Take this process's owner lock, then read the state file."""
        await asyncio.to_thread(self.owners.claim)
        loaded = await asyncio.to_thread(self.store.load)
        for record in loaded.records:
            record.decided_here = record.owner == self.owners.id
        return loaded

    async def release(self) -> None:
        """Let go of the owner lock: another server may now take over this one's idle stops."""
        await asyncio.to_thread(self.owners.release)

    def report_damage(self, loaded: Loaded, listed: bool) -> None:
        """Say what a damaged state file cost, claiming a recovery only when there was one."""
        if listed:
            after = (
                "Rentals of the skipped records that are still active were recovered from the "
                "API's list."
            )
        else:
            after = (
                "The API's list could not be read, so rentals of the skipped records are not "
                "watched until it can be (at the next reconcile, or a restart): check your "
                "gpuoutlet account for rentals you do not see here."
            )
        self.problems = [*loaded.problems, after]
        log.error(
            "gpuoutlet: the rentals state file had problems: %s. %s%s",
            "; ".join(loaded.problems),
            f"The file as it was is kept as {loaded.set_aside}. " if loaded.set_aside else "",
            after,
        )

    # Owners.

    def set_owner(self, record: RentalRecord, owner: str | None, *, changed: bool) -> None:
        """Who decides the record's idle stop; ``changed``: set here (the next save writes it)."""
        record.owner = owner
        record.decided_here = owner is not None and owner == self.owners.id
        if changed:
            record.settings_changed = True

    def claim(self, record: RentalRecord) -> None:
        """This process decides the record's idle stop from now on (it set it, or created it)."""
        self.set_owner(record, self.owners.id, changed=True)

    def _take_over(self, state: dict[str, Any]) -> str | None:
        """(In the save's lock.) This process, for an idle stop whose owner is gone."""
        if not state.get("idleStopMinutes") or is_over(state):
            return None
        owner = state.get("owner")
        if owner == self.owners.id or self.owners.alive(owner):
            return None
        log.info(
            "rental %s: its idle stop was decided by %s, which is gone; decided here from now on",
            state["rental"].get("id"),
            owner or "an earlier version",
        )
        return self.owners.id

    # Saving.

    async def save(self, records: list[RentalRecord]) -> dict[str, dict[str, Any]] | None:
        """Merge these records into the shared state file (see store.py); the states written,
        whose settings the caller takes back (``take_settings``). Never raises: a failing disk
        is logged, what could not be saved is tried again at the next save, and None says so."""
        async with self._save_lock:
            held = [Held(r.to_state(), r.changed, r.settings_changed) for r in records]
            for record in records:
                record.changed = record.settings_changed = False
            try:
                saved = await asyncio.to_thread(self.store.save, held, take_over=self._take_over)
            except Exception as exc:
                for record, item in zip(records, held, strict=True):
                    record.changed |= item.changed
                    record.settings_changed |= item.settings_changed
                error = f"{type(exc).__name__}: {exc}"
                if error != self._save_error:
                    log.error(
                        "gpuoutlet: could not save the rentals to %s (%s); the rentals are "
                        "still watched, and the save is tried again at the next change.",
                        self.store.path,
                        error,
                    )
                self._save_error = error
                return None
            self._save_error = None
            self._signature, self._synced_at = saved.signature, time.monotonic()
            written, found = saved.written, saved.found
            if found.damaged:
                # Damaged since the start (a hand edit, another tool): repaired by this save.
                self.problems = [*self.problems, *found.problems]
                log.error(
                    "gpuoutlet: the rentals state file %s was damaged: %s. It was copied to %s "
                    "and rewritten with what could be read and the rentals this server holds.",
                    self.store.path,
                    "; ".join(found.problems),
                    found.set_aside,
                )
            self.shared_active = {r.id for r in found.records if r.watched} | {
                rid for rid, state in written.items() if not is_over(state)
            }
        return written

    def needs_sync(self, records: list[RentalRecord]) -> bool:
        """Whether another process may have changed something that matters here: the file
        changed since this process saved it (a setting made in another server), an idle stop's
        owner is gone (to take it over), or a minute has passed."""
        stale = time.monotonic() - self._synced_at > SYNC_INTERVAL
        if not stale and self.store.signature() == self._signature:
            owners = {
                r.owner for r in records if r.idle_stop_minutes and r.watched and not r.decided_here
            }
            if all(self.owners.alive(owner) for owner in owners):
                return False
        return True

    def take_settings(
        self, find: Callable[[str], RentalRecord | None], written: dict[str, dict[str, Any]]
    ) -> list[RentalRecord]:
        """Take the settings other processes made (or a take-over) from what was saved; the
        records whose idle stop (owner or minutes) changed, for the caller to judge anew."""
        changed = []
        for rental_id, state in written.items():
            record = find(rental_id)
            if record is None or record.settings_changed:
                continue  # set again here meanwhile: the next save writes it
            saved_last = state.get("lastActiveAt")
            if saved_last is not None and (
                record.last_active_at is None or saved_last > record.last_active_at
            ):
                record.last_active_at = saved_last
            if record.stop_reason is None:
                record.stop_reason = state.get("stopReason")
            before = (record.owner, record.idle_stop_minutes, record.idle_gpu_util)
            owner, minutes = state.get("owner"), state.get("idleStopMinutes")
            gpu_util = state.get("idleGpuUtil")
            if (owner, minutes, gpu_util) == before:
                continue
            self.set_owner(record, owner, changed=False)
            record.idle_stop_minutes = minutes
            record.idle_gpu_util = gpu_util
            changed.append(record)
        return changed
