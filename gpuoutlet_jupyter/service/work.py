"""What the service keeps about the work on a rental's pod, beside the rental itself.

Where its work is saved from before a stop (its save paths), the saves made and what each
copied, the transfer running now (a sync, a save) with its progress, and the working folder's
preparation (pushed, then the setup command) before its kernel is offered. The saver
(``gpuoutlet_jupyter.saves``) does the work; this is its record, persisted with the rental and
shown to every viewer, and ``WorkUpdates`` is how the saver changes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .idle import iso

if TYPE_CHECKING:
    from ..api import Rental
    from .access import AccessWriter
    from .record import RentalRecord
    from .tracker import Tracker

#: 9999-12-31T23:59:59Z: the latest time a timestamp can show.
LAST_TIMESTAMP = 253_402_300_799
#: Saves kept per rental (newest last); the oldest go first.
MAX_SAVES = 10
#: Lines of the setup command's output kept (the last ones).
MAX_OUTPUT_LINES = 200
#: Why a save was made: a stop asked by a person or made by the service, "Save now", or ahead
#: of a stop gpuoutlet makes (its autoStopAfterHours, the wallet reaching $0).
SAVE_REASONS = ("user", "idle", "cap", "manual", "auto_stop", "wallet")


@dataclass(frozen=True)
class SaveInfo:
    """One save: which of the pod's folders, to where, when, and what it did not copy."""

    reason: str
    paths: tuple[str, ...]
    local_dir: str
    started_at: float
    finished_at: float
    files: int = 0
    bytes: int = 0
    complete: bool = False
    left_out_files: int = 0
    left_out_bytes: int = 0
    timed_out: bool = False
    #: Save paths the pod does not have.
    missing: tuple[str, ...] = ()
    error: str | None = None
    summary: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "paths": list(self.paths),
            "localDir": self.local_dir,
            "startedAt": iso(self.started_at),
            "finishedAt": iso(self.finished_at),
            "files": self.files,
            "bytes": self.bytes,
            "complete": self.complete,
            "leftOutFiles": self.left_out_files,
            "leftOutBytes": self.left_out_bytes,
            "timedOut": self.timed_out,
            "missing": list(self.missing),
            "error": self.error,
            "summary": self.summary,
        }

    def to_state(self) -> dict[str, Any]:
        return {
            **self.to_json(),
            "startedAtEpoch": self.started_at,
            "finishedAtEpoch": self.finished_at,
        }

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> SaveInfo:
        return cls(
            reason=str(data["reason"]),
            paths=tuple(str(p) for p in data.get("paths") or ()),
            local_dir=str(data["localDir"]),
            started_at=float(data.get("startedAtEpoch") or data["finishedAtEpoch"]),
            finished_at=float(data["finishedAtEpoch"]),
            files=int(data.get("files") or 0),
            bytes=int(data.get("bytes") or 0),
            complete=bool(data.get("complete")),
            left_out_files=int(data.get("leftOutFiles") or 0),
            left_out_bytes=int(data.get("leftOutBytes") or 0),
            timed_out=bool(data.get("timedOut")),
            missing=tuple(str(p) for p in data.get("missing") or ()),
            error=data.get("error") if isinstance(data.get("error"), str) else None,
            summary=str(data.get("summary") or ""),
        )


@dataclass(frozen=True)
class TransferInfo:
    """A transfer between this machine and the pod: running now, or the last one."""

    id: str
    #: ``upload``, ``download``, ``save`` or ``workdir`` (the push before the kernel).
    kind: str
    #: ``running``, ``done``, ``failed`` or ``cancelled``.
    state: str
    local_dir: str
    remote_dirs: tuple[str, ...]
    started_at: float
    finished_at: float | None = None
    bytes_done: int = 0
    bytes_total: int = 0
    files_done: int = 0
    files_total: int = 0
    #: Bytes per second over the last few seconds.
    rate: float = 0.0
    current: str | None = None
    method: str | None = None
    #: Bytes that went over ssh (less than the files' size when a cut transfer resumed).
    wire_bytes: int | None = None
    summary: str | None = None
    error: str | None = None

    @property
    def running(self) -> bool:
        return self.state == "running"

    def to_json(self) -> dict[str, Any]:
        end = self.finished_at if self.finished_at is not None else time.time()
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "localDir": self.local_dir,
            "remoteDirs": list(self.remote_dirs),
            "startedAt": iso(self.started_at),
            "finishedAt": iso(self.finished_at),
            "elapsedSeconds": round(max(0.0, end - self.started_at), 1),
            "bytesDone": self.bytes_done,
            "bytesTotal": self.bytes_total,
            "filesDone": self.files_done,
            "filesTotal": self.files_total,
            "rate": round(self.rate, 1),
            "current": self.current,
            "method": self.method,
            "wireBytes": self.wire_bytes,
            "summary": self.summary,
            "error": self.error,
        }

    def to_state(self) -> dict[str, Any]:
        return {
            **self.to_json(),
            "startedAtEpoch": self.started_at,
            "finishedAtEpoch": self.finished_at,
        }

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> TransferInfo:
        info = cls(
            id=str(data["id"]),
            kind=str(data["kind"]),
            state=str(data["state"]),
            local_dir=str(data.get("localDir") or ""),
            remote_dirs=tuple(str(p) for p in data.get("remoteDirs") or ()),
            started_at=float(data["startedAtEpoch"]),
            finished_at=_float(data.get("finishedAtEpoch")),
            bytes_done=int(data.get("bytesDone") or 0),
            bytes_total=int(data.get("bytesTotal") or 0),
            files_done=int(data.get("filesDone") or 0),
            files_total=int(data.get("filesTotal") or 0),
            method=data.get("method") if isinstance(data.get("method"), str) else None,
            wire_bytes=_int(data.get("wireBytes")),
            summary=data.get("summary") if isinstance(data.get("summary"), str) else None,
            error=data.get("error") if isinstance(data.get("error"), str) else None,
        )
        if info.running:  # the process that ran it ended: it is not running any more
            info = replace(
                info,
                state="failed",
                finished_at=info.started_at,
                error="Interrupted: the Jupyter server (or kernel) that ran it ended. Run it "
                "again to resume; files that arrived whole are kept.",
            )
        return info


@dataclass(frozen=True)
class WorkdirInfo:
    """The working folder pushed to the pod and the setup command, before the kernel is offered."""

    local_dir: str | None
    remote_dir: str
    setup: str | None
    #: ``pending``, ``syncing``, ``setup``, ``done`` or ``failed``.
    state: str = "pending"
    output: tuple[str, ...] = ()
    exit_status: int | None = None
    error: str | None = None

    @property
    def holds_kernel(self) -> bool:
        """The kernel waits while the folder is pushed and the setup runs."""
        return self.state not in ("done", "failed")

    def to_json(self) -> dict[str, Any]:
        return {
            "localDir": self.local_dir,
            "remoteDir": self.remote_dir,
            "setup": self.setup,
            "state": self.state,
            "output": list(self.output),
            "exitStatus": self.exit_status,
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WorkdirInfo:
        state = str(data.get("state") or "pending")
        output = tuple(str(line) for line in data.get("output") or ())
        if state in ("syncing", "setup"):
            # Interrupted by a restart: done again (the push resumes; the setup runs again).
            state = "pending"
            output = (*output, "[interrupted by a restart: starting again]")
        return cls(
            local_dir=data.get("localDir") if isinstance(data.get("localDir"), str) else None,
            remote_dir=str(data["remoteDir"]),
            setup=data.get("setup") if isinstance(data.get("setup"), str) else None,
            state=state,
            output=output[-MAX_OUTPUT_LINES:],
            exit_status=data.get("exitStatus") if isinstance(data.get("exitStatus"), int) else None,
            error=data.get("error") if isinstance(data.get("error"), str) else None,
        )


@dataclass(frozen=True)
class WorkRequest:
    """What a create asks of a rental's work, beside the rentals API's fields."""

    #: The pod's folders to save before a stop (None: the remote working folder).
    save_paths: tuple[str, ...] | None = None
    #: A local folder pushed to the remote working folder once it runs, before its kernel.
    sync_workdir: str | None = None
    #: A command run once in the remote working folder after the push, before its kernel.
    setup: str | None = None


@dataclass
class WorkInfo:
    """A rental's work: its save paths, saves, transfer and working folder (see the module)."""

    #: The pod's folders saved before a stop; None: the remote working folder.
    save_paths: tuple[str, ...] | None = None
    #: ``autoStopAfterHours`` of its create (the API does not echo it on the rental).
    auto_stop_hours: float | None = None
    saves: list[SaveInfo] = field(default_factory=list)
    transfer: TransferInfo | None = None
    workdir: WorkdirInfo | None = None
    #: Epoch seconds of the saves made ahead of gpuoutlet's own stops, by reason.
    vendor_saves: dict[str, float] = field(default_factory=dict)
    #: Not persisted: the service's remote working folder (the default save path).
    default_path: str = field(default="~/work", compare=False)

    @property
    def paths(self) -> tuple[str, ...]:
        """The save paths in effect."""
        return self.save_paths if self.save_paths is not None else (self.default_path,)

    @property
    def holds_kernel(self) -> bool:
        return self.workdir is not None and self.workdir.holds_kernel

    def start(self, request: WorkRequest | None, auto_stop_hours: float | None) -> None:
        """A rental just created: what its create asked for."""
        self.auto_stop_hours = auto_stop_hours
        if request is None:
            return
        self.save_paths = request.save_paths
        if request.sync_workdir is not None or request.setup is not None:
            self.workdir = WorkdirInfo(request.sync_workdir, self.default_path, request.setup)

    def add_save(self, save: SaveInfo) -> None:
        self.saves = [*self.saves, save][-MAX_SAVES:]

    def auto_stop_at(self, rental: Rental) -> float | None:
        """When gpuoutlet stops it for its autoStopAfterHours (counted from ``startedAt``: the
        sheet does not say from when; this is the earliest reading, so a save is never late)."""
        if not self.auto_stop_hours:
            return None
        at = rental.started_at.timestamp() + self.auto_stop_hours * 3600
        # The sheet gives no maximum: one past the last second a timestamp can show
        # (9999-12-31) is a deadline that never comes, as the sandbox keeps it.
        return at if at <= LAST_TIMESTAMP else None

    def view(self, rental: Rental) -> dict[str, Any]:
        """The members of a rental's REST view (``RentalView``) that this holds."""
        return {
            "savePaths": list(self.paths),
            "savePathsDefault": self.save_paths is None,
            "saves": [s.to_json() for s in reversed(self.saves)],
            "transfer": self.transfer.to_json() if self.transfer else None,
            "workdir": self.workdir.to_json() if self.workdir else None,
            "autoStopAt": iso(self.auto_stop_at(rental)),
        }

    def to_state(self) -> dict[str, Any]:
        return {
            "savePaths": list(self.save_paths) if self.save_paths is not None else None,
            "autoStopHours": self.auto_stop_hours,
            "saves": [s.to_state() for s in self.saves],
            "transfer": self.transfer.to_state() if self.transfer else None,
            "workdir": self.workdir.to_json() if self.workdir else None,
            "vendorSaves": dict(self.vendor_saves),
        }

    @classmethod
    def from_state(cls, data: Any) -> WorkInfo | None:
        """Inverse of ``to_state``; None when ``data`` cannot be read (the record ignores it)."""
        if not isinstance(data, dict):
            return None
        try:
            paths = data.get("savePaths")
            hours = data.get("autoStopHours")
            return cls(
                save_paths=tuple(str(p) for p in paths) if isinstance(paths, list) else None,
                auto_stop_hours=float(hours) if isinstance(hours, (int, float)) else None,
                saves=[SaveInfo.from_state(s) for s in data.get("saves") or []][-MAX_SAVES:],
                transfer=(
                    TransferInfo.from_state(data["transfer"]) if data.get("transfer") else None
                ),
                workdir=WorkdirInfo.from_json(data["workdir"]) if data.get("workdir") else None,
                vendor_saves={
                    str(k): float(v)
                    for k, v in (data.get("vendorSaves") or {}).items()
                    if isinstance(v, (int, float))
                },
            )
        except (KeyError, TypeError, ValueError):
            return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class WorkUpdates:
    """How the saver changes a rental's work record: under the rental's lock, then told to every
    viewer (and persisted, unless it is only progress). The kernel is offered once the working
    folder is ready (the access step runs again after each change)."""

    def __init__(self, tracker: Tracker, access: AccessWriter) -> None:
        self._tracker = tracker
        self._access = access

    def record(self, rental_id: str) -> RentalRecord | None:
        return self._tracker.get(rental_id)

    def records(self) -> list[RentalRecord]:
        return self._tracker.all()

    async def change(
        self, rental_id: str, change: Callable[[WorkInfo], None], *, persist: bool = True
    ) -> RentalRecord | None:
        """Apply ``change`` to the rental's work and announce it; None: not tracked."""
        record = self._tracker.get(rental_id)
        if record is None:
            return None
        async with self._tracker.lock(rental_id):
            had_kernel_held = record.work.holds_kernel
            change(record.work)
            if had_kernel_held and not record.work.holds_kernel:
                await self._access.act(record, rewrite=True)
            await self._tracker.bump(record, persist=persist)
        return record
