"""The rsync transport: the planned files, over the shared connection, resumable, with progress."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .connection import SharedConnection
from .ignore import PARTIAL_DIR
from .progress import ProgressMeter

#: rsync exits 23 when some files could not be sent and 24 when some vanished on the way:
#: what did arrive is still good, and the verification says which.
PARTIAL_EXIT = frozenset({23, 24})
_TERM_GRACE = 5.0
_PROGRESS_RE = re.compile(
    rb"^\s*([\d,.]+)\s+\d+%\s+\S+\s+\S+(?:\s+\(xfr#(\d+),\s*(?:to|ir)-chk=\d+/\d+\))?"
)
_STAT_RE = re.compile(
    rb"^(Literal data|Matched data|Total bytes sent|Total bytes received"
    rb"|Number of regular files transferred):\s*([\d,]+)"
)
#: rsync's own words for its exit codes (rsync(1), EXIT VALUES).
EXIT_MEANINGS = {
    1: "syntax or usage error",
    2: "protocol incompatibility (is the pod's shell printing text on login?)",
    3: "errors selecting input/output files or folders",
    5: "error starting the client-server protocol",
    10: "error in socket I/O",
    11: "error in file I/O (is a disk full?)",
    12: "error in the rsync protocol data stream (the connection may have dropped)",
    20: "interrupted",
    23: "some files could not be transferred",
    24: "some source files vanished before they could be transferred",
    30: "timeout in data send/receive",
    35: "timeout waiting for daemon connection",
    255: "the ssh connection failed",
}


@dataclass
class RsyncOutcome:
    """How an rsync run ended."""

    returncode: int
    timed_out: bool
    stderr: str
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def files_transferred(self) -> int | None:
        """rsync's own count of the regular files it sent (``--stats``)."""
        return self.stats.get("Number of regular files transferred")

    @property
    def wire_bytes(self) -> int | None:
        sent, received = self.stats.get("Total bytes sent"), self.stats.get("Total bytes received")
        return None if sent is None or received is None else sent + received


def rsync_argv(
    connection: SharedConnection,
    *,
    direction: str,
    local_root: Path,
    remote_root: str,
    bwlimit: float | None,
    overwrite_newer: bool,
    rsync: str = "rsync",
) -> list[str]:
    """rsync's argv: the file list comes on stdin (NUL-separated), ssh is the shared connection."""
    argv = [
        rsync,
        "--protect-args",  # paths go over the protocol, not through the pod's shell
        "--links",
        "--perms",
        "--times",
        f"--partial-dir={PARTIAL_DIR}",  # a broken transfer resumes; no truncated file in place
        "--from0",
        "--files-from=-",
        "--ignore-missing-args",  # a planned file removed meanwhile is not an error
        "--info=progress2",
        "--no-human-readable",
        "--stats",
        "-e",
        connection.rsh(),
    ]
    if not overwrite_newer:
        argv.append("--update")
    if bwlimit is not None:
        argv.append(f"--bwlimit={max(1, int(bwlimit // 1024))}")
    local = os.fspath(local_root).rstrip("/") + "/"
    remote = f"{connection.alias}:{remote_root.rstrip('/') or '/'}/"
    argv += ["--", local, remote] if direction == "up" else ["--", remote, local]
    return argv


def _number(raw: bytes) -> int:
    return int(raw.replace(b",", b"").split(b".")[0] or b"0")


async def run_rsync(
    connection: SharedConnection,
    paths: Sequence[str],
    *,
    direction: str,
    local_root: Path,
    remote_root: str,
    meter: ProgressMeter,
    deadline: float | None,
    bwlimit: float | None = None,
    overwrite_newer: bool = False,
) -> RsyncOutcome:
    """Run rsync for ``paths`` (relative to both roots) and follow its progress.

    At ``deadline`` (loop time) rsync gets SIGTERM, which makes it keep the partial file in
    ``.gpuoutlet-partial`` for the next run to resume from; its ssh client goes with it (the
    process group is ours).
    """
    argv = rsync_argv(
        connection,
        direction=direction,
        local_root=local_root,
        remote_root=remote_root,
        bwlimit=bwlimit,
        overwrite_newer=overwrite_newer,
    )
    listing = b"".join(os.fsencode(p) + b"\0" for p in paths)
    loop = asyncio.get_running_loop()
    async with connection.session():
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            env={**os.environ, "LC_ALL": "C"},
        )
        stats: dict[str, int] = {}
        stderr = bytearray()

        async def feed() -> None:
            assert proc.stdin is not None
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                proc.stdin.write(listing)
                await proc.stdin.drain()
            proc.stdin.close()

        async def follow() -> None:
            assert proc.stdout is not None
            pending = b""
            while chunk := await proc.stdout.read(65536):
                pending += chunk
                *lines, pending = re.split(rb"[\r\n]", pending)
                for line in lines:
                    _parse_line(line, meter, stats)
            _parse_line(pending, meter, stats)

        async def errors() -> None:
            assert proc.stderr is not None
            while chunk := await proc.stderr.read(65536):
                stderr.extend(chunk)

        work = asyncio.gather(feed(), follow(), errors(), proc.wait())
        timed_out = False
        try:
            remaining = None if deadline is None else max(0.0, deadline - loop.time())
            await asyncio.wait_for(asyncio.shield(work), remaining)
        except asyncio.TimeoutError:
            timed_out = True
            await _stop(proc)
            await work
        except BaseException:
            await _stop(proc)
            with contextlib.suppress(Exception):
                await work
            raise
    assert proc.returncode is not None
    return RsyncOutcome(
        proc.returncode, timed_out, stderr.decode("utf-8", "replace").strip(), stats
    )


def _parse_line(line: bytes, meter: ProgressMeter, stats: dict[str, int]) -> None:
    match = _PROGRESS_RE.match(line)
    if match is not None:
        done = _number(match.group(1))
        files = int(match.group(2)) if match.group(2) else None
        meter.update(bytes_done=min(done, max(meter.bytes_total, done)), files_done=files)
        return
    stat_match = _STAT_RE.match(line.strip())
    if stat_match is not None:
        stats[stat_match.group(1).decode()] = _number(stat_match.group(2))


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM rsync's process group (rsync saves its partial file), SIGKILL if it lingers."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), _TERM_GRACE)
    except asyncio.TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
