"""One shared OpenSSH connection per rental (ControlMaster) for everything that is not a kernel.

Telemetry, port forwards, listings and syncs of one rental ride on one authenticated
connection: ``ssh -M -N -o ControlPersist=<idle>`` opens it on demand; every later command is a
multiplexed session over its control socket (``<control dir>/%C``), costing a fork of the local
ssh client and no TCP or key exchange. The master closes by itself once nothing has used it for
``idle_timeout`` seconds (OpenSSH's own ControlPersist timer, so it cannot outlive us for long
if this process dies), closes on request (:meth:`SharedConnection.disconnect`) and for good when
the rental stops (:meth:`SharedConnection.close`). Kernels keep their own ssh process.

Every ssh gets ``-F <the managed config>``: OpenSSH reads ``~/.ssh/config`` from the password
database's home, not ``$HOME``, so the alias resolves only when we name the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shlex
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..ssh.validate import validate_alias, validate_rental_id
from .controlpath import (
    MAX_SOCKET_PATH,
    TEMP_SUFFIX_LENGTH,
    control_path,
    default_control_dir,
    ensure_control_dir,
)
from .errors import (
    CommandFailed,
    CommandTimeout,
    ConnectFailed,
    ConnectionClosed,
    ConnectionLost,
    ControlPathError,
    RemoteConnectionError,
    stderr_tail,
)

if TYPE_CHECKING:
    from ..ssh.writer import SSHEntry

log = logging.getLogger(__name__)

DEFAULT_IDLE_TIMEOUT = 300.0
DEFAULT_CONNECT_TIMEOUT = 15.0
#: sshd allows 10 sessions per connection by default (MaxSessions); stay under it.
DEFAULT_MAX_SESSIONS = 8
#: A mux client whose master is gone would quietly open a connection of its own. This
#: ProxyCommand only runs when ssh is about to do that: it makes the client fail instead, with a
#: mark in stderr that proves the command never reached the pod (so a retry is safe). The inner
#: ``sh`` keeps the proxy's stdout open until the mark is written; ssh would otherwise see EOF
#: first, exit, and hang up on the proxy before it wrote anything.
NO_MASTER_MARK = "gpuoutlet-no-shared-connection"
_GUARD_PROXY = f'ProxyCommand=sh -c "echo {NO_MASTER_MARK} >&2"'

_MASTER_PID_RE = re.compile(r"Master running \(pid=(\d+)\)")
_CLOSE_WAIT = 5.0
_KILL_GRACE = 2.0
# Lines ssh prints about the guard's refused connection: noise once we know what happened.
_GUARD_NOISE = ("kex_exchange_identification", "Connection closed by UNKNOWN")


@dataclass(frozen=True)
class SSHTarget:
    """Which rental to reach and how: its alias in the SSH config file the writer manages."""

    rental_id: str
    alias: str
    #: The file for ``ssh -F`` (``SSHEntry.config_file``).
    config_file: Path

    def __post_init__(self) -> None:
        validate_rental_id(self.rental_id)
        validate_alias(self.alias)
        if not Path(self.config_file).is_absolute():
            raise ValueError(f"config_file {os.fspath(self.config_file)!r} must be absolute")

    @classmethod
    def from_entry(cls, entry: SSHEntry) -> SSHTarget:
        """The target of a rental whose alias :class:`~gpuoutlet_jupyter.ssh.SSHConfigWriter` wrote."""
        return cls(entry.rental_id, entry.alias, Path(entry.config_file))


@dataclass(frozen=True)
class CommandResult:
    """What one remote command did."""

    command: str
    exit_status: int
    stdout: bytes
    stderr: bytes
    duration: float  #: seconds, wall clock, as seen from here

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    @property
    def text(self) -> str:
        """stdout decoded as UTF-8 (undecodable bytes replaced)."""
        return self.stdout.decode("utf-8", "replace")

    def check(self, what: str | None = None) -> CommandResult:
        """Return self when the command succeeded, else raise :class:`CommandFailed`."""
        if self.exit_status != 0:
            raise CommandFailed(self, what)
        return self


def command_text(command: str | Sequence[str]) -> str:
    """A remote shell command: a string as is, a sequence of arguments shell-quoted."""
    text = command if isinstance(command, str) else shlex.join(command)
    if not text.strip() or "\0" in text:
        raise ValueError(f"the remote command {text!r} is empty or holds a NUL byte")
    return text


def _pid_alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _wait_until(done: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    """Poll ``done`` until it is true (True) or ``timeout`` seconds pass (False)."""
    for _ in range(max(1, int(timeout / step))):
        if done():
            return True
        await asyncio.sleep(step)
    return done()


#: Local ssh clients still being reaped after a kill (see :func:`_kill`).
_reapers: set[asyncio.Task[int]] = set()


async def _kill(proc: asyncio.subprocess.Process, grace: float = 2.0) -> None:
    """Kill a local ssh client we started (by its pid) and reap it.

    After a kill the master may still hold the session's stderr until the pod's command ends;
    asyncio's ``wait()`` waits for the pipes too, so the rest is left to a background task
    rather than waited for here.
    """
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    waiter = asyncio.ensure_future(proc.wait())
    try:
        await asyncio.wait_for(asyncio.shield(waiter), grace)
    except asyncio.TimeoutError:
        _reapers.add(waiter)
        waiter.add_done_callback(_reapers.discard)


async def _read_all(stream: asyncio.StreamReader | None, into: bytearray) -> None:
    if stream is None:
        return
    while chunk := await stream.read(65536):
        into += chunk


#: Every command first prints the pid of the pod's shell on stderr: sshd makes that shell a
#: session and process-group leader, so a timeout or an interrupt can end the whole command on
#: the pod (``kill -- -<pid>``), not only our end of it (a session without a tty gets no
#: SIGHUP when its client goes, and would run on).
PID_MARK = "gpuoutlet-pid"
_PID_LINE_RE = re.compile(rb"gpuoutlet-pid (\d+)\r?")


def announced(command: str) -> str:
    """``command`` preceded by the pod's shell printing its pid (then run as it was)."""
    return f"printf '{PID_MARK} %s\\n' \"$$\" >&2; {command}"


class _Session:
    """An ssh client running one command: its stderr without the pid line, and that pid."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.remote_pid: int | None = None
        #: Set once the first stderr line (the pid) was read, or stderr ended without it.
        self.started = asyncio.Event()
        self.stderr = asyncio.StreamReader()
        self._pump = asyncio.ensure_future(self._pump_stderr())

    async def _pump_stderr(self) -> None:
        raw = self.proc.stderr
        head = b""
        first = raw is not None
        try:
            while raw is not None and (chunk := await raw.read(65536)):
                if first:
                    head += chunk
                    if b"\n" not in head and len(head) < 4096:
                        continue
                    first = False
                    line, _, rest = head.partition(b"\n")
                    match = _PID_LINE_RE.fullmatch(line)
                    if match is not None:
                        self.remote_pid = int(match.group(1))
                        chunk = rest
                    else:
                        chunk = head
                    self.started.set()
                if chunk:
                    self.stderr.feed_data(chunk)
            if first and head:
                self.stderr.feed_data(head)
        finally:
            self.started.set()
            self.stderr.feed_eof()


def _clean_stderr(data: bytes) -> bytes:
    lines = data.splitlines(keepends=True)
    kept = [
        line
        for line in lines
        if NO_MASTER_MARK.encode() not in line and not any(n.encode() in line for n in _GUARD_NOISE)
    ]
    return b"".join(kept)


class RemoteProcess:
    """A command running on the pod over the shared connection, with its pipes."""

    def __init__(self, connection: SharedConnection, command: str, session: _Session) -> None:
        self._connection = connection
        self.command = command
        self._session = session
        self._proc = session.proc

    @property
    def pid(self) -> int:
        """The pid of the local ssh client."""
        return self._proc.pid

    @property
    def remote_pid(self) -> int | None:
        """The pid (and process group) of the command's shell on the pod, once it started."""
        return self._session.remote_pid

    @property
    def stdin(self) -> asyncio.StreamWriter | None:
        return self._proc.stdin

    @property
    def stdout(self) -> asyncio.StreamReader:
        assert self._proc.stdout is not None
        return self._proc.stdout

    @property
    def stderr(self) -> asyncio.StreamReader:
        return self._session.stderr

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode

    async def lines(self) -> AsyncIterator[tuple[str, str]]:
        """``("stdout" | "stderr", line)`` as they arrive, until both streams end."""
        queue: asyncio.Queue[tuple[str, str] | None] = asyncio.Queue()

        async def pump(name: str, stream: asyncio.StreamReader) -> None:
            try:
                while line := await stream.readline():
                    await queue.put((name, line.decode("utf-8", "replace").rstrip("\r\n")))
            finally:
                await queue.put(None)

        tasks = [
            asyncio.ensure_future(pump("stdout", self.stdout)),
            asyncio.ensure_future(pump("stderr", self.stderr)),
        ]
        try:
            open_streams = len(tasks)
            while open_streams:
                item = await queue.get()
                if item is None:
                    open_streams -= 1
                elif item[0] != "stderr" or NO_MASTER_MARK not in item[1]:
                    yield item
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def wait(self, timeout: float | None = None) -> int:
        """The exit status; :class:`ConnectionLost` when the shared connection died under it.

        On ``timeout`` the command is stopped (here and on the pod) and
        :class:`CommandTimeout` raised.
        """
        try:
            status = await asyncio.wait_for(self._proc.wait(), timeout)
        except asyncio.TimeoutError:
            await self.stop()
            raise CommandTimeout(self.command, timeout or 0.0, b"", b"") from None
        if status == 255 and not self._connection.is_open():
            raise ConnectionLost(self._connection.lost_message(self.command))
        return status

    async def stop(self) -> None:
        """End the command: its process group on the pod, and the local ssh client."""
        await self._connection._stop(self._session)


class Hold:
    """Keeps a shared connection open while held (a port forward is a user even when idle)."""

    def __init__(self, connection: SharedConnection) -> None:
        self._connection: SharedConnection | None = connection

    def release(self) -> None:
        if self._connection is not None:
            self._connection._release()
            self._connection = None

    def __enter__(self) -> Hold:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class SharedConnection:
    """The shared SSH connection of one rental. Use from one asyncio event loop.

    Opened on demand by the first :meth:`run`, :meth:`process` or :meth:`open`; reused while its
    master answers on the control socket; reopened on demand after an idle close; closed for
    good by :meth:`close` (the rental stopped), after which every use raises
    :class:`ConnectionClosed`.
    """

    def __init__(
        self,
        target: SSHTarget,
        *,
        control_dir: Path | str | None = None,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        keepalive_interval: float | None = None,
        ssh_executable: str = "ssh",
    ) -> None:
        if sys.platform == "win32":
            raise RemoteConnectionError(
                "sharing one SSH connection needs OpenSSH's ControlMaster, which Windows' "
                "OpenSSH does not have: run Jupyter under WSL to sync, forward ports and see "
                "GPU telemetry"
            )
        if idle_timeout is not None and idle_timeout < 1:
            raise ValueError("idle_timeout must be at least 1 second, or None to never idle out")
        if max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")
        self.target = target
        self.control_dir = Path(
            os.path.abspath(control_dir if control_dir is not None else default_control_dir())
        )
        self._control_path = control_path(self.control_dir)  # checks characters now
        self.idle_timeout = idle_timeout
        self.connect_timeout = connect_timeout
        self._ssh = ssh_executable
        self._keepalive = keepalive_interval or (
            max(0.5, idle_timeout / 3) if idle_timeout is not None else 30.0
        )
        self._sessions = asyncio.Semaphore(max_sessions)
        self._lock = asyncio.Lock()
        self._socket: str | None = None
        self._master_pid: int | None = None
        self._opened = 0
        self._closed = False
        self._holds = 0
        self._keeper: asyncio.Task[None] | None = None
        self._open_hooks: list[Callable[[], Awaitable[None]]] = []
        self.last_used: float | None = None  #: ``time.monotonic()`` of the last command

    # ----------------------------------------------------------------- state

    @property
    def alias(self) -> str:
        return self.target.alias

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran: the rental stopped, nothing can use this any more."""
        return self._closed

    @property
    def opened_count(self) -> int:
        """How many masters this object has opened (1 for many commands on a live connection)."""
        return self._opened

    @property
    def master_pid(self) -> int | None:
        """The pid of the master ssh (a process we started), once open."""
        return self._master_pid

    @property
    def control_socket(self) -> str | None:
        """The expanded control socket path, once known."""
        return self._socket

    def is_open(self) -> bool:
        """Whether a master answers on the control socket now (never blocks)."""
        if self._socket is None:
            return False
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            sock.connect(self._socket)
        except BlockingIOError:
            return True  # backlog full: a master is there, busy
        except ConnectionRefusedError:
            # A socket file with nobody behind it (a master killed hard): ssh would refuse to
            # listen on it ("already exists, disabling multiplexing"), so clear it.
            with contextlib.suppress(OSError):
                os.unlink(self._socket)
            return False
        except OSError:
            return False
        finally:
            sock.close()
        return True

    def lost_message(self, command: str) -> str:
        return (
            f"the shared SSH connection to rental {self.target.rental_id} ({self.alias}) was lost "
            f"while running {command!r}: the pod may have stopped or the network dropped. Check "
            f"the rental (%gpu_rentals) and try again; `ssh -F {self.target.config_file} "
            f"{self.alias}` in a terminal shows what ssh sees"
        )

    def add_open_hook(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run ``hook`` each time a new master is opened after the first (to restore forwards)."""
        self._open_hooks.append(hook)

    # ------------------------------------------------------------- argv

    def _base(self) -> list[str]:
        return [self._ssh, "-F", os.fspath(self.target.config_file)]

    def rsh_argv(self) -> list[str]:
        """ssh and its options for a session over the master, without the alias (rsync ``-e``)."""
        return [
            *self._base(),
            "-T",
            "-o",
            "ControlMaster=no",
            "-o",
            f"ControlPath={self._control_path}",
            "-o",
            _GUARD_PROXY,
            "-o",
            "BatchMode=yes",
            "-o",
            "ForwardAgent=no",
            "-o",
            "ForwardX11=no",
            "-o",
            "PermitLocalCommand=no",
            "-o",
            "LogLevel=ERROR",
        ]

    def argv(self, command: str) -> list[str]:
        """The local argv that runs ``command`` on the pod over the master."""
        return [*self.rsh_argv(), "--", self.alias, command_text(command)]

    def rsh(self) -> str:
        """:meth:`rsh_argv` as one string for ``rsync -e`` (rsync splits it, honouring quotes)."""
        return shlex.join(self.rsh_argv())

    def _control_argv(self, operation: str, *extra: str) -> list[str]:
        return [
            *self._base(),
            "-o",
            f"ControlPath={self._control_path}",
            "-O",
            operation,
            *extra,
            "--",
            self.alias,
        ]

    # ------------------------------------------------------------- open / close

    def _check_usable(self) -> None:
        if self._closed:
            raise ConnectionClosed(
                f"the shared SSH connection of rental {self.target.rental_id} is closed: the "
                "rental has stopped. Rent again (or pick a running rental) to reach a pod"
            )

    async def open(self) -> None:
        """Make sure a master is running (open one if needed). Idempotent and cheap when open."""
        self._check_usable()
        if self.is_open():
            return
        async with self._lock:
            self._check_usable()
            if self.is_open():
                return
            await self._start_master()
            reopened = self._opened > 1
        if reopened:
            for hook in list(self._open_hooks):
                try:
                    await hook()
                except Exception:
                    log.exception("restoring state on the reopened connection to %s", self.alias)

    async def _resolve_socket(self) -> str:
        """Ask ssh where the control socket of this alias is (``ssh -G`` expands ``%C``)."""
        if self._socket is not None:
            return self._socket
        argv = [*self._base(), "-G", "-o", f"ControlPath={self._control_path}", "--", self.alias]
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise ConnectFailed(
                f"ssh could not read the SSH config {self.target.config_file} for {self.alias}: "
                f"{stderr_tail(err) or 'no message'}. Check that the rental is running and its "
                "SSH entry exists",
                alias=self.alias,
                stderr=stderr_tail(err),
            )
        path = None
        for line in out.decode("utf-8", "replace").splitlines():
            key, _, value = line.partition(" ")
            if key == "controlpath":
                path = value.strip()
        if not path or path == "none":
            raise ConnectFailed(
                f"ssh did not report a control socket for {self.alias}", alias=self.alias
            )
        if len(os.fsencode(path)) + TEMP_SUFFIX_LENGTH > MAX_SOCKET_PATH:
            raise ControlPathError(
                f"the control socket {path!r} is too long for a Unix socket "
                f"({len(os.fsencode(path)) + TEMP_SUFFIX_LENGTH} bytes while ssh sets it up, "
                f"{MAX_SOCKET_PATH} allowed): choose a shorter control folder"
            )
        self._socket = path
        return path

    async def _start_master(self) -> None:
        ensure_control_dir(self.control_dir)
        # Asked again for each new master: %C hashes the host and port, which the SSH entry
        # may have been rewritten with since the last one.
        self._socket = None
        await self._resolve_socket()
        self.is_open()  # clears a stale socket file, if any
        persist = "yes" if self.idle_timeout is None else str(max(1, round(self.idle_timeout)))
        argv = [
            *self._base(),
            "-M",
            "-N",
            "-T",
            "-o",
            f"ControlPath={self._control_path}",
            "-o",
            f"ControlPersist={persist}",
            "-o",
            "BatchMode=yes",
            "-o",
            f"ConnectTimeout={max(1, round(self.connect_timeout))}",
            "-o",
            "ForwardAgent=no",
            "-o",
            "ForwardX11=no",
            "-o",
            "PermitLocalCommand=no",
            "-o",
            "LogLevel=ERROR",
            "--",
            self.alias,
        ]
        # With ControlPersist, ssh forks into the background once authenticated and its control
        # socket listens, and points its own stdio at /dev/null: this process then exits 0.
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # a Ctrl-C or kernel interrupt must not reach it
        )
        try:
            _, err = await asyncio.wait_for(proc.communicate(), self.connect_timeout + 10)
        except asyncio.TimeoutError:
            await _kill(proc)
            raise ConnectFailed(
                f"opening the SSH connection to rental {self.target.rental_id} ({self.alias}) "
                f"took longer than {self.connect_timeout + 10:g} s: check that the rental is "
                "running and reachable",
                alias=self.alias,
            ) from None
        except BaseException:
            await _kill(proc)
            raise
        if proc.returncode != 0:
            detail = stderr_tail(err) or f"ssh exited with status {proc.returncode}"
            raise ConnectFailed(
                f"could not open the SSH connection to rental {self.target.rental_id} "
                f"({self.alias}): {detail}. Check that the rental is running (%gpu_rentals); "
                f"`ssh -F {self.target.config_file} {self.alias}` in a terminal shows the same",
                alias=self.alias,
                stderr=stderr_tail(err),
            )
        if not self.is_open():
            raise ConnectFailed(
                f"ssh connected to {self.alias} but no control socket answers at {self._socket}",
                alias=self.alias,
            )
        self._opened += 1
        self._master_pid = await self._query_pid()
        log.debug("opened shared connection to %s (pid %s)", self.alias, self._master_pid)

    async def _query_pid(self) -> int | None:
        result = await self.control("check")
        match = _MASTER_PID_RE.search(result.stderr.decode("utf-8", "replace"))
        return int(match.group(1)) if match else None

    async def control(self, operation: str, *extra: str) -> CommandResult:
        """Run ``ssh -O <operation> [extra...]`` against the master (check, forward, cancel, exit)."""
        argv = self._control_argv(operation, *extra)
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self.connect_timeout)
        except BaseException:
            await _kill(proc)
            raise
        assert proc.returncode is not None
        return CommandResult(
            shlex.join(argv), proc.returncode, out, err, time.monotonic() - started
        )

    async def disconnect(self) -> None:
        """Close the master now (commands in flight end); the next use opens a new one."""
        async with self._lock:
            await self._stop_master()

    async def close(self) -> None:
        """Close for good: the rental stopped. Forwards end with the master. Idempotent."""
        self._closed = True
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        async with self._lock:
            await self._stop_master()

    async def _stop_master(self) -> None:
        if self._socket is None:
            return
        if self.is_open():
            with contextlib.suppress(asyncio.TimeoutError, OSError):
                await self.control("exit")
        pid = self._master_pid
        await _wait_until(lambda: not self.is_open() and not _pid_alive(pid), _CLOSE_WAIT)
        if _pid_alive(pid) and pid is not None:
            # The master is ours (we started it); it ignored the exit request.
            log.warning("the master ssh %s of %s did not exit: killing it", pid, self.alias)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if not await _wait_until(lambda: not _pid_alive(pid), _KILL_GRACE):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.is_open()  # removes the socket file if the master left it behind
        self._master_pid = None

    # ------------------------------------------------------------- holds

    def hold(self) -> Hold:
        """Keep the connection open until the hold is released, probing it to keep it alive.

        ControlPersist counts sessions and open forwarded connections as use, not an idle
        forward's listener: a holder (a port forward) touches the control socket every
        ``idle_timeout / 3`` seconds, and reopens the connection if it died.
        """
        self._check_usable()
        self._holds += 1
        if self._keeper is None or self._keeper.done():
            self._keeper = asyncio.get_running_loop().create_task(self._keep_alive())
        return Hold(self)

    def _release(self) -> None:
        self._holds = max(0, self._holds - 1)

    @property
    def holds(self) -> int:
        return self._holds

    async def _keep_alive(self) -> None:
        while self._holds > 0 and not self._closed:
            await asyncio.sleep(self._keepalive)
            if self._holds == 0 or self._closed:
                break
            if self.is_open():  # the probe itself counts as use for ControlPersist
                continue
            try:
                await self.open()
            except Exception as exc:
                log.warning("could not reopen the shared connection to %s: %s", self.alias, exc)

    # ------------------------------------------------------------- commands

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[None]:
        """One of the ``max_sessions`` session slots, with the master open (for raw argv use)."""
        await self.open()
        async with self._sessions:
            self.last_used = time.monotonic()
            yield
            self.last_used = time.monotonic()

    async def run(
        self,
        command: str | Sequence[str],
        *,
        input: bytes | None = None,
        timeout: float | None = None,
        check: bool = False,
    ) -> CommandResult:
        """Run ``command`` through the pod's shell and collect its exit status and output.

        ``timeout`` stops the command (its process group on the pod, and the local client)
        and raises :class:`CommandTimeout` with the output so far; so does cancelling the
        call. A master that died under the command raises :class:`ConnectionLost`; ``check``
        raises :class:`CommandFailed` on a non-zero status. A master found gone before the
        command started is reopened once, transparently (the command never ran).
        """
        text = command_text(command)
        for attempt in range(2):
            async with self.session():
                started = time.monotonic()
                session = await self._start(announced(text), stdin=input is not None)
                out, err = bytearray(), bytearray()
                try:
                    await asyncio.wait_for(self._communicate(session, input, out, err), timeout)
                except asyncio.TimeoutError:
                    await self._stop(session)
                    raise CommandTimeout(
                        text, timeout or 0.0, bytes(out), _clean_stderr(bytes(err))
                    ) from None
                except BaseException:
                    await self._stop(session)
                    raise
                duration = time.monotonic() - started
            status = session.proc.returncode
            assert status is not None
            if status == 255 and session.remote_pid is None and NO_MASTER_MARK.encode() in err:
                if attempt == 0:
                    log.debug("master of %s gone before a command ran: reopening", self.alias)
                    continue
                raise ConnectionLost(self.lost_message(text))
            if status == 255 and not self.is_open():
                raise ConnectionLost(
                    self.lost_message(text) + f" (ssh said: {stderr_tail(bytes(err))})"
                )
            result = CommandResult(text, status, bytes(out), _clean_stderr(bytes(err)), duration)
            if check:
                result.check()
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    async def _start(self, remote_command: str, *, stdin: bool) -> _Session:
        proc = await asyncio.create_subprocess_exec(
            *self.argv(remote_command),
            stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # a Ctrl-C or kernel interrupt is ours to pass on, not its
        )
        return _Session(proc)

    async def _stop(self, session: _Session) -> None:
        """Kill the command's process group on the pod (best effort), then our client."""
        if session.proc.returncode is None:
            # Stopped right after it started: its pid is the first thing it prints.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(session.started.wait(), 2.0)
        pid = session.remote_pid
        if pid is not None and session.proc.returncode is None and self.is_open():
            # SIGTERM now, SIGKILL a little later for what ignores it; nothing waits here.
            script = (
                f"kill -TERM -- -{pid} 2>/dev/null; "
                f"(sleep 3; kill -KILL -- -{pid}) </dev/null >/dev/null 2>&1 &"
            )
            try:
                await asyncio.wait_for(self._plain(script), 10)
            except (asyncio.TimeoutError, OSError):
                log.debug("could not stop process group %s on %s", pid, self.alias)
        await _kill(session.proc)

    async def _plain(self, script: str) -> None:
        """Run a short housekeeping command (not announced, not retried, output ignored)."""
        async with self._sessions:
            proc = await asyncio.create_subprocess_exec(
                *self.argv(script),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                await proc.wait()
            except BaseException:
                await _kill(proc)
                raise

    @staticmethod
    async def _communicate(
        session: _Session, data: bytes | None, out: bytearray, err: bytearray
    ) -> None:
        proc = session.proc

        async def feed() -> None:
            if proc.stdin is None:
                return
            try:
                if data:
                    proc.stdin.write(data)
                    await proc.stdin.drain()
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                proc.stdin.close()

        await asyncio.gather(feed(), _read_all(proc.stdout, out), _read_all(session.stderr, err))
        await proc.wait()

    @contextlib.asynccontextmanager
    async def process(
        self, command: str | Sequence[str], *, stdin: bool = False
    ) -> AsyncIterator[RemoteProcess]:
        """Start ``command`` on the pod and stream its output (``async with ... as proc``).

        Leaving the block stops the command (on the pod too) if it is still running.
        """
        text = command_text(command)
        async with self.session():
            session = await self._start(announced(text), stdin=stdin)
            try:
                yield RemoteProcess(self, text, session)
            finally:
                if session.proc.returncode is None:
                    await self._stop(session)
                else:
                    await _kill(session.proc)
