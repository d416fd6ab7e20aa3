"""Persisting tracked rentals in one JSON file that every process on the state dir shares.

Two Jupyter servers of one user (two JupyterLabs, a Lab and a Notebook) use the same state dir,
``<Jupyter data dir>/gpuoutlet``. So that neither ever loses what the other wrote:

- every save happens under a file lock and re-reads the file first. A record this process
  changed since its last save is written from memory; any other is kept as the file has it
  (another process may have changed it). Records this process does not hold are never dropped.
- a record's settings (its owner and idle stop) come from memory only when this process
  changed them itself; its ``lastActiveAt`` is the later of the two; an ended rental is never
  brought back by a stale view of it (see ``merge_state``).
- a damaged file is read record by record: a record that cannot be read is skipped and named
  (its index and id), the others are kept, and the file as it was is copied aside to a numbered
  ``rentals.damaged.<n>.json`` (an earlier copy is never overwritten).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..ssh.fsutil import atomic_write, fsync_dir, locked, make_dir
from .record import RentalRecord

STATE_FILE = "rentals.json"
DAMAGED_PREFIX = "rentals.damaged."
FORMAT_VERSION = 1


@dataclass
class Loaded:
    """What a read of the state file found."""

    #: Every record that could be read, in file order (first of any duplicate id).
    records: list[RentalRecord] = field(default_factory=list)
    #: Each of those as the file has it (verbatim, so fields a newer version wrote are kept),
    #: or as read when a field of it had to be ignored.
    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: One line per problem: a record skipped, a field of one ignored, or the whole file.
    problems: list[str] = field(default_factory=list)
    #: Where the file was copied before it was repaired (None: it needed no repair).
    set_aside: Path | None = None

    @property
    def damaged(self) -> bool:
        return bool(self.problems)


@dataclass(frozen=True)
class Held:
    """One record as this process holds it, for a save: its state and what it changed."""

    state: dict[str, Any]
    #: This process changed it since its last save (the API said something new, it acted).
    changed: bool
    #: This process changed its settings (owner, idle stop) since its last save.
    settings_changed: bool


#: Inside the save's lock: the owner a merged record is to get instead of its own (None: none).
TakeOver = Callable[[dict[str, Any]], "str | None"]
#: What identifies one version of the file (inode, size, mtime, ctime); None: no file.
Signature = tuple[int, int, int, int] | None


@dataclass(frozen=True)
class Saved:
    """What a save did."""

    #: The states written for the held records, by id (the caller takes its settings back).
    written: dict[str, dict[str, Any]]
    #: What the read of the file before the merge found.
    found: Loaded
    #: The file's signature right after the save: while it is unchanged, nobody else wrote.
    signature: Signature


class StateStore:
    """`<state_dir>/rentals.json`: every tracked rental, in a private folder."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / STATE_FILE

    def load(self) -> Loaded:
        """Every record that can be read; a damaged file is copied aside, then rewritten with
        the records that could be read (under the lock, so no other process sees it half-way)."""
        self._make_dir()
        with locked(self.state_dir):
            raw, loaded = self._read()
            if loaded.damaged and raw is not None:
                self._repair(raw, loaded, list(loaded.states.values()))
        return loaded

    def signature(self) -> Signature:
        """The file's signature now (one stat): a change means another process saved."""
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def save(self, held: Iterable[Held], *, take_over: TakeOver | None = None) -> Saved:
        """Merge this process's records into the file under the lock (see the module's doc)."""
        self._make_dir()
        with locked(self.state_dir):
            raw, loaded = self._read()
            states = dict(loaded.states)  # file order; records of other processes kept as is
            mine: dict[str, dict[str, Any]] = {}
            for item in held:
                rental_id = str(item.state["rental"]["id"])
                merged = merge_state(item, states.get(rental_id))
                owner = take_over(merged) if take_over is not None else None
                if owner is not None:
                    merged["owner"] = owner
                states[rental_id] = mine[rental_id] = merged
            if loaded.damaged and raw is not None:
                self._repair(raw, loaded, list(states.values()))
            else:
                body = _body(list(states.values()))
                if body != raw:
                    atomic_write(self.path, body)
            return Saved(written=mine, found=loaded, signature=self.signature())

    # Reading.

    def _read(self) -> tuple[bytes | None, Loaded]:
        loaded = Loaded()
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None, loaded
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            loaded.problems.append(f"the file is not JSON ({_short(exc)})")
            return raw, loaded
        items = data.get("rentals") if isinstance(data, dict) else None
        if not isinstance(items, list):
            loaded.problems.append('the file has no "rentals" list')
            return raw, loaded
        for index, item in enumerate(items):
            name = _name(index, item)
            try:
                record, ignored = RentalRecord.from_saved(item)
                record.to_json()  # what viewers will be shown must be computable
            except Exception as exc:  # anything: one bad record must not cost the others
                loaded.problems.append(f"{name} was skipped: {_short(exc)}")
                continue
            if record.id in loaded.states:
                loaded.problems.append(f"{name} was skipped: a second record of that rental")
                continue
            if not ignored and not _strict_json(item):
                ignored.append("a member that is not a finite number (NaN, Infinity) was dropped")
            loaded.problems.extend(f"{name}: {problem}" for problem in ignored)
            loaded.records.append(record)
            loaded.states[record.id] = record.to_state() if ignored else item
        return raw, loaded

    # Writing.

    def _make_dir(self) -> None:
        self.state_dir.parent.mkdir(parents=True, exist_ok=True)
        make_dir(self.state_dir, enforce_private=True)

    def _repair(self, raw: bytes, loaded: Loaded, states: list[dict[str, Any]]) -> None:
        """Copy the damaged file aside (a new numbered copy), then write what could be read.
        The caller reports it (it knows whether the API's list made up for what was lost)."""
        loaded.set_aside = self._set_aside(raw)
        atomic_write(self.path, _body(states))

    def _set_aside(self, raw: bytes) -> Path:
        """``rentals.damaged.<n>.json`` with the first free n: earlier copies are kept."""
        number = 1
        while True:
            aside = self.state_dir / f"{DAMAGED_PREFIX}{number}.json"
            try:
                fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                number += 1
                continue
            try:
                view = memoryview(raw)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            fsync_dir(self.state_dir)
            return aside


def merge_state(ours: Held, theirs: dict[str, Any] | None) -> dict[str, Any]:
    """One record as this process holds it, merged with the file's copy (None: not there)."""
    if theirs is None:
        return dict(ours.state)
    # What the API said and what was done about it: ours if we changed it since our last save,
    # else the file's (another process may know better). An ended or vanished rental is never
    # brought back by a view of it from before it ended.
    merged = dict(ours.state if ours.changed else theirs)
    if ours.changed and is_over(theirs) and not is_over(ours.state):
        merged = dict(theirs)
    # Settings: ours only if we set them ourselves; else the file's, the latest anyone set.
    source = ours.state if ours.settings_changed else theirs
    merged["owner"] = source.get("owner")
    merged["idleStopMinutes"] = source.get("idleStopMinutes")
    merged["idleGpuUtil"] = source.get("idleGpuUtil")
    # Activity only ever moves forward ("keep it" anywhere, a kernel that ran anywhere).
    times = [t for t in (ours.state.get("lastActiveAt"), theirs.get("lastActiveAt")) if t]
    merged["lastActiveAt"] = max(times, default=None)
    merged["stopReason"] = ours.state.get("stopReason") or theirs.get("stopReason")
    return merged


def is_over(state: dict[str, Any]) -> bool:
    """Whether a saved record's rental is over: it can no longer run, nor cost anything."""
    return bool(state.get("gone")) or state["rental"].get("status") in ("stopped", "failed")


def _body(states: list[dict[str, Any]]) -> bytes:
    body = {"format": FORMAT_VERSION, "rentals": states}
    return json.dumps(body, indent=1, sort_keys=True, allow_nan=False).encode()


def _strict_json(item: Any) -> bool:
    """Whether `item` can be written back as strict JSON (no NaN or Infinity in it)."""
    try:
        json.dumps(item, allow_nan=False)
    except ValueError:
        return False
    return True


def _name(index: int, item: Any) -> str:
    """``record 3 (rent_01H…)``: its place in the file, and its id when one can be read."""
    rental = item.get("rental") if isinstance(item, dict) else None
    rental_id = rental.get("id") if isinstance(rental, dict) else None
    if isinstance(rental_id, str) and rental_id.isprintable() and len(rental_id) <= 128:
        return f"record {index} ({rental_id})"
    return f"record {index}"


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    text = text if len(text) <= 200 else text[:200] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
