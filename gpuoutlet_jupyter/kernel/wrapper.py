"""Runs on the rented machine, sent over ssh's stdin: ipykernel under a keeper that outlives ssh.

Stdlib only, Python >= 3.8 (the keeper imports pyzmq, which ipykernel brings). The provisioner
starts ``python3 -c <bootstrap>`` over ssh; the bootstrap reads one line (this file, compressed)
from stdin and runs it as the *front*. Then, on stdin, one JSON line: the config, whose ``mode``
says what to do (:class:`Mode`; the connection key is in it, so it never reaches argv).

``launch``: the front makes a private 0700 folder, checks ipykernel, and forks the *keeper*, a
daemon in its own session (a dropped ssh session must not take it along). The keeper runs the
kernel on Unix sockets in the folder and binds the ends ssh forwards to (:data:`FORWARDED`):
shell, stdin, control and heartbeat proxies that hold a reply for a client that is away until it
is back, and the replay channel, where every iopub message goes with a sequence number and stays
in a bounded buffer until the provisioner acknowledges it. The front then only relays: stdin to
the keeper's control socket, the keeper's events to stdout. ``attach``: a new front reaches the
keeper of an existing folder (after a dropped connection or a Jupyter restart). ``end``: a new
front ends it. ``ports``: free TCP ports on 127.0.0.1, for the TCP fallback.

Commands (:class:`Command`) and events (:class:`Event`, JSON lines with a ``"gpuoutlet"`` key:
anything else on stdout, say from a chatty login script, is ignored) are named once, here, and
the provisioner imports the names.

When the connection goes (stdin EOF without ``end``, no ``ping`` within the lease, the front
killed), the keeper detaches: the kernel keeps running for ``detach_timeout`` seconds (None:
until the machine goes away; 0: it ends at once, as an orphan guard). It ends the kernel's
process group and removes the folder on ``end``, when that timeout runs out, when the kernel
exits while detached, and on SIGTERM or SIGHUP. If the keeper itself is SIGKILLed, ipykernel's
parent poller (``JPY_PARENT_PID``) ends the kernel and the next launch sweeps the folder.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import importlib.util
import itertools
import json
import os
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import sysconfig
import time
from typing import Any

PROTOCOL = 2
STDIN = 0


class Mode:
    """What a front does, from its config's ``mode``."""

    LAUNCH = "launch"
    ATTACH = "attach"
    END = "end"
    PORTS = "ports"


class Command:
    """Lines the provisioner writes (through the front) to the keeper."""

    PING = "ping"  # the heartbeat; answered with a pong
    SIGNAL = "signal"  # signal <n>: to the kernel's process group
    START = "start"  # start <json>: a new kernel after the last one exited (a restart)
    PORTS = "ports"  # ports <n>: free TCP ports on 127.0.0.1
    END = "end"  # end the kernel and its folder; the keeper exits


class Event:
    """JSON lines to the provisioner (``{"gpuoutlet": 2, "event": <name>, ...}``)."""

    HELLO = "hello"  # front: pid, python, version
    INSTALLING = "installing"  # front: installing ipykernel (argv)
    ERROR = "error"  # kind (ErrorKind), detail
    PORTS = "ports"  # ports
    ATTACHED = "attached"  # keeper: pid, wrapper, kernel (pid or None), code, detached (s), seq
    STARTED = "started"  # pid of the kernel
    READY = "ready"  # the kernel's sockets are bound
    EXIT = "exit"  # code
    OUTPUT = "output"  # text the kernel (or the keeper) wrote to stdout/stderr
    PONG = "pong"
    CLOSED = "closed"  # the kernel and its folder are gone; the keeper exits


class ErrorKind:
    NO_IPYKERNEL = "no_ipykernel"
    NO_PIP = "no_pip"
    NO_PYZMQ = "no_pyzmq"
    INSTALL_FAILED = "install_failed"
    FOLDER = "folder"
    SPAWN_FAILED = "spawn_failed"
    NOT_FOUND = "not_found"  # attach: no keeper for this folder (the kernel has ended)
    BUSY = "busy"


class Replay:
    """Frames of the replay channel (a ROUTER here, the provisioner's DEALER there).

    keeper → provisioner: ``[MESSAGE, seq, cum, *iopub frames]`` (``cum``: the bytes of every
    message before this one) and ``[DROPPED, count, bytes]`` when the buffer lost messages the
    provisioner had not received. provisioner → keeper: ``[RESUME, last seq, its cum end]``
    (what it has: send what follows), ``[FROM_NOW]`` (an adopted kernel: skip what is buffered),
    ``[ACK, seq]`` (received: drop it from the buffer). Numbers are 8-byte big-endian.
    """

    MESSAGE = b"m"
    DROPPED = b"dropped"
    RESUME = b"resume"
    FROM_NOW = b"now"
    ACK = b"ack"


# The kernel's own sockets: "<folder>/k-<n>" (ipc, never forwarded); names agreed with ipykernel.
IPC_PREFIX = "k"
IPC_PORTS = {"shell_port": 1, "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5}
# What ssh forwards to: the keeper's ends, "<folder>/f-<n>" (or 127.0.0.1:<port> over TCP).
FRONT_PREFIX = "f"
FORWARDED = {"shell_port": 1, "replay_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5}
CONTROL_SOCKET = "c"
CONNECTION_FILE = "kernel.json"
OWNER_FILE = "wrapper.pid"
FOLDER_PREFIX = "gpuoutlet-kernel-"
CONFIG_TIMEOUT = 60.0
HANDSHAKE_TIMEOUT = 10.0
KILL_GRACE = 2.0
READY_POLL = 0.02
MAX_WAIT = 1.0
INSTALL_TIMEOUT = 600.0
# Replies for a client that is away wait this long once a connection is back, then go.
PENDING_TTL = 60.0
PENDING_RETRY = 0.1
SEEN_REQUESTS = 10000
# Events the keeper could not hand to a stalled front: past this, the connection counts as lost.
MAX_OUTBOX = 4 << 20
OUTPUT_CHUNK = 65536
# Signals the wrapper passes on to the kernel's group rather than acting on them.
RELAYED = ("SIGINT", "SIGQUIT", "SIGUSR1", "SIGUSR2")
FATAL = ("SIGTERM", "SIGHUP")
DELIMITER = b"<IDS|MSG>"


def log(message: str) -> None:
    """A line for the user on stderr (ssh brings it to the Jupyter server's log)."""
    with contextlib.suppress(OSError):
        os.write(2, ("gpuoutlet-wrapper: " + message + "\n").encode("utf-8", "replace"))


def event_line(event: str, **fields: Any) -> bytes:
    fields["gpuoutlet"] = PROTOCOL
    fields["event"] = event
    return (json.dumps(fields, separators=(",", ":")) + "\n").encode("utf-8")


def number(value: int) -> bytes:
    return int(value).to_bytes(8, "big")


def read_number(data: bytes) -> int:
    return int.from_bytes(data[:8], "big")


class Gone(Exception):
    """The front's side is gone (stdin EOF, a broken stdout, SIGTERM)."""


class Signals:
    """Every handled signal wakes select()/poll() through a pipe; the caller drains it."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.read_fd, self.write_fd = os.pipe()
        for fd in (self.read_fd, self.write_fd):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(self.write_fd)
        for name in names:
            signal.signal(getattr(signal, name), lambda *_: None)

    def drain(self) -> list[str]:
        try:
            data = os.read(self.read_fd, 512)
        except BlockingIOError:
            return []
        return [signal.Signals(signum).name for signum in data]


# The front: what ssh runs.


class Front:
    """Reads the config, starts or finds the keeper, then relays until either side goes."""

    def __init__(self) -> None:
        self.config: dict[str, Any] = {}
        self.buffer = b""
        self.signals: Signals | None = None
        self.folder = ""

    def emit(self, event: str, **fields: Any) -> None:
        write_all(1, event_line(event, **fields))

    def read_line(self, timeout: float) -> bytes | None:
        """The next stdin line (without its newline); None on timeout; Gone on EOF."""
        assert self.signals is not None
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            readable, _, _ = select.select([STDIN, self.signals.read_fd], [], [], remaining)
            if self.signals.read_fd in readable and set(self.signals.drain()) & set(FATAL):
                raise Gone("signalled")
            if STDIN in readable:
                chunk = os.read(STDIN, 65536)
                if not chunk:
                    raise Gone("stdin closed")
                self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line

    def run(self) -> int:
        self.signals = Signals((*FATAL, "SIGPIPE"))
        try:
            self.emit(
                Event.HELLO,
                pid=os.getpid(),
                python=sys.executable,
                version=".".join(map(str, sys.version_info[:3])),
            )
            line = self.read_line(CONFIG_TIMEOUT)
            if line is None:
                log(f"no config within {CONFIG_TIMEOUT:g} s")
                return 2
            self.config = json.loads(line.decode("utf-8"))
            mode = self.config.get("mode", Mode.LAUNCH)
            if mode == Mode.PORTS:
                self.emit(Event.PORTS, ports=free_ports(int(self.config.get("count", 5))))
                return 0
            self.folder = str(self.config["folder"])
            if mode == Mode.LAUNCH:
                listener = self.launch()
                if listener is None:
                    return 1
                self.spawn_keeper(listener)
            conn = self.connect()
            if conn is None:
                if mode == Mode.END:
                    self.emit(Event.CLOSED)
                    return 0
                self.emit(Event.ERROR, kind=ErrorKind.NOT_FOUND, detail=self.folder)
                return 1
            if mode == Mode.END:
                self.buffer = Command.END.encode() + b"\n" + self.buffer
            return self.relay(conn)
        except Gone:
            return 0

    # Launch.

    def launch(self) -> socket.socket | None:
        sweep_stale_folders(os.path.dirname(self.folder))
        try:
            make_folder(self.folder)
        except (OSError, RuntimeError) as exc:
            self.emit(Event.ERROR, kind=ErrorKind.FOLDER, detail=str(exc))
            return None
        ok = False
        try:
            _, ours = kernel_argv(self.config, self.folder)
            if ours and not self.check_ipykernel():
                return None
            if not self.check_pyzmq():
                return None
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(os.path.join(self.folder, CONTROL_SOCKET))
            listener.listen(4)
            ok = True
            return listener
        finally:
            if not ok:
                shutil.rmtree(self.folder, ignore_errors=True)

    def check_ipykernel(self) -> bool:
        if importlib.util.find_spec("ipykernel") is not None:
            return True
        if not self.config.get("install_ipykernel"):
            self.emit(
                Event.ERROR,
                kind=ErrorKind.NO_IPYKERNEL,
                python=sys.executable,
                version=".".join(map(str, sys.version_info[:3])),
            )
            return False
        return self.install_ipykernel()

    def check_pyzmq(self) -> bool:
        add_user_site()
        if importlib.util.find_spec("zmq") is not None:
            return True
        self.emit(Event.ERROR, kind=ErrorKind.NO_PYZMQ, python=sys.executable)
        return False

    def install_ipykernel(self) -> bool:
        if importlib.util.find_spec("pip") is None:
            self.emit(Event.ERROR, kind=ErrorKind.NO_PIP, python=sys.executable)
            return False
        argv = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        if sys.prefix == sys.base_prefix:  # not a venv: the user's own site-packages
            argv.append("--user")
            marker = os.path.join(sysconfig.get_paths()["stdlib"], "EXTERNALLY-MANAGED")
            if os.path.exists(marker):
                # PEP 668 guards the system's packages; a --user install leaves them alone.
                argv.append("--break-system-packages")
        argv.append("ipykernel")
        self.emit(Event.INSTALLING, argv=argv)
        log("installing ipykernel: " + " ".join(argv))
        try:
            result = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=2,
                stderr=2,
                timeout=INSTALL_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.emit(
                Event.ERROR, kind=ErrorKind.INSTALL_FAILED, python=sys.executable, detail=str(exc)
            )
            return False
        importlib.invalidate_caches()
        if result.returncode != 0 or not ipykernel_importable():
            self.emit(
                Event.ERROR,
                kind=ErrorKind.INSTALL_FAILED,
                python=sys.executable,
                detail=f"pip exited with status {result.returncode}",
            )
            return False
        return True

    def spawn_keeper(self, listener: socket.socket) -> None:
        """Fork the keeper: its own session, so the end of the ssh session does not end it."""
        read_fd, write_fd = os.pipe()
        child = os.fork()
        if child == 0:  # pragma: no cover - runs in the forked processes
            code = 1
            try:
                os.close(read_fd)
                os.setsid()
                if os.fork() != 0:
                    os._exit(0)
                devnull = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(devnull, fd)
                os.close(devnull)
                keeper = Keeper(self.config, self.folder, listener)
                write_all(write_fd, b"ok")
                os.close(write_fd)
                code = keeper.run()
            finally:
                os._exit(code)
        os.close(write_fd)
        listener.close()
        os.waitpid(child, 0)
        with os.fdopen(read_fd, "rb") as started:
            if started.read() != b"ok":
                raise RuntimeError("the keeper did not start")

    # Relay.

    def connect(self) -> socket.socket | None:
        path = os.path.join(self.folder, CONTROL_SOCKET)
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect(path)
        except OSError:
            conn.close()
            remove_if_orphaned(self.folder)
            return None
        hello = {"wrapper": self.config.get("wrapper", ""), "lease": self.config.get("lease")}
        conn.sendall(json.dumps(hello).encode() + b"\n")
        return conn

    def relay(self, conn: socket.socket) -> int:
        assert self.signals is not None
        inputs = [STDIN, conn.fileno(), self.signals.read_fd]
        if self.buffer:
            conn.sendall(self.buffer)
            self.buffer = b""
        try:
            while True:
                readable, _, _ = select.select(inputs, [], [])
                hangup = False
                if self.signals.read_fd in readable:
                    hangup = bool(set(self.signals.drain()) & set(FATAL))
                if STDIN in readable and not hangup:
                    chunk = os.read(STDIN, 65536)
                    if chunk:
                        conn.sendall(chunk)
                    else:
                        hangup = True
                if hangup and STDIN in inputs:
                    # ssh went away, or the provisioner closed it (after "end", or to leave
                    # the kernel detached): the keeper decides; its last words still go out.
                    inputs.remove(STDIN)
                    conn.shutdown(socket.SHUT_WR)
                if conn.fileno() in readable:
                    data = conn.recv(65536)
                    if not data:
                        return 0
                    write_all(1, data)
        except OSError:
            return 0  # stdout or the keeper went away: so do we (the keeper detaches)
        finally:
            conn.close()


# The keeper: the kernel's daemon.


class Keeper:
    """Owns the kernel and its folder; proxies its channels; survives connections."""

    def __init__(self, config: dict[str, Any], folder: str, listener: socket.socket) -> None:
        self.config = config
        self.folder = folder
        self.listener = listener
        self.token = str(config.get("wrapper", ""))
        self.lease = float(config.get("lease") or 60.0)
        timeout = config.get("detach_timeout", 0)
        self.detach_timeout: float | None = None if timeout is None else float(timeout)
        self.buffer_max = int(float(config.get("replay_buffer_mb", 64)) * (1 << 20))
        self.proc: subprocess.Popen[bytes] | None = None
        self.exit_code: int | None = None
        self.waiting_ready = False
        self.output_fd = -1
        self.output_w = -1
        self.started_once = False
        self.created = time.monotonic()
        self.conn: socket.socket | None = None
        self.inbox = b""
        self.outbox = b""
        self.last_ping = time.monotonic()
        self.attached_at = time.monotonic()
        self.detached_at: float | None = None
        self.ending = False
        # The replay buffer: (seq, bytes before it, frames), oldest first.
        self.ring: collections.deque[tuple[int, int, list[bytes]]] = collections.deque()
        self.ring_bytes = 0
        self.next_seq = 1
        self.cum = 0
        self.reader: bytes | None = None
        self.cursor = 1
        self.sent_cum = 0
        self.pump_blocked = False
        # Replies for clients that are away, per channel: (since, frames).
        self.pending: dict[str, collections.deque[tuple[float, list[bytes]]]] = {}
        self.pending_bytes = 0
        # The ids of the requests passed to the kernel, oldest first.
        self.seen: dict[str, dict[bytes, None]] = {}

    # Events to the current connection (dropped while detached).

    def emit(self, event: str, **fields: Any) -> None:
        if self.conn is None:
            return
        self.outbox += event_line(event, **fields)
        self.flush()

    def say(self, message: str) -> None:
        self.emit(Event.OUTPUT, text="gpuoutlet-wrapper: " + message + "\n")

    def flush(self) -> None:
        conn = self.conn
        while conn is not None and self.outbox:
            try:
                sent = conn.send(self.outbox)
            except BlockingIOError:
                break
            except OSError:
                self.drop_connection("the connection broke")
                return
            self.outbox = self.outbox[sent:]
        if conn is not None and len(self.outbox) > MAX_OUTBOX:
            self.drop_connection("the connection stalled")

    # Connections.

    def accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        try:
            conn.settimeout(HANDSHAKE_TIMEOUT)
            data = b""
            while b"\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    raise OSError("closed during the handshake")
                data += chunk
            line, rest = data.split(b"\n", 1)
            hello = json.loads(line.decode("utf-8"))
            if str(hello.get("wrapper", "")) != self.token:
                raise OSError("a connection for another kernel")
        except (OSError, ValueError):
            conn.close()
            return
        if self.conn is not None:
            # A new connection while the old one looks alive (a laptop that slept): the newer
            # one wins, as the old one will never be heard from again.
            self.drop_connection("a new connection took over", detach=False)
        conn.setblocking(False)
        self.conn = conn
        self.inbox = rest
        self.outbox = b""
        if hello.get("lease"):
            self.lease = float(hello["lease"])
        now = time.monotonic()
        self.last_ping = self.attached_at = now
        detached = 0.0 if self.detached_at is None else now - self.detached_at
        self.detached_at = None
        self.emit(
            Event.ATTACHED,
            pid=os.getpid(),
            wrapper=self.token,
            kernel=self.proc.pid if self.proc is not None else None,
            code=self.exit_code,
            detached=round(detached, 3),
            seq=self.next_seq,
        )
        if self.proc is not None and not self.waiting_ready:
            self.emit(Event.READY)
        if not self.started_once:
            # The first kernel starts once its first connection is here to hear about it.
            self.started_once = True
            self.start_kernel()
        self.handle_input()

    def drop_connection(self, why: str, detach: bool = True) -> None:
        if detach and not self.ending:
            # Ending with the connection still here: it hears why, and "closed".
            if self.detach_timeout == 0:
                self.end(f"{why}: stopping the kernel")
            if self.proc is None:
                self.end(f"{why}, and no kernel runs: cleaning up")
        conn, self.conn = self.conn, None
        self.inbox = self.outbox = b""
        self.reader = None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()
        if detach and not self.ending:
            self.detached_at = time.monotonic()

    def read_connection(self) -> None:
        conn = self.conn
        if conn is None:
            return
        try:
            data = conn.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.drop_connection("the connection closed")
            return
        self.inbox += data
        self.handle_input()

    def handle_input(self) -> None:
        while self.conn is not None and b"\n" in self.inbox:
            line, self.inbox = self.inbox.split(b"\n", 1)
            self.handle(line)

    def handle(self, line: bytes) -> None:
        command, _, argument = line.decode("utf-8", "replace").strip().partition(" ")
        if command == Command.PING:
            self.last_ping = time.monotonic()
            self.emit(Event.PONG)
        elif command == Command.SIGNAL:
            self.signal_kernel(int(argument))
        elif command == Command.START:
            if self.proc is not None:
                self.emit(Event.ERROR, kind=ErrorKind.BUSY, detail="a kernel is still running")
                return
            self.config.update(json.loads(argument))
            self.start_kernel()
        elif command == Command.PORTS:
            self.emit(Event.PORTS, ports=free_ports(int(argument)))
        elif command == Command.END:
            self.end("asked to end")
        elif command:
            self.say(f"unknown command {command!r} ignored")

    # The kernel.

    def start_kernel(self) -> None:
        argv, _ = kernel_argv(self.config, self.folder)
        for port in IPC_PORTS.values():
            # A kernel that was killed leaves its socket files; the next one binds the same paths.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.folder, f"{IPC_PREFIX}-{port}"))
        write_private(os.path.join(self.folder, CONNECTION_FILE), self.connection_info())
        env = dict(os.environ)
        env.update({str(k): str(v) for k, v in self.config.get("env", {}).items()})
        # ipykernel exits by itself within a second once this process is gone (even SIGKILLed).
        env["JPY_PARENT_PID"] = str(os.getpid())
        cwd = working_dir(self.config.get("cwd"))
        if self.output_fd < 0:
            self.output_fd, output_w = os.pipe()
            os.set_blocking(self.output_fd, False)
            self.output_w = output_w
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=self.output_w,
                stderr=self.output_w,
                cwd=cwd,
                env=env,
                start_new_session=True,  # its own process group: signals and kills reach it all
            )
        except OSError as exc:
            self.emit(Event.ERROR, kind=ErrorKind.SPAWN_FAILED, argv=argv, detail=str(exc))
            self.exit_code = 127
            return
        self.exit_code = None
        self.waiting_ready = True
        self.emit(Event.STARTED, pid=self.proc.pid)

    def connection_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "key": self.config["key"],
            "signature_scheme": self.config.get("signature_scheme", "hmac-sha256"),
            "kernel_name": self.config.get("kernel_name", ""),
            "transport": "ipc",
            "ip": os.path.join(self.folder, IPC_PREFIX),
        }
        info.update(IPC_PORTS)
        return info

    def check_ready(self) -> None:
        if not self.waiting_ready:
            return
        for port in IPC_PORTS.values():
            path = os.path.join(self.folder, f"{IPC_PREFIX}-{port}")
            try:
                if not stat.S_ISSOCK(os.stat(path).st_mode):
                    return
            except FileNotFoundError:
                return
        self.waiting_ready = False
        self.emit(Event.READY)

    def check_kernel(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is None:
            return
        self.read_output()  # its last words (a traceback) before its exit
        self.proc = None
        self.waiting_ready = False
        self.exit_code = proc.returncode
        # Whatever the kernel started in its group goes with it.
        kill_group(proc.pid, None)
        self.emit(Event.EXIT, code=proc.returncode)
        if self.conn is None:
            self.end("the kernel exited while detached")

    def signal_kernel(self, signum: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signum)

    def read_output(self) -> None:
        if self.output_fd < 0:
            return
        while True:
            try:
                chunk = os.read(self.output_fd, OUTPUT_CHUNK)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if not chunk:
                return
            self.emit(Event.OUTPUT, text=chunk.decode("utf-8", "replace"))

    def end(self, why: str) -> None:
        if self.ending:
            return
        self.ending = True
        if self.proc is not None:
            self.say(why)
        raise Ending()

    # The channels (pyzmq: ipykernel brings it).

    def setup_channels(self) -> None:
        import zmq  # type: ignore[import-not-found,unused-ignore]

        self.zmq = zmq
        self.context = zmq.Context()
        transport = self.config.get("transport", "ipc")
        ports = self.config.get("ports") or {}
        identity = ("gpuoutlet-" + self.token).encode()
        self.fronts: dict[str, Any] = {}
        self.backs: dict[str, Any] = {}
        for name in ("shell_port", "stdin_port", "control_port", "hb_port", "replay_port"):
            front = self.context.socket(zmq.ROUTER)
            front.setsockopt(zmq.LINGER, 0)
            # A reply to a client that is away raises instead of vanishing (it is kept), and a
            # client that reconnects with its identity takes it over from its dead connection.
            front.setsockopt(zmq.ROUTER_MANDATORY, 1)
            front.setsockopt(zmq.ROUTER_HANDOVER, 1)
            if transport == "ipc":
                front.bind(f"ipc://{self.folder}/{FRONT_PREFIX}-{FORWARDED[name]}")
            else:
                front.bind(f"tcp://127.0.0.1:{int(ports[name])}")
            self.fronts[name] = front
            if name == "replay_port":
                continue
            back = self.context.socket(zmq.DEALER)
            back.setsockopt(zmq.LINGER, 0)
            back.setsockopt(zmq.RECONNECT_IVL, 20)
            # One identity for every channel: ipykernel sends an input request on stdin to the
            # identities of the shell request, so they must name our stdin socket too.
            back.setsockopt(zmq.IDENTITY, identity)
            back.connect(self.kernel_endpoint(name))
            self.backs[name] = back
        self.iopub = self.context.socket(zmq.SUB)
        self.iopub.setsockopt(zmq.LINGER, 0)
        self.iopub.setsockopt(zmq.RECONNECT_IVL, 20)
        self.iopub.setsockopt(zmq.RCVHWM, 0)
        self.iopub.setsockopt(zmq.SUBSCRIBE, b"")
        self.iopub.connect(self.kernel_endpoint("iopub_port"))
        self.replay = self.fronts.pop("replay_port")

    def kernel_endpoint(self, name: str) -> str:
        return f"ipc://{self.folder}/{IPC_PREFIX}-{IPC_PORTS[name]}"

    def close_channels(self) -> None:
        context = getattr(self, "context", None)
        if context is not None:
            context.destroy(linger=0)

    def to_back(self, name: str, frames: list[bytes]) -> None:
        if name in ("shell_port", "control_port"):
            # Sent again after a reconnect (the provisioner cannot tell whether it arrived):
            # a request already passed on must not run twice.
            # Per channel: two copies of one client session number their messages alike.
            msg_id = message_id(frames)
            if msg_id is not None:
                seen = self.seen.setdefault(name, {})
                if msg_id in seen:
                    return
                seen[msg_id] = None
                if len(seen) > SEEN_REQUESTS:
                    del seen[next(iter(seen))]
        try:
            self.backs[name].send_multipart(frames, self.zmq.NOBLOCK)
        except self.zmq.ZMQError as exc:
            self.say(f"a message to the kernel was dropped ({exc})")

    def to_front(self, name: str, frames: list[bytes]) -> None:
        if name == "hb_port":
            with contextlib.suppress(self.zmq.ZMQError):
                self.fronts[name].send_multipart(frames, self.zmq.NOBLOCK)
            return
        queue = self.pending.setdefault(name, collections.deque())
        queue.append((time.monotonic(), frames))
        self.pending_bytes += frame_bytes(frames)
        while self.pending_bytes > self.buffer_max and len(queue) > 1:
            self.pending_bytes -= frame_bytes(queue.popleft()[1])
        self.send_pending(name)

    def send_pending(self, name: str) -> None:
        queue = self.pending.get(name)
        if not queue:
            return
        zmq = self.zmq
        kept: collections.deque[tuple[float, list[bytes]]] = collections.deque()
        blocked = set()
        now = time.monotonic()
        while queue:
            since, frames = queue.popleft()
            if frames[0] in blocked:
                kept.append((since, frames))
                continue
            try:
                self.fronts[name].send_multipart(frames, zmq.NOBLOCK)
                self.pending_bytes -= frame_bytes(frames)
                continue
            except zmq.ZMQError:
                pass
            if self.conn is not None and now - max(since, self.attached_at) > PENDING_TTL:
                self.pending_bytes -= frame_bytes(frames)  # that client is not coming back
                continue
            blocked.add(frames[0])
            kept.append((since, frames))
        self.pending[name] = kept

    def on_iopub(self, frames: list[bytes]) -> None:
        if is_welcome(frames):
            return  # the kernel greets our subscription; the provisioner's clients get none
        size = frame_bytes(frames)
        self.ring.append((self.next_seq, self.cum, frames))
        self.next_seq += 1
        self.cum += size
        self.ring_bytes += size
        while self.ring_bytes > self.buffer_max and len(self.ring) > 1:
            _, _, old = self.ring.popleft()
            self.ring_bytes -= frame_bytes(old)
        self.pump()

    def on_replay(self, frames: list[bytes]) -> None:
        if len(frames) < 2:
            return
        peer, kind = frames[0], frames[1]
        if kind == Replay.ACK and len(frames) > 2:
            self.trim(read_number(frames[2]))
        elif kind == Replay.RESUME and len(frames) > 3:
            last = read_number(frames[2])
            self.reader = peer
            self.trim(last)
            self.cursor = last + 1
            self.sent_cum = read_number(frames[3])
            self.pump()
        elif kind == Replay.FROM_NOW:
            self.reader = peer
            self.trim(self.next_seq - 1)
            self.cursor = self.next_seq
            self.sent_cum = self.cum
            self.pump()

    def trim(self, seq: int) -> None:
        while self.ring and self.ring[0][0] <= seq:
            _, _, old = self.ring.popleft()
            self.ring_bytes -= frame_bytes(old)

    def pump(self) -> None:
        """Send the reader what it has not had, in order; stop when its queue is full."""
        reader = self.reader
        if reader is None:
            return
        zmq = self.zmq
        self.pump_blocked = False
        try:
            if not self.ring:
                self.cursor = max(self.cursor, self.next_seq)
                return
            first_seq, first_cum, _ = self.ring[0]
            if self.cursor < first_seq:
                dropped = [Replay.DROPPED, number(first_seq - self.cursor)]
                dropped.append(number(max(0, first_cum - self.sent_cum)))
                self.replay.send_multipart([reader, *dropped], zmq.NOBLOCK)
                self.cursor, self.sent_cum = first_seq, first_cum
            for seq, cum, frames in itertools.islice(self.ring, self.cursor - first_seq, None):
                header = [reader, Replay.MESSAGE, number(seq), number(cum)]
                self.replay.send_multipart(header + frames, zmq.NOBLOCK)
                self.cursor = seq + 1
                self.sent_cum = cum + frame_bytes(frames)
        except zmq.ZMQError as exc:
            if exc.errno == errno.EHOSTUNREACH:
                self.reader = None  # gone: it says where to resume when it is back
            else:
                self.pump_blocked = True  # its queue is full: again shortly

    # The loop.

    def run(self) -> int:
        self.signals = Signals((*RELAYED, *FATAL, "SIGCHLD", "SIGPIPE"))
        try:
            write_private(os.path.join(self.folder, OWNER_FILE), str(os.getpid()))
            self.setup_channels()
            self.loop()
        except Ending:
            pass
        except Exception as exc:
            self.say(f"the keeper failed: {exc!r}")
        finally:
            self.ending = True
            proc, self.proc = self.proc, None
            if proc is not None:
                kill_group(proc.pid, proc)
            self.read_output()
            self.close_channels()
            with contextlib.suppress(OSError):
                self.listener.close()
            shutil.rmtree(self.folder, ignore_errors=True)
            self.emit(Event.CLOSED)
            self.flush_blocking()
            if self.conn is not None:
                with contextlib.suppress(OSError):
                    self.conn.close()
        return 0

    def flush_blocking(self) -> None:
        """The last events: give the front a moment to take them."""
        deadline = time.monotonic() + 2.0
        while self.conn is not None and self.outbox and time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                select.select([], [self.conn], [], 0.1)
            self.flush()

    def loop(self) -> None:
        zmq = self.zmq
        sockets: dict[Any, str] = {front: name for name, front in self.fronts.items()}
        backs: dict[Any, str] = {back: name for name, back in self.backs.items()}
        while True:
            poller = zmq.Poller()
            for sock in (*sockets, *backs, self.iopub, self.replay):
                poller.register(sock, zmq.POLLIN)
            poller.register(self.listener.fileno(), zmq.POLLIN)
            poller.register(self.signals.read_fd, zmq.POLLIN)
            if self.output_fd >= 0:
                poller.register(self.output_fd, zmq.POLLIN)
            if self.conn is not None:
                poller.register(
                    self.conn.fileno(), zmq.POLLIN | (zmq.POLLOUT if self.outbox else 0)
                )
            ready = dict(poller.poll(self.wait_ms()))
            if self.signals.read_fd in ready:
                self.on_signals()
            if self.listener.fileno() in ready:
                self.accept()
            if self.conn is not None and self.conn.fileno() in ready:
                if ready[self.conn.fileno()] & zmq.POLLOUT:
                    self.flush()
                if self.conn is not None and ready[self.conn.fileno()] & zmq.POLLIN:
                    self.read_connection()
            if self.output_fd in ready:
                self.read_output()
            for sock, name in sockets.items():
                if sock in ready:
                    self.drain(sock, lambda frames, n=name: self.to_back(n, frames))
            for sock, name in backs.items():
                if sock in ready:
                    self.drain(sock, lambda frames, n=name: self.to_front(n, frames))
            if self.iopub in ready:
                self.drain(self.iopub, self.on_iopub)
            if self.replay in ready:
                self.drain(self.replay, self.on_replay)
            if self.pump_blocked:
                self.pump()
            if self.conn is not None:
                for name in list(self.pending):
                    self.send_pending(name)
            self.check_kernel()
            self.check_ready()
            self.check_times()

    def drain(self, sock: Any, handle: Any) -> None:
        zmq = self.zmq
        for _ in range(1000):  # then let the others have a turn
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            handle(frames)

    def wait_ms(self) -> int:
        now = time.monotonic()
        waits = [MAX_WAIT]
        if self.waiting_ready:
            waits.append(READY_POLL)
        if self.pump_blocked or (self.conn is not None and any(self.pending.values())):
            waits.append(PENDING_RETRY)
        if self.conn is not None:
            waits.append(self.last_ping + self.lease - now)
        elif self.detached_at is not None and self.detach_timeout is not None:
            waits.append(self.detached_at + self.detach_timeout - now)
        return max(0, int(min(waits) * 1000))

    def check_times(self) -> None:
        now = time.monotonic()
        if not self.started_once and now - self.created > CONFIG_TIMEOUT:
            self.end("no connection came")
        if self.conn is not None and now - self.last_ping > self.lease:
            self.drop_connection(f"no heartbeat for {self.lease:g} s")
        if (
            self.conn is None
            and self.detached_at is not None
            and self.detach_timeout is not None
            and now - self.detached_at >= self.detach_timeout
        ):
            self.end(f"detached for {self.detach_timeout:g} s (detach_timeout)")

    def on_signals(self) -> None:
        for name in self.signals.drain():
            if name in FATAL:
                self.end(f"received {name}")
            if name in RELAYED:
                self.signal_kernel(getattr(signal, name))


class Ending(Exception):
    """The keeper ends: the kernel, its folder, then itself."""


# Shared helpers.


def write_all(fd: int, data: bytes) -> None:
    try:
        while data:
            data = data[os.write(fd, data) :]
    except OSError as exc:
        raise Gone("output closed") from exc


def write_private(path: str, content: Any) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    data = (content if isinstance(content, str) else json.dumps(content, indent=1)).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        while data:
            data = data[os.write(fd, data) :]
    finally:
        os.close(fd)


def frame_bytes(frames: list[bytes]) -> int:
    return sum(len(frame) for frame in frames)


def message_id(frames: list[bytes]) -> bytes | None:
    """The msg_id of a Jupyter message, as it is in its header (None: not one)."""
    try:
        header = frames[frames.index(DELIMITER) + 2]
    except (ValueError, IndexError):
        return None
    try:
        value = json.loads(header).get("msg_id")
    except ValueError:
        return None
    return value.encode() if isinstance(value, str) else None


def is_welcome(frames: list[bytes]) -> bool:
    try:
        at = frames.index(DELIMITER)
        return b'"iopub_welcome"' in frames[at + 2] and (
            json.loads(frames[at + 2]).get("msg_type") == "iopub_welcome"
        )
    except (ValueError, IndexError):
        return False


def make_folder(folder: str) -> None:
    parent = os.path.dirname(folder)
    if not os.path.isdir(parent):
        raise RuntimeError(f"the runtime folder {parent} does not exist on this machine")
    os.mkdir(folder, 0o700)
    info = os.lstat(folder)
    # mkdir on a fresh random name is ours; checked anyway, as it holds the key.
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise RuntimeError(f"{folder} is not a folder owned by this user")
    os.chmod(folder, 0o700)
    write_private(os.path.join(folder, OWNER_FILE), str(os.getpid()))


def owner_of(folder: str) -> int | None:
    """The pid in the folder's owner file, if the folder is ours."""
    try:
        info = os.lstat(folder)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            return None
        with open(os.path.join(folder, OWNER_FILE)) as owner:
            return int(owner.read().strip() or 0)
    except (OSError, ValueError):
        return None


def sweep_stale_folders(parent: str) -> None:
    """Remove folders of keepers that were killed outright (their key file is in there)."""
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        if name.startswith(FOLDER_PREFIX):
            remove_if_orphaned(os.path.join(parent, name))


def remove_if_orphaned(folder: str) -> None:
    pid = owner_of(folder)
    if pid is not None and pid > 0 and not process_exists(pid):
        shutil.rmtree(folder, ignore_errors=True)


def working_dir(wanted: str | None) -> str:
    """The kernel's working folder: ``wanted`` (``~`` expanded, made if missing, so that the
    remote working folder exists even on a fresh pod), else the home, else ``/``."""
    home = os.path.expanduser("~")
    if wanted:
        path = os.path.expanduser(wanted)
        with contextlib.suppress(OSError):
            os.makedirs(path, exist_ok=True)
        if os.path.isdir(path):
            return path
    return home if os.path.isdir(home) else "/"


def kernel_argv(config: dict[str, Any], folder: str) -> tuple[list[str], bool]:
    """The kernel's argv, and whether it runs this very interpreter.

    ``{python}`` is this interpreter (the configured one), ``{connection_file}`` the file in
    the private folder.
    """
    argv = [str(a) for a in config["argv"]]
    ours = argv[0] in ("{python}", config.get("python"))
    if ours:
        argv[0] = sys.executable
    connection_file = os.path.join(folder, CONNECTION_FILE)
    argv = [
        a.replace("{connection_file}", connection_file).replace("{python}", sys.executable)
        for a in argv
    ]
    return argv, ours


def add_user_site() -> None:
    """A --user install made after start-up: its folder is not on sys.path yet."""
    import site

    with contextlib.suppress(Exception):
        user_site = site.getusersitepackages()
        if os.path.isdir(user_site) and user_site not in sys.path:
            site.addsitedir(user_site)
    importlib.invalidate_caches()


def ipykernel_importable() -> bool:
    # A fresh --user site folder is not on sys.path yet: ask a new interpreter.
    probe = subprocess.run(
        [sys.executable, "-c", "import ipykernel"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=2,
        check=False,
    )
    return probe.returncode == 0


def kill_group(pgid: int, proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM the group, SIGKILL what is left after a grace period, reap our child."""
    try:
        os.killpg(pgid, signal.SIGTERM)
        os.killpg(pgid, signal.SIGCONT)  # a stopped process acts on SIGTERM only once continued
    except (ProcessLookupError, PermissionError):
        pass
    deadline = time.monotonic() + KILL_GRACE
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is None:
            time.sleep(0.01)
            continue
        if not group_alive(pgid):
            break
        time.sleep(0.01)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5.0)


def group_alive(pgid: int) -> bool:
    """Whether the group has a live member (zombies do not count: init may be slow to reap)."""
    if not os.path.isdir("/proc/self"):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/" + name + "/stat", "rb") as handle:
                data = handle.read()
        except OSError:
            continue
        # After the command name (which may hold spaces and parentheses): state, ppid, pgrp.
        fields = data[data.rfind(b")") + 2 :].split()
        if len(fields) > 2 and fields[0] != b"Z" and int(fields[2]) == pgid:
            return True
    return False


def process_exists(pid: int) -> bool:
    """Whether ``pid`` lives (a zombie does not: a daemon's is reaped by whoever adopted it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/" + str(pid) + "/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return True  # no /proc: kill(0) has to do
    return data[data.rfind(b")") + 2 : data.rfind(b")") + 3] != b"Z"


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sockets.append(sock)
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def main() -> None:
    sys.exit(Front().run())


if __name__ == "__main__":
    main()
