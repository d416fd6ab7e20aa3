"""Which process on a shared state dir owns a rental's idle stop, and what each one's kernels do.

Every Jupyter server of a user shares ``<Jupyter data dir>/gpuoutlet`` (see store.py). Each
RentalService holds a lock file of its own, ``owners/<owner id>.lock``, for as long as it runs:
the operating system releases it when the process ends, however it ends, so "is this owner
alive?" is "is its lock held?". Each live server also publishes what its kernels on each
rental are doing (``owners/<owner id>.activity.json``), so that the owner of an idle stop
counts a kernel busy in another server as activity.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import socket
import time
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from ..ssh.fsutil import atomic_write, make_dir
from .idle import NO_KERNELS, KernelActivity

log = logging.getLogger(__name__)

OWNERS_DIR = "owners"
LOCK_SUFFIX = ".lock"
ACTIVITY_SUFFIX = ".activity.json"
#: What an owner id read from the state file may look like before it is put into a path.
_OWNER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", re.ASCII)
#: Published activity older than this no longer counts as busy (its server may hang); its
#: last activity still counts, as the past does not change.
MIN_STALE_SECONDS = 60.0


def combine(*parts: KernelActivity) -> KernelActivity:
    """The kernels of several servers on one rental, as one."""
    kernels = sum(p.kernels for p in parts)
    busy = sum(p.busy for p in parts)
    times = [p.last_activity for p in parts if p.last_activity is not None]
    return KernelActivity(kernels=kernels, busy=busy, last_activity=max(times, default=None))


class Owners:
    """This process's owner id and lock in ``<state_dir>/owners``, and what the others' say.

    Not thread-safe on its own: RentalService calls it from one thread at a time.
    """

    def __init__(self, state_dir: Path, *, check_interval: float = 15.0) -> None:
        self.folder = state_dir / OWNERS_DIR
        host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"
        # The random part: a pid is reused, and two services may live in one process (tests).
        self.id = f"{host}-{os.getpid()}-{secrets.token_hex(4)}"
        self._lock: Any = None
        self._stale_after = max(MIN_STALE_SECONDS, 4 * check_interval)
        self._published: tuple[dict[str, Any], float] | None = None

    # This process.

    def claim(self) -> None:
        """Take this process's lock (held until `release` or the process ends); sweep the
        files of owners that are gone."""
        from filelock import FileLock

        state_dir = self.folder.parent
        state_dir.parent.mkdir(parents=True, exist_ok=True)
        make_dir(state_dir, enforce_private=True)
        make_dir(self.folder, enforce_private=True)
        lock = FileLock(
            os.fspath(self._lock_path(self.id)), timeout=0, thread_local=False, mode=0o600
        )
        lock.acquire()
        self._lock = lock
        for path in self.folder.glob(f"*{LOCK_SUFFIX}"):
            owner = path.name[: -len(LOCK_SUFFIX)]
            if owner != self.id:
                self.alive(owner)  # a dead one's files are removed on the way

    def release(self) -> None:
        """Give up the lock and remove this process's files: its rentals may be taken over."""
        with contextlib.suppress(OSError):
            self._activity_path(self.id).unlink()
        if self._lock is not None:
            with contextlib.suppress(OSError):
                self._lock.release()
            with contextlib.suppress(OSError):
                self._lock_path(self.id).unlink()
            self._lock = None

    @property
    def claimed(self) -> bool:
        return self._lock is not None

    # Others.

    def others_present(self) -> bool:
        """Whether another process has its lock file here (alive or not: one listing)."""
        try:
            with os.scandir(self.folder) as entries:
                return any(
                    e.name.endswith(LOCK_SUFFIX) and e.name != f"{self.id}{LOCK_SUFFIX}"
                    for e in entries
                )
        except OSError:
            return False

    def alive(self, owner: str | None) -> bool:
        """Whether `owner` holds its lock now (this process always does while it runs)."""
        if owner == self.id:
            return self.claimed
        if not owner or not _OWNER_ID.fullmatch(owner):
            return False
        path = self._lock_path(owner)
        if not path.exists():
            return False
        from filelock import FileLock, Timeout

        probe = FileLock(os.fspath(path), timeout=0, thread_local=False)
        try:
            probe.acquire()
        except Timeout:
            return True
        except OSError:
            return True  # cannot tell: the safe reading is that it is alive (it keeps its rentals)
        # Nobody held it: that process is gone. Its files go too.
        with contextlib.suppress(OSError):
            probe.release()
        for stale in (path, self._activity_path(owner)):
            with contextlib.suppress(OSError):
                stale.unlink()
        return False

    # Kernel activity, published and read.

    def publish(self, activity: Mapping[str, KernelActivity], now: float | None = None) -> None:
        """Write what this server's kernels on each rental do (only when it changed, or to say
        it is still so before it goes stale)."""
        now = time.time() if now is None else now
        rentals = {
            rid: {"kernels": a.kernels, "busy": a.busy, "lastActivity": a.last_activity}
            for rid, a in sorted(activity.items())
            if a.kernels or a.last_activity is not None
        }
        if self._published is not None:
            previous, at = self._published
            if previous == rentals and now - at < self._stale_after / 2:
                return
        body = {"owner": self.id, "at": now, "staleAfter": now + self._stale_after}
        body["rentals"] = rentals
        atomic_write(self._activity_path(self.id), json.dumps(body, sort_keys=True).encode())
        self._published = (rentals, now)

    def others(
        self, rental_ids: Collection[str], now: float | None = None
    ) -> dict[str, KernelActivity]:
        """What the kernels of the other live servers do on these rentals, summed."""
        now = time.time() if now is None else now
        wanted = set(rental_ids)
        found: dict[str, KernelActivity] = {}
        try:
            paths = sorted(self.folder.glob(f"*{ACTIVITY_SUFFIX}"))
        except OSError:
            return found
        for path in paths:
            owner = path.name[: -len(ACTIVITY_SUFFIX)]
            if owner == self.id or not self.alive(owner):
                continue
            try:
                body = json.loads(path.read_bytes())
                fresh = float(body["staleAfter"]) > now
                rentals = body["rentals"]
                assert isinstance(rentals, dict)
            except (OSError, ValueError, KeyError, TypeError, AssertionError):
                continue  # being written, or not ours: the next look reads it
            for rid in wanted.intersection(rentals):
                seen = _activity(rentals[rid], fresh)
                if seen is not None:
                    found[rid] = combine(found.get(rid, NO_KERNELS), seen)
        return found

    def _lock_path(self, owner: str) -> Path:
        return self.folder / f"{owner}{LOCK_SUFFIX}"

    def _activity_path(self, owner: str) -> Path:
        return self.folder / f"{owner}{ACTIVITY_SUFFIX}"


def _activity(item: Any, fresh: bool) -> KernelActivity | None:
    """One published entry; None when it is not one."""
    if not isinstance(item, dict):
        return None
    kernels, busy = _count(item.get("kernels")), _count(item.get("busy"))
    last = item.get("lastActivity")
    if kernels is None or busy is None:
        return None
    if last is not None and not (isinstance(last, (int, float)) and 0 <= last < 1e11):
        last = None
    # A server that stopped publishing (hung) must not keep a rental busy for ever.
    return KernelActivity(kernels=kernels, busy=busy if fresh else 0, last_activity=last)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
