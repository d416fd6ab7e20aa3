"""What it takes to reattach to a remote kernel, and how its connection is, one 0600 file each.

``<state dir>/kernels/<wrapper id>.json`` (the state dir is the server's, by default
``<Jupyter data dir>/gpuoutlet``): the rental, the ssh alias and config, the remote folder, the
wrapper id, the connection key, the ports, and the connection's state, which the server reads
for the sidebar (:func:`kernel_states`) and which lists the kernels left detached by a Jupyter
that went away (:func:`detached_kernels`). Stdlib and filelock only: the server, the magics and
the kernelspec writer read these without jupyter_client.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from filelock import FileLock

from ..ssh.fsutil import atomic_write, make_dir

log = logging.getLogger(__name__)

RECORDS_DIR = "kernels"
FORMAT_VERSION = 1
LOCK_TIMEOUT = 30.0


class State:
    """A kernel's connection, as :attr:`KernelRecord.state` says it."""

    CONNECTING = "connecting"  # starting, or adopting a detached kernel
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"  # the connection dropped; ``attempt`` says which try this is
    DETACHED = "detached"  # left running with no Jupyter attached (listed for adoption)


@dataclass
class KernelRecord:
    """One remote kernel, as kept with its rental (the key is in it: the file is 0600)."""

    wrapper: str  #: the keeper's id on the machine (and this file's name)
    rental_id: str
    kernel_name: str
    ssh_alias: str
    ssh_config_file: str
    known_hosts_file: str
    folder: str  #: the private folder on the machine
    transport: str  #: ipc or tcp: how ssh forwards reach the keeper
    remote_ports: dict[str, int]  #: tcp: the keeper's ports on the machine
    key: str
    signature_scheme: str
    python: str = "python3"
    ssh_executable: str = "ssh"
    session_name: str = ""  #: the notebook's path, when Jupyter said it
    kernel_id: str = ""  #: the kernel manager's id of the kernel in the process that owns it
    started_at: float = 0.0
    state: str = State.CONNECTING
    attempt: int = 0
    error: str = ""  #: why the last reconnect attempt failed
    since: float = 0.0  #: when ``state`` last changed (epoch seconds)
    detach_timeout: float | None = None
    owner_pid: int = 0  #: the process (a Jupyter server) whose provisioner drives the kernel
    owner_start: str = ""  #: that process's start time, against pid reuse
    adopt_next: bool = False  #: the next start of its kernelspec adopts this one
    ssh_pid: int = 0  #: the owner's ssh process carrying the connection now (0: none)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def detached(self) -> bool:
        """No live Jupyter drives it: it may be adopted (or shut down)."""
        return self.state == State.DETACHED or not owner_alive(self.owner_pid, self.owner_start)

    @property
    def expired(self) -> bool:
        """Detached for longer than its detach_timeout: the machine has ended it by now."""
        if not self.detached or self.detach_timeout is None:
            return False
        return time.time() - self.since > self.detach_timeout

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT_VERSION, **asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KernelRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def public(self) -> dict[str, Any]:
        """What the server may show (no key)."""
        shown = asdict(self)
        for secret in ("key", "extra"):
            shown.pop(secret, None)
        shown["detached"] = self.detached
        return shown


class KernelRecords:
    """The records folder of one state dir; every change under a file lock."""

    def __init__(self, state_dir: Path | str) -> None:
        self.folder = Path(state_dir) / RECORDS_DIR

    def path(self, wrapper: str) -> Path:
        if not wrapper.isalnum():
            raise ValueError(f"{wrapper!r} is not a wrapper id")
        return self.folder / f"{wrapper}.json"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self._make_folder()
        with FileLock(str(self.folder / ".lock"), timeout=LOCK_TIMEOUT):
            yield

    def _make_folder(self) -> None:
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        make_dir(self.folder, enforce_private=True)

    def write(self, record: KernelRecord) -> None:
        self._make_folder()
        data = json.dumps(record.to_json(), indent=1, sort_keys=True).encode()
        atomic_write(self.path(record.wrapper), data)

    def read(self, wrapper: str) -> KernelRecord | None:
        try:
            data = json.loads(self.path(wrapper).read_bytes())
            return KernelRecord.from_json(data)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            log.warning("the kernel record %s is unreadable (%s); ignored", wrapper, exc)
            return None

    def exists(self, wrapper: str) -> bool:
        return self.path(wrapper).exists()

    def remove(self, wrapper: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(wrapper).unlink()

    def all(self) -> list[KernelRecord]:
        try:
            names = sorted(os.listdir(self.folder))
        except (FileNotFoundError, NotADirectoryError):
            return []
        found = []
        for name in names:
            if name.endswith(".json") and not name.startswith("."):
                record = self.read(name[: -len(".json")])
                if record is not None:
                    found.append(record)
        return found

    def update(self, wrapper: str, **changes: Any) -> KernelRecord | None:
        """Change fields of a record that still exists (None when it is gone)."""
        with self.locked():
            record = self.read(wrapper)
            if record is None:
                return None
            for name, value in changes.items():
                setattr(record, name, value)
            self.write(record)
            return record

    def claim(self, rental_id: str, session_name: str = "") -> KernelRecord | None:
        """Take a detached kernel of the rental for this process (None when there is none).

        The one marked with :func:`request_adoption` first, then the one of the same notebook,
        then, for a start that names no notebook, the most recently started one.
        """
        with self.locked():
            candidates = [
                r
                for r in self.all()
                if r.rental_id == rental_id and r.detached and not self._drop_expired(r)
            ]
            candidates.sort(key=lambda r: r.started_at, reverse=True)
            chosen = next((r for r in candidates if r.adopt_next), None)
            if chosen is None and session_name:
                chosen = next((r for r in candidates if r.session_name == session_name), None)
            if chosen is None and not session_name and candidates:
                chosen = candidates[0]
            if chosen is None:
                return None
            chosen.owner_pid, chosen.owner_start = os.getpid(), process_start(os.getpid())
            chosen.state, chosen.since, chosen.attempt = State.CONNECTING, time.time(), 0
            chosen.adopt_next = False
            self.write(chosen)
            return chosen

    def _drop_expired(self, record: KernelRecord) -> bool:
        if record.expired:
            self.remove(record.wrapper)
            return True
        return False

    def forget_rental(self, rental_id: str) -> list[KernelRecord]:
        """The rental stopped (its machine is gone): drop its records; return them."""
        if not self.folder.is_dir():
            return []
        with self.locked():
            gone = [r for r in self.all() if r.rental_id == rental_id]
            for record in gone:
                self.remove(record.wrapper)
            return gone


# What the server, the magics and the sidebar call.


def default_state_dir() -> Path:
    """``<Jupyter data dir>/gpuoutlet``: the server extension's default ``state_dir``."""
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "gpuoutlet"


def kernel_states(state_dir: Path | str | None = None) -> list[KernelRecord]:
    """Every remote kernel known under ``state_dir`` with its connection state.

    ``state`` is ``connected``, ``reconnecting`` (``attempt`` is the try under way, ``error``
    why the last one failed), ``connecting``, or ``detached``; ``detached`` is also true of a
    kernel whose Jupyter went away. ``kernel_id`` maps a record to the server's kernel.
    """
    records = KernelRecords(state_dir or default_state_dir())
    return [r for r in records.all() if not r.expired]


def detached_kernels(state_dir: Path | str | None = None) -> dict[str, list[KernelRecord]]:
    """``{rental id: [detached kernels, newest first]}``: what may be reattached or shut down."""
    found: dict[str, list[KernelRecord]] = {}
    for record in sorted(kernel_states(state_dir), key=lambda r: r.started_at, reverse=True):
        if record.detached:
            found.setdefault(record.rental_id, []).append(record)
    return found


def request_adoption(wrapper: str, state_dir: Path | str | None = None) -> KernelRecord:
    """Make the next start of the rental's kernelspec adopt this detached kernel ("Reattach")."""
    records = KernelRecords(state_dir or default_state_dir())
    with records.locked():
        chosen = records.read(wrapper)
        if chosen is None or not chosen.detached:
            raise LookupError(f"no detached kernel {wrapper!r}: it ended or is attached")
        for other in records.all():
            if other.rental_id == chosen.rental_id and other.adopt_next:
                other.adopt_next = False
                records.write(other)
        chosen.adopt_next = True
        records.write(chosen)
        return chosen


def forget_rental(rental_id: str, state_dir: Path | str | None = None) -> None:
    """Drop the records of a rental that stopped (its machine, and so its kernels, are gone)."""
    KernelRecords(state_dir or default_state_dir()).forget_rental(rental_id)


# Owners.


def process_start(pid: int) -> str:
    """The start time of ``pid`` in clock ticks since boot ("" where /proc is missing)."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return ""
    fields_after = data[data.rfind(b")") + 2 :].split()
    return fields_after[19].decode() if len(fields_after) > 19 else ""


def owner_alive(pid: int, start: str) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return not start or process_start(pid) in ("", start)
