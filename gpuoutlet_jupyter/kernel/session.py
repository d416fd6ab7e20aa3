"""One ssh process of a remote kernel: its wrapper's events, its stderr, the heartbeat."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import threading
from collections.abc import Sequence
from typing import IO, Any

STDERR_TAIL_BYTES = 16_384
# The kernel's stderr lines copied to the server log per session; the rest only to the tail.
LOGGED_LINES = 500


class SSHSession:
    """Runs ``argv`` (an ssh command) with pipes and watches it from three daemon threads.

    Thread-safe: the reader threads record events and the stderr tail; the heartbeat thread
    writes ``ping`` every ``heartbeat_interval`` seconds. Writes to ssh's stdin never block
    (a stopped ssh must not stall the Jupyter server): what does not fit waits in a buffer.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        label: str,
        log: logging.Logger | logging.LoggerAdapter[Any],
        heartbeat_interval: float,
    ) -> None:
        self.argv = list(argv)
        self.label = label
        self.log = log
        self.heartbeat_interval = heartbeat_interval
        self.proc: subprocess.Popen[bytes] | None = None
        self.events: list[dict[str, Any]] = []
        self.wrapper_pid: int | None = None
        self.kernel_pid: int | None = None
        #: The last kernel's exit status once the wrapper reported it; None while it runs.
        self.exit_code: int | None = None
        self.kernel_running = False
        self.stdout_closed = False
        self.wrapper_closed = False
        self._tail = bytearray()
        self._logged = 0
        self._pending = b""
        self._stdin_fd = -1
        self._stdin_closed = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # Lifetime.

    def start(self, first_input: bytes) -> None:
        """Start ssh and hand it ``first_input`` (the wrapper and its launch config)."""
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # Its own session: a ^C meant for the Jupyter server must not kill the kernel's ssh.
            start_new_session=True,
        )
        assert self.proc.stdin is not None
        self._stdin_fd = self.proc.stdin.fileno()
        os.set_blocking(self._stdin_fd, False)
        self.send(first_input)
        for name, target in (
            ("events", self._read_events),
            ("stderr", self._read_stderr),
            ("heartbeat", self._heartbeat),
        ):
            thread = threading.Thread(
                target=target, name=f"gpuoutlet-ssh-{name}-{self.proc.pid}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def returncode(self) -> int | None:
        return self.proc.poll() if self.proc is not None else None

    @property
    def alive(self) -> bool:
        """ssh runs and the wrapper has not gone away (its stdout is still open)."""
        return self.proc is not None and self.proc.poll() is None and not self.stdout_closed

    def kernel_status(self) -> int | None:
        """None while the kernel runs; its exit status, or a non-zero code once ssh is gone."""
        if self.exit_code is not None:
            return self.exit_code
        if self.alive and self.kernel_running:
            return None
        code = self.returncode
        return code if code else 1

    def close_stdin(self) -> None:
        """EOF for the wrapper: it kills the kernel's group, removes its folder and exits."""
        with self._lock:
            self._close_stdin_locked()

    def signal_ssh(self, signum: int) -> None:
        """Signal the local ssh process (ours: started here, by pid)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signum)

    def reap(self) -> None:
        """After ssh has exited: join the threads and close the pipes."""
        self._stop.set()
        self.close_stdin()
        for thread in self._threads:
            thread.join(timeout=2.0)
        if self.proc is not None:
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()

    # Input.

    def send(self, data: bytes) -> bool:
        """Queue ``data`` for ssh's stdin and write what the pipe takes now."""
        with self._lock:
            if self._stdin_closed:
                return False
            self._pending += data
            self._flush_locked()
            return not self._stdin_closed

    def command(self, line: str) -> bool:
        return self.send(line.encode("utf-8") + b"\n")

    def _flush_locked(self) -> None:
        while self._pending and not self._stdin_closed:
            try:
                written = os.write(self._stdin_fd, self._pending)
            except BlockingIOError:
                return
            except OSError:  # EPIPE: ssh is gone
                self._close_stdin_locked()
                return
            self._pending = self._pending[written:]

    def _close_stdin_locked(self) -> None:
        if self._stdin_closed:
            return
        self._stdin_closed = True
        self._pending = b""
        if self.proc is not None and self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.heartbeat_interval):
            with self._lock:
                if self._stdin_closed:
                    return
                self._flush_locked()
                # A ping only when the last one left: a stopped ssh must not pile them up.
                if not self._pending:
                    self._pending = b"ping\n"
                    self._flush_locked()

    # Output.

    def _read_events(self) -> None:
        assert self.proc is not None
        stream: IO[bytes] | None = self.proc.stdout
        assert stream is not None
        try:
            for raw in stream:
                event = _parse_event(raw)
                if event is None:
                    if raw.strip():
                        self.log.debug("%s: stdout: %r", self.label, raw[:200])
                    continue
                self._record(event)
        except (OSError, ValueError):
            pass
        finally:
            self.stdout_closed = True

    def _record(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "hello":
            self.wrapper_pid = _int_or_none(event.get("pid"))
        elif kind == "started":
            self.kernel_pid = _int_or_none(event.get("pid"))
            self.exit_code = None
            self.kernel_running = True
        elif kind == "exit":
            code = _int_or_none(event.get("code"))
            self.exit_code = code if code is not None else 1
            self.kernel_running = False
        elif kind == "closed":
            self.wrapper_closed = True
        with self._lock:
            self.events.append(event)

    def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        fd = self.proc.stderr.fileno()
        partial = b""
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            with self._lock:
                self._tail += chunk
                del self._tail[:-STDERR_TAIL_BYTES]
            partial += chunk
            *lines, partial = partial.split(b"\n")
            partial = partial[-4096:]
            for line in lines:
                self._log_line(line)
        if partial:
            self._log_line(partial)

    def _log_line(self, line: bytes) -> None:
        text = line.decode("utf-8", "replace").rstrip("\r")
        if not text.strip():
            return
        self._logged += 1
        if self._logged <= LOGGED_LINES:
            self.log.info("%s: %s", self.label, text[:2000])
        elif self._logged == LOGGED_LINES + 1:
            self.log.info("%s: (more output not logged)", self.label)

    def stderr_tail(self, limit: int = 4000) -> str:
        """The end of what ssh and the remote side wrote to stderr, for error messages."""
        with self._lock:
            data = bytes(self._tail[-limit:])
        return data.decode("utf-8", "replace").replace("\r\n", "\n").strip()

    def events_since(self, index: int) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.events[index:])


def _parse_event(raw: bytes) -> dict[str, Any] | None:
    if not raw.startswith(b"{") or b'"gpuoutlet"' not in raw:
        return None
    try:
        event = json.loads(raw)
    except ValueError:
        return None
    return event if isinstance(event, dict) and "event" in event else None


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
