"""One ssh process running the wrapper's front: its events, its stderr, its stdin (asyncio)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import Callable, Collection, Sequence
from typing import Any

from .wrapper import Command, Event

STDERR_TAIL_BYTES = 16_384
# The kernel's output lines copied to the server log per process; the rest only to the tail.
LOGGED_LINES = 500
# Lines ssh may print before it gives up on a stdin we stopped writing to.
LINE_LIMIT = 64 << 20


class SSHEnded(Exception):
    """ssh exited (or its wrapper closed stdout) before the awaited event."""


class SSHProcess:
    """Runs ``argv`` (an ssh command) on the running loop and reads it as it goes.

    Events from the wrapper resolve the futures of :meth:`expect` and reach ``on_event``;
    stderr (ssh's own words, the kernel's output) is logged and its tail kept for error
    messages. Writes to stdin never block: a stopped ssh must not stall anything.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        label: str,
        log: logging.Logger | logging.LoggerAdapter[Any],
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.argv = list(argv)
        self.label = label
        self.log = log
        self.on_event = on_event
        self.proc: asyncio.subprocess.Process | None = None
        self.last_heard = 0.0
        self._tail = bytearray()
        self._logged = 0
        self._waiters: list[tuple[frozenset[str], asyncio.Future[dict[str, Any]]]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.ended: asyncio.Event = asyncio.Event()

    async def start(self, first_input: bytes) -> None:
        """Start ssh and hand it ``first_input`` (the wrapper and its config)."""
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=LINE_LIMIT,
            # Its own session: a ^C meant for the Jupyter server must not kill the kernel's ssh.
            start_new_session=True,
        )
        self.last_heard = asyncio.get_running_loop().time()
        self.send(first_input)
        self._tasks = [
            asyncio.create_task(self._read_events()),
            asyncio.create_task(self._read_stderr()),
        ]

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode if self.proc is not None else None

    @property
    def alive(self) -> bool:
        """ssh runs and the wrapper's stdout is still open."""
        return self.proc is not None and not self.ended.is_set()

    # Input.

    def send(self, data: bytes) -> bool:
        stdin = self.proc.stdin if self.proc is not None else None
        if stdin is None or stdin.is_closing():
            return False
        stdin.write(data)
        return True

    def command(self, name: str, argument: str = "") -> bool:
        line = f"{name} {argument}".strip() if argument else name
        return self.send(line.encode("utf-8") + b"\n")

    def ping(self) -> None:
        """A ping, unless the last one is still queued (a stopped ssh must not pile them up)."""
        stdin = self.proc.stdin if self.proc is not None else None
        if (
            stdin is not None
            and not stdin.is_closing()
            and stdin.transport.get_write_buffer_size() == 0
        ):
            self.command(Command.PING)

    def close_stdin(self) -> None:
        stdin = self.proc.stdin if self.proc is not None else None
        if stdin is not None and not stdin.is_closing():
            stdin.close()

    def signal(self, signum: int) -> None:
        """Signal the local ssh process (ours: started here)."""
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signum)

    async def wait(self, timeout: float | None = None) -> bool:
        """Whether ssh exited (and its readers finished) within ``timeout``."""
        if self.proc is None:
            return True
        exited = asyncio.ensure_future(self.proc.wait())
        # asyncio.wait, not wait_for: a timeout must not cancel the readers.
        _, pending = await asyncio.wait([exited, *self._tasks], timeout=timeout)
        exited.cancel()
        return not pending

    async def stop(self, grace: float = 3.0) -> None:
        """Let ssh end within ``grace`` (after its stdin closed), else end it; reap it."""
        if self.proc is None:
            return
        # The wrapper closes its stdout when it is done; ssh itself may linger on forwarded
        # connections that Jupyter's clients keep open: once the wrapper is gone, we end it.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.ended.wait(), grace)
        if not await self.wait(0.3):
            self.signal(signal.SIGTERM)
            if not await self.wait(2.0):
                self.signal(signal.SIGKILL)
                await self.wait(5.0)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        # The pipes' transports close with the process; stdin may still be open.
        self.close_stdin()

    # Events.

    def expect(self, kinds: Collection[str]) -> asyncio.Future[dict[str, Any]]:
        """A future for the next event of one of ``kinds``; SSHEnded if ssh ends first."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        if self.ended.is_set():
            future.set_exception(SSHEnded())
        else:
            self._waiters.append((frozenset(kinds), future))
        return future

    async def _read_events(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        stream = self.proc.stdout
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    raw = await stream.readline()
                except ValueError:  # a line over the limit: not one of ours
                    continue
                if not raw:
                    break
                event = _parse_event(raw)
                if event is None:
                    if raw.strip():
                        self.log.debug("%s: stdout: %r", self.label, raw[:200])
                    continue
                self.last_heard = loop.time()
                self._dispatch(event)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self.ended.set()
            for _, future in self._waiters:
                if not future.done():
                    future.set_exception(SSHEnded())
                    future.exception()  # retrieved: nobody may be waiting any more
            self._waiters = []

    def _dispatch(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == Event.OUTPUT:
            self._add_output(str(event.get("text", "")).encode("utf-8", "replace"))
        if self.on_event is not None:
            self.on_event(event)
        keep = []
        for kinds, future in self._waiters:
            if future.done():
                continue
            if kind in kinds:
                future.set_result(event)
            else:
                keep.append((kinds, future))
        self._waiters = keep

    async def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        stream = self.proc.stderr
        with contextlib.suppress(OSError):
            while chunk := await stream.read(65536):
                self._add_output(chunk)

    def _add_output(self, chunk: bytes) -> None:
        self._tail += chunk
        del self._tail[:-STDERR_TAIL_BYTES]
        for line in chunk.decode("utf-8", "replace").splitlines():
            text = line.rstrip("\r")
            if not text.strip():
                continue
            self._logged += 1
            if self._logged <= LOGGED_LINES:
                self.log.info("%s: %s", self.label, text[:2000])
            elif self._logged == LOGGED_LINES + 1:
                self.log.info("%s: (more output not logged)", self.label)

    def stderr_tail(self, limit: int = 4000) -> str:
        """The end of what ssh and the remote side wrote, for error messages."""
        data = bytes(self._tail[-limit:])
        return data.decode("utf-8", "replace").replace("\r\n", "\n").strip()


def _parse_event(raw: bytes) -> dict[str, Any] | None:
    if not raw.startswith(b"{") or b'"gpuoutlet"' not in raw:
        return None
    try:
        event = json.loads(raw)
    except ValueError:
        return None
    return event if isinstance(event, dict) and "event" in event else None
