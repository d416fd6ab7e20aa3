"""The tar transport, for pods without rsync: one tar stream over the shared connection.

Up: this process writes the archive (Python's ``tarfile``, only the planned files) into ``ssh
… tar -x`` on the pod. Down: the pod's GNU tar archives the planned files (the list goes on its
stdin) and this process unpacks the stream itself: each file lands under a temporary name and is
renamed into place once complete, names outside the plan are refused, and nothing is written
through a symlink. A broken transfer resumes by skipping the files already complete (the plan's
quick check); a half-sent file is sent again. Runs in a worker thread (``tarfile`` blocks).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import stat
import subprocess
import tarfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

from .connection import SharedConnection
from .ignore import TEMP_MARK
from .listing import FileEntry
from .progress import ProgressMeter, Throttle

_CHUNK = 1 << 20
_THROTTLED_CHUNK = 64 << 10
_KILL_GRACE = 5.0


@dataclass
class TarOutcome:
    """How a tar stream ended."""

    returncode: int | None  #: the ssh client's exit status (the pod's tar's, over ssh)
    timed_out: bool
    stderr: str
    wire_bytes: int
    warnings: list[str]
    #: The pid of the pod's ``tar -x`` (an upload): it may still be unpacking buffered data
    #: after the stream was cut, and must be waited for before the result is judged.
    remote_pid: int | None = None


PID_MARK = "gpuoutlet-tar-pid"


def up_command(remote_root: str) -> str:
    """Unpack a tar stream from stdin into ``remote_root`` (created if missing), as its owner.

    The shell prints its pid (which ``exec`` hands to tar) on stderr first.
    """
    root = shlex.quote(remote_root)
    return (
        f"mkdir -p -- {root} && cd -- {root} && printf '{PID_MARK} %s\\n' \"$$\" >&2 && "
        "exec tar -x -f - --no-same-owner"
    )


def wait_command(pid: int, seconds: float) -> str:
    """Wait (at most ``seconds``) for the pod's process ``pid`` to exit."""
    rounds = max(1, int(seconds / 0.05))
    return (
        f"i=0; while kill -0 {int(pid)} 2>/dev/null && [ $i -lt {rounds} ]; do "
        "sleep 0.05; i=$((i+1)); done"
    )


def _split_pid(stderr: str) -> tuple[int | None, str]:
    pid = None
    kept = []
    for line in stderr.splitlines():
        if line.startswith(PID_MARK + " ") and line[len(PID_MARK) + 1 :].isdigit():
            pid = int(line[len(PID_MARK) + 1 :])
        else:
            kept.append(line)
    return pid, "\n".join(kept).strip()


def down_command(remote_root: str) -> str:
    """Archive the NUL-separated ``./paths`` read from stdin, from ``remote_root``, to stdout."""
    return f"cd -- {shlex.quote(remote_root)} && exec tar -c -f - --no-recursion --null -T -"


class _Stopped(Exception):
    """The transfer was told to stop (timeout or cancel)."""


class _Reader:
    """Reads exactly ``size`` bytes of a file for ``tarfile`` (zero-padded if it shrank)."""

    def __init__(
        self,
        handle: IO[bytes],
        size: int,
        on_bytes: Callable[[int], None],
        throttle: Throttle,
        stop: threading.Event,
    ) -> None:
        self._handle = handle
        self._left = size
        self._on_bytes = on_bytes
        self._throttle = throttle
        self._stop = stop
        self.changed = False

    def read(self, count: int = -1) -> bytes:
        if self._stop.is_set():
            raise _Stopped
        if count < 0 or count > self._left:
            count = self._left
        data = self._handle.read(count)
        if len(data) < count:
            self.changed = True
            data += b"\0" * (count - len(data))
        self._left -= len(data)
        self._throttle.consume(len(data), self._stop)
        self._on_bytes(len(data))
        return data


class _CountingWriter:
    """Counts the bytes ``tarfile`` writes into the ssh client's stdin."""

    def __init__(self, sink: IO[bytes]) -> None:
        self._sink = sink
        self.count = 0

    def write(self, data: bytes) -> int:
        self._sink.write(data)
        self.count += len(data)
        return len(data)

    def flush(self) -> None:
        self._sink.flush()


def _tarinfo(root: Path, entry: FileEntry) -> tuple[tarfile.TarInfo, int]:
    st = os.lstat(root / entry.path)
    info = tarfile.TarInfo(entry.path)
    info.mtime = int(st.st_mtime)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(st.st_mode):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(root / entry.path)
    else:
        info.type = tarfile.REGTYPE
        info.size = st.st_size
    return info, st.st_size


def _send(
    proc: subprocess.Popen[bytes],
    root: Path,
    entries: Sequence[FileEntry],
    meter: ProgressMeter,
    throttle: Throttle,
    stop: threading.Event,
    warnings: list[str],
) -> int:
    assert proc.stdin is not None
    writer = _CountingWriter(proc.stdin)
    chunk = _CHUNK if throttle.rate is None else _THROTTLED_CHUNK
    try:
        with tarfile.open(
            fileobj=cast("IO[bytes]", writer), mode="w|", format=tarfile.PAX_FORMAT, bufsize=chunk
        ) as archive:
            for entry in entries:
                if stop.is_set():
                    raise _Stopped
                try:
                    info, _ = _tarinfo(root, entry)
                except FileNotFoundError:
                    warnings.append(f"{entry.path}: vanished before it could be sent")
                    continue
                if info.type != tarfile.REGTYPE:
                    archive.addfile(info)
                    if info.type == tarfile.SYMTYPE:
                        meter.update(add_files=1, current=entry.path)
                    continue
                with open(root / entry.path, "rb") as handle:
                    reader = _Reader(
                        handle, info.size, lambda n: meter.update(add_bytes=n), throttle, stop
                    )
                    meter.update(current=entry.path)
                    archive.addfile(info, reader)
                if reader.changed:
                    warnings.append(f"{entry.path}: changed while it was being sent")
                meter.update(add_files=1)
    except (BrokenPipeError, ConnectionResetError, _Stopped):
        pass
    finally:
        with contextlib.suppress(OSError):
            proc.stdin.close()
    return writer.count


def _safe_target(root: Path, relative: str) -> Path | None:
    """``root/relative`` when no part of it escapes ``root`` or passes through a symlink."""
    parts = [p for p in relative.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        return None
    current = root
    for part in parts[:-1]:
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            continue  # created below, as a real folder
        if not stat.S_ISDIR(st.st_mode):
            return None
    return root.joinpath(*parts)


def _temp_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}{TEMP_MARK}")


def _receive(
    proc: subprocess.Popen[bytes],
    root: Path,
    wanted: set[str],
    meter: ProgressMeter,
    throttle: Throttle,
    stop: threading.Event,
    warnings: list[str],
) -> int:
    assert proc.stdout is not None
    dir_times: list[tuple[Path, float, int]] = []
    counted = _CountingReader(proc.stdout)
    try:
        with tarfile.open(fileobj=cast("IO[bytes]", counted), mode="r|") as archive:
            for member in archive:
                if stop.is_set():
                    raise _Stopped
                name = member.name[2:] if member.name.startswith("./") else member.name
                name = name.rstrip("/")
                target = _safe_target(root, name) if name in wanted else None
                if target is None:
                    warnings.append(
                        f"{member.name!r}: not asked for, or outside the folder; ignored"
                    )
                    continue
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    dir_times.append((target, member.mtime, member.mode))
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                temp = _temp_name(target)
                with contextlib.suppress(FileNotFoundError):
                    temp.unlink()
                if member.issym():
                    os.symlink(member.linkname, temp)
                    with contextlib.suppress(OSError, NotImplementedError):
                        os.utime(temp, (member.mtime, member.mtime), follow_symlinks=False)
                    os.replace(temp, target)
                    meter.update(add_files=1, current=name)
                    continue
                if not member.isfile():
                    warnings.append(f"{name}: not a regular file, folder or link; ignored")
                    continue
                source = archive.extractfile(member)
                assert source is not None
                meter.update(current=name)
                try:
                    with open(temp, "wb") as out:
                        while data := source.read(
                            _CHUNK if throttle.rate is None else _THROTTLED_CHUNK
                        ):
                            if stop.is_set():
                                raise _Stopped
                            out.write(data)
                            throttle.consume(len(data), stop)
                            meter.update(add_bytes=len(data))
                    os.chmod(temp, member.mode & 0o7777)
                    os.utime(temp, (member.mtime, member.mtime))
                    if os.path.getsize(temp) != member.size:
                        raise tarfile.ReadError(f"{name}: the stream ended inside it")
                    os.replace(temp, target)
                except BaseException:
                    with contextlib.suppress(OSError):
                        temp.unlink()
                    raise
                meter.update(add_files=1)
    except (_Stopped, tarfile.ReadError, EOFError, OSError) as exc:
        if not isinstance(exc, _Stopped) and not stop.is_set():
            warnings.append(f"the tar stream broke off: {exc}")
    finally:
        for folder, mtime, mode in reversed(dir_times):
            with contextlib.suppress(OSError):
                os.chmod(folder, mode & 0o7777)
                os.utime(folder, (mtime, mtime))
    return counted.count


class _CountingReader:
    def __init__(self, source: IO[bytes]) -> None:
        self._source = source
        self.count = 0

    def read(self, count: int = -1) -> bytes:
        data = self._source.read(count)
        self.count += len(data)
        return data


async def run_tar(
    connection: SharedConnection,
    entries: Sequence[FileEntry],
    *,
    direction: str,
    local_root: Path,
    remote_root: str,
    meter: ProgressMeter,
    deadline: float | None,
    bwlimit: float | None = None,
) -> TarOutcome:
    """Send (``up``) or fetch (``down``) ``entries`` as one tar stream; stop at ``deadline``."""
    loop = asyncio.get_running_loop()
    stop = threading.Event()
    throttle = Throttle(bwlimit)
    warnings: list[str] = []
    command = up_command(remote_root) if direction == "up" else down_command(remote_root)
    argv = connection.argv(command)
    started: list[subprocess.Popen[bytes]] = []  # the ssh client, once the worker started it
    stderr_chunks: list[bytes] = []
    async with connection.session():

        def drain_stderr(proc: subprocess.Popen[bytes]) -> None:
            assert proc.stderr is not None
            while data := proc.stderr.read(65536):
                stderr_chunks.append(data)

        def feed_names(proc: subprocess.Popen[bytes]) -> None:
            assert proc.stdin is not None
            try:
                for entry in entries:
                    proc.stdin.write(b"./" + os.fsencode(entry.path) + b"\0")
            except (BrokenPipeError, ConnectionResetError, ValueError):
                pass
            finally:
                with contextlib.suppress(OSError):
                    proc.stdin.close()

        def work() -> int:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL if direction == "up" else subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
            started.append(proc)
            if stop.is_set():  # timed out before the client even started
                _terminate(proc)
            errors = threading.Thread(target=drain_stderr, args=(proc,), daemon=True)
            errors.start()
            try:
                if direction == "up":
                    return _send(proc, local_root, entries, meter, throttle, stop, warnings)
                names = threading.Thread(target=feed_names, args=(proc,), daemon=True)
                names.start()
                wanted = {e.path for e in entries}
                count = _receive(proc, local_root, wanted, meter, throttle, stop, warnings)
                names.join()
                return count
            finally:
                proc.wait()
                errors.join()

        future = loop.run_in_executor(None, work)
        timed_out = False
        try:
            remaining = None if deadline is None else max(0.0, deadline - loop.time())
            wire = await asyncio.wait_for(asyncio.shield(future), remaining)
        except asyncio.TimeoutError:
            timed_out = True
            stop.set()
            for proc in started:
                _terminate(proc)
            wire = await future
        except BaseException:
            stop.set()
            for proc in started:
                _terminate(proc)
            with contextlib.suppress(Exception):
                await future
            raise
    pid, stderr = _split_pid(b"".join(stderr_chunks).decode("utf-8", "replace"))
    return TarOutcome(
        started[0].returncode if started else None, timed_out, stderr, wire, warnings, pid
    )


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    """End the ssh client we started (by pid): its stream stops, the pod's tar gets EOF."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
