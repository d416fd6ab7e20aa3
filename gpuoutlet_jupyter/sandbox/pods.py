"""Sandbox pods: real SSH servers on 127.0.0.1 that stand in for rented GPU machines.

Each pod has its own disk folder, `<state dir>/<pod id>/home`: its HOME and login folder, with
the working folder `work/` in it. Destroying the pod (a rental's stop) deletes the folder, as a
real stop wipes the disk. Pods serve exec, shells (with a pty), local forwarding, SFTP and scp,
and offer an `nvidia-smi` (the sandbox's simulation unless the machine has the real one)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import ipaddress
import logging
import os
import pathlib
import posixpath
import pwd
import re
import secrets
import shutil
import signal
import struct
import sys
import termios
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncssh

from . import nvidia_smi
from .nvidia_smi import GpuSpec

logger = logging.getLogger(__name__)

__all__ = ["GpuSpec", "Pod", "PodManager", "probe_ssh"]

#: Every pod process has the pod's id in its environment (also how a stop finds them all).
POD_ID_ENV = "GPUOUTLET_POD_ID"
# A pod id names a folder under state_dir, so it must be one safe path component.
_POD_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_POLL_INTERVAL = 0.02
_CHUNK = 65536
# After the shell of a pty session exits, background jobs may keep the pty open;
# like sshd we do not wait for them forever before reporting the exit status.
_PTY_DRAIN_TIMEOUT = 0.5
# A child that survives SIGKILL is stuck in the kernel; do not hang stop() on it.
_REAP_TIMEOUT = 5.0
_CLOSE_TIMEOUT = 5.0
#: The folder (under the pod's home) where work goes, `~/work` as on gpuoutlet's pods.
WORK_DIR = "work"


@dataclass(frozen=True)
class Pod:
    """Where a running pod listens and which host key it presents."""

    pod_id: str
    host: str
    port: int
    host_key_fingerprint: str


@dataclass(eq=False)
class _Child:
    """One process started for an SSH session; its pid is also its session and group id."""

    proc: asyncio.subprocess.Process
    reaper: asyncio.Task[None] | None = None

    @property
    def sid(self) -> int:
        return self.proc.pid


@dataclass(eq=False)
class _PodState:
    pod: Pod
    home: pathlib.Path
    gpus: GpuSpec | None = None
    #: When some commands are hidden: the pod's own bin folder, its whole PATH.
    bin_dir: pathlib.Path | None = None
    acceptor: asyncssh.SSHAcceptor | None = None
    connections: set[asyncssh.SSHServerConnection] = field(default_factory=set)
    children: set[_Child] = field(default_factory=set)
    # Sessions whose first process exited normally but left processes behind
    # (e.g. `nohup job &`): they live on, as on a real machine, until the pod stops.
    lingering: set[int] = field(default_factory=set)
    handlers: set[asyncio.Task[Any]] = field(default_factory=set)


def _is_loopback_destination(host: str) -> bool:
    """True for hosts a pod may forward to: 127.0.0.0/8, ::1 and the name localhost."""
    name = host.strip().rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _session_pgids(sid: int) -> set[int]:
    """Process groups that still have live (non-zombie) members in session `sid`."""
    proc_root = pathlib.Path("/proc")
    if not proc_root.is_dir():
        # Without /proc only the session's first group is visible.
        try:
            os.killpg(sid, 0)
        except (ProcessLookupError, PermissionError):
            return set()
        return {sid}
    pgids: set[int] = set()
    for entry in os.scandir(proc_root):
        if not entry.name.isdigit():
            continue
        try:
            with open(os.path.join(entry.path, "stat"), "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: parse after the last ')'.
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) < 4 or fields[0] == b"Z":
            continue
        if int(fields[3]) == sid:
            pgids.add(int(fields[2]))
    return pgids


def _pod_processes(pod_id: str) -> list[int]:
    """Live processes whose environment names the pod (every process a pod started has it)."""
    proc_root = pathlib.Path("/proc")
    if not proc_root.is_dir():
        return []
    marker = f"{POD_ID_ENV}={pod_id}".encode()
    found = []
    for entry in os.scandir(proc_root):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            with open(os.path.join(entry.path, "environ"), "rb") as f:
                environ = f.read().split(b"\0")
            with open(os.path.join(entry.path, "stat"), "rb") as f:
                stat = f.read()
        except OSError:
            continue
        if marker in environ and stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] != b"Z":
            found.append(int(entry.name))
    return found


def _signal_session(sid: int, sig: int, *, leader_unreaped: bool) -> None:
    targets = _session_pgids(sid)
    if leader_unreaped:
        # An unreaped pid cannot have been reused, so its group is safe to signal.
        targets.add(sid)
    for pgid in targets:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)


def _take_controlling_tty() -> None:
    # Runs in the child after setsid(): make the pty on fd 0 its controlling
    # terminal so job control, ^C and hangup behave as under sshd.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _set_window_size(fd: int, size: tuple[int, int, int, int]) -> None:
    width, height, pixwidth, pixheight = size
    if width and height:
        winsize = struct.pack("HHHH", height, width, pixwidth, pixheight)
        with contextlib.suppress(OSError):
            fcntl.ioctl(fd, termios.TIOCSWINSZ, winsize)


async def _open_pipe_writer(fd: int) -> asyncio.StreamWriter:
    """A flow-controlled writer that owns `fd` (a pipe or a pty) and closes it when done."""
    loop = asyncio.get_running_loop()
    pipe = os.fdopen(fd, "wb", buffering=0)
    try:
        transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, pipe)
    except BaseException:
        pipe.close()
        raise
    return asyncio.StreamWriter(transport, protocol, None, loop)


def _deliver_signal(child: _Child, name: str, tty: int | None) -> None:
    sig = getattr(signal, f"SIG{name}", None)
    if not isinstance(sig, signal.Signals) or child.proc.returncode is not None:
        return
    pgid = child.sid
    if tty is not None:
        # On a terminal the signal is for the foreground job, as ^C would be.
        with contextlib.suppress(OSError):
            pgid = os.tcgetpgrp(tty)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _working_dir(env: Mapping[str, str]) -> str:
    # sshd falls back to / when the home directory is missing; so do pods.
    home = env.get("HOME", "/")
    return home if os.path.isdir(home) else "/"


def _close_fds(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


class _PodSFTPServer(asyncssh.SFTPServer):
    """SFTP (and scp) on the pod's disk: relative paths start in the pod's home, as sshd's
    sftp-server starts in the user's home."""

    def __init__(self, chan: asyncssh.SSHServerChannel[bytes], home: bytes) -> None:
        super().__init__(chan)
        self._home = home

    def map_path(self, path: bytes) -> bytes:
        if path.startswith(b"/"):
            return path
        return posixpath.join(self._home, path) if path else self._home

    def exit(self) -> None:
        # sshd reports the sftp-server's exit status; asyncssh closes the channel without
        # one, and OpenSSH's scp (which checks it) then fails a finished copy.
        with contextlib.suppress(OSError, asyncssh.Error):
            self.channel.exit(0)


class _PodServer(asyncssh.SSHServer):
    """Per-connection policy: key-only auth for any user, loopback-only forwarding."""

    def __init__(self, state: _PodState) -> None:
        self._state = state
        self._conn: asyncssh.SSHServerConnection | None = None
        self._peer = "?"

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._state.connections.add(conn)
        peer = conn.get_extra_info("peername")
        self._peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        logger.debug("pod %s: connection from %s", self._state.pod.pod_id, self._peer)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._state.connections.discard(self._conn)
        logger.debug(
            "pod %s: connection from %s closed%s",
            self._state.pod.pod_id,
            self._peer,
            f" ({exc})" if exc else "",
        )

    def begin_auth(self, username: str) -> bool:
        # Any user name is fine (everything runs as the sandbox's user, like root
        # in a container); asyncssh checks the key against the authorized keys.
        return True

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def connection_requested(
        self, dest_host: str, dest_port: int, orig_host: str, orig_port: int
    ) -> bool:
        if _is_loopback_destination(dest_host):
            return True
        # Anything else would turn the sandbox into an open proxy.
        logger.info(
            "pod %s: refused forwarding to %s:%d", self._state.pod.pod_id, dest_host, dest_port
        )
        raise asyncssh.ChannelOpenError(
            asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED,
            "pods forward only to loopback addresses and Unix sockets",
        )

    def unix_connection_requested(self, dest_path: str) -> bool:
        return True

    def server_requested(self, listen_host: str, listen_port: int) -> bool:
        logger.info("pod %s: refused remote forwarding", self._state.pod.pod_id)
        return False

    def unix_server_requested(self, listen_path: str) -> bool:
        logger.info("pod %s: refused remote Unix forwarding", self._state.pod.pod_id)
        return False


class PodManager:
    """Starts, tracks and stops the SSH servers of the sandbox's pods.

    `env` entries override the environment every pod process gets (HOME, the
    login folder, defaults to the pod's own disk folder); `kill_grace` is how long a
    session's processes get between SIGHUP and SIGKILL. `simulate_gpus` puts the
    sandbox's `nvidia-smi` first on pods' PATH (default: only when this machine has
    no `nvidia-smi` of its own).
    """

    def __init__(
        self,
        state_dir: pathlib.Path,
        *,
        shell: str | None = None,
        env: Mapping[str, str] | None = None,
        kill_grace: float = 2.0,
        simulate_gpus: bool | None = None,
    ) -> None:
        self._state_dir = pathlib.Path(state_dir)
        self._shell = shell or os.environ.get("SHELL") or "/bin/sh"
        self._env_overrides = dict(env or {})
        self._kill_grace = kill_grace
        if simulate_gpus is None:
            simulate_gpus = shutil.which("nvidia-smi") is None
        self._bin_dir: pathlib.Path | None = None
        if simulate_gpus:
            # Not a valid pod id, so never a pod's folder.
            self._bin_dir = self._state_dir / ".bin"
            nvidia_smi.install(self._bin_dir)
        self._pods: dict[str, _PodState] = {}
        self._stopping: dict[str, asyncio.Task[None]] = {}
        self._lock = asyncio.Lock()

    # -- public API ---------------------------------------------------------

    async def start(
        self,
        pod_id: str,
        authorized_keys: str,
        *,
        port: int = 0,
        gpus: GpuSpec | None = None,
        hidden_commands: Collection[str] = (),
    ) -> Pod:
        """Start pod `pod_id` on 127.0.0.1:`port` (0: a free port), or return it if running;
        its disk folder is kept from an earlier start (a sandbox restart) or made empty.
        `hidden_commands` are missing from the pod's PATH (a machine without rsync, say)."""
        if not _POD_ID_RE.match(pod_id):
            raise ValueError(f"invalid pod id {pod_id!r}")
        async with self._lock:
            existing = self._pods.get(pod_id)
            if existing is not None:
                return existing.pod
            stopping = self._stopping.get(pod_id)
            if stopping is not None:
                # Let the old incarnation release its port and processes first.
                await asyncio.shield(stopping)
            try:
                client_keys = asyncssh.import_authorized_keys(authorized_keys)
            except (ValueError, asyncssh.KeyImportError):
                # The message of these errors never includes the key text.
                raise ValueError(f"pod {pod_id}: no usable authorized key") from None
            host_key = self._host_key(pod_id)
            fingerprint = host_key.get_fingerprint("sha256")
            home = self.home(pod_id)
            home.mkdir(exist_ok=True, mode=0o700)  # its parent came with the host key
            (home / WORK_DIR).mkdir(exist_ok=True, mode=0o700)
            state = _PodState(pod=Pod(pod_id, "127.0.0.1", 0, fingerprint), home=home, gpus=gpus)
            if hidden_commands:
                state.bin_dir = self._path_without(pod_id, set(hidden_commands))
            home_bytes = os.fsencode(home)

            async def handle(process: asyncssh.SSHServerProcess[bytes]) -> None:
                await self._handle(state, process)

            def sftp(chan: asyncssh.SSHServerChannel[bytes]) -> asyncssh.SFTPServer:
                return _PodSFTPServer(chan, home_bytes)

            acceptor = await asyncssh.create_server(
                lambda: _PodServer(state),
                "127.0.0.1",
                port,
                server_host_keys=[host_key],
                authorized_client_keys=client_keys,
                process_factory=handle,
                # OpenSSH 9's scp speaks SFTP; `scp -O` the old protocol: both work.
                sftp_factory=sftp,
                allow_scp=True,
                encoding=None,
                line_editor=False,
                allow_pty=True,
                agent_forwarding=False,
                x11_forwarding=False,
                password_auth=False,
                kbdint_auth=False,
                host_based_auth=False,
                gss_host=None,
                login_timeout=30,
                # Notice clients that vanished without closing, so their
                # processes are killed rather than left running.
                keepalive_interval=30,
                keepalive_count_max=3,
            )
            state.acceptor = acceptor
            state.pod = Pod(pod_id, "127.0.0.1", acceptor.get_port(), fingerprint)
            self._pods[pod_id] = state
            logger.info(
                "pod %s listening on 127.0.0.1:%d (host key %s)",
                pod_id,
                state.pod.port,
                fingerprint,
            )
            return state.pod

    async def stop(self, pod_id: str) -> None:
        """Stop listening, drop connections, kill and reap every process of the pod."""
        stopping = self._stopping.get(pod_id)
        if stopping is None:
            state = self._pods.pop(pod_id, None)
            if state is None:
                return
            stopping = asyncio.ensure_future(self._teardown(state))
            self._stopping[pod_id] = stopping
            stopping.add_done_callback(
                lambda t: self._stopping.pop(pod_id) if self._stopping.get(pod_id) is t else None
            )
        # Shielded so a cancelled caller never leaves a half-stopped pod behind.
        await asyncio.shield(stopping)

    async def destroy(self, pod_id: str) -> None:
        """Stop the pod and delete everything it had: its disk folder and its host key."""
        await self.stop(pod_id)
        folder = self._state_dir / pod_id
        if _POD_ID_RE.match(pod_id) and folder.exists():
            await asyncio.to_thread(shutil.rmtree, folder, ignore_errors=True)
            logger.info("pod %s destroyed (its disk deleted)", pod_id)

    def home(self, pod_id: str) -> pathlib.Path:
        """The pod's disk folder (its HOME)."""
        if not _POD_ID_RE.match(pod_id):
            raise ValueError(f"invalid pod id {pod_id!r}")
        return self._state_dir / pod_id / "home"

    async def close(self) -> None:
        """Stop every pod (their disks stay: the sandbox may start them again)."""
        await asyncio.gather(*(self.stop(pod_id) for pod_id in list(self._pods)))
        await asyncio.gather(*(asyncio.shield(t) for t in list(self._stopping.values())))

    def get(self, pod_id: str) -> Pod | None:
        """The running pod `pod_id`, if any."""
        state = self._pods.get(pod_id)
        return state.pod if state is not None else None

    def running(self) -> list[Pod]:
        """All running pods."""
        return [state.pod for state in self._pods.values()]

    # -- pods ---------------------------------------------------------------

    def _host_key(self, pod_id: str) -> asyncssh.SSHKey:
        pod_dir = self._state_dir / pod_id
        pod_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = pod_dir / "host_key"
        if path.exists():
            return asyncssh.read_private_key(path)
        key = asyncssh.generate_private_key("ssh-ed25519")
        tmp = pod_dir / f".host_key.{secrets.token_hex(8)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(key.export_private_key())
                f.flush()
                os.fsync(f.fileno())
            try:
                # link() fails if the key exists: whoever wrote first wins, and
                # a pod never gets a second host key.
                os.link(tmp, path)
            except FileExistsError:
                return asyncssh.read_private_key(path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        logger.info("pod %s: created host key %s", pod_id, key.get_fingerprint("sha256"))
        return key

    async def _teardown(self, state: _PodState) -> None:
        pod_id = state.pod.pod_id
        acceptor = state.acceptor
        if acceptor is not None:
            acceptor.close()
        for conn in list(state.connections):
            conn.abort()
        await self._reap_all(state)
        if state.handlers:
            # Handlers only have bookkeeping left once their children are reaped.
            await asyncio.wait(set(state.handlers), timeout=self._kill_grace + _REAP_TIMEOUT)
        # A handler that was still spawning when the connections went away.
        await self._reap_all(state)
        # What left its session (a daemon) goes too, as everything does with a real machine.
        await self._kill_escaped(pod_id)
        if acceptor is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(acceptor.wait_closed(), timeout=1.0)
        logger.info("pod %s stopped", pod_id)

    # -- processes ----------------------------------------------------------

    async def _reap_all(self, state: _PodState) -> None:
        reapers: list[Awaitable[None]] = [
            self._ensure_reaper(state, child) for child in list(state.children)
        ]
        reapers += [self._terminate(sid, None) for sid in state.lingering]
        state.lingering.clear()
        await asyncio.gather(*reapers, return_exceptions=True)

    def _ensure_reaper(self, state: _PodState, child: _Child) -> asyncio.Task[None]:
        if child.reaper is None:
            child.reaper = asyncio.ensure_future(self._terminate(child.sid, child.proc))
            child.reaper.add_done_callback(lambda _t: state.children.discard(child))
        return child.reaper

    async def _kill_escaped(self, pod_id: str) -> None:
        """SIGTERM, then SIGKILL after the grace, every process still carrying the pod's id."""
        pids = _pod_processes(pod_id)
        if not pids:
            return
        logger.info("pod %s: ending %d process(es) outside its sessions", pod_id, len(pids))
        for sig in (signal.SIGTERM, signal.SIGCONT):
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._kill_grace
        while pids and loop.time() < deadline:
            await asyncio.sleep(_POLL_INTERVAL)
            pids = _pod_processes(pod_id)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    async def _terminate(self, sid: int, proc: asyncio.subprocess.Process | None) -> None:
        """SIGHUP a session's process groups, SIGKILL what is left after the grace, reap."""

        def alive() -> bool:
            return (proc is not None and proc.returncode is None) or bool(_session_pgids(sid))

        def unreaped() -> bool:
            return proc is not None and proc.returncode is None

        if alive():
            _signal_session(sid, signal.SIGHUP, leader_unreaped=unreaped())
            # Stopped jobs only act on SIGHUP once continued, as after a real hangup.
            _signal_session(sid, signal.SIGCONT, leader_unreaped=unreaped())
            # Polled: there is nothing to wait on for processes that are not our children.
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._kill_grace
            while loop.time() < deadline:
                if not alive():
                    break
                await asyncio.sleep(_POLL_INTERVAL)
            if alive():
                logger.info("session %d ignored SIGHUP; sending SIGKILL", sid)
                _signal_session(sid, signal.SIGKILL, leader_unreaped=unreaped())
        if proc is not None:
            try:
                await asyncio.wait_for(proc.wait(), timeout=_REAP_TIMEOUT)
            except asyncio.TimeoutError:
                logger.warning("process %d did not exit after SIGKILL", proc.pid)

    def _search_path(self) -> list[str]:
        # The simulated nvidia-smi first; then the sandbox's own interpreter, so `python3` on
        # a pod has the packages the sandbox was installed with (ipykernel for remote kernels).
        dirs = [str(self._bin_dir)] if self._bin_dir is not None else []
        dirs.append(os.path.dirname(sys.executable))
        dirs += os.environ.get("PATH", _DEFAULT_PATH).split(os.pathsep)
        return list(dict.fromkeys(d for d in dirs if d))

    def _path_without(self, pod_id: str, hidden: set[str]) -> pathlib.Path:
        """A folder of links to every command on the pods' PATH but the hidden ones."""
        folder = self._state_dir / pod_id / "bin"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(mode=0o700)
        for directory in self._search_path():
            try:
                entries = list(os.scandir(directory))
            except OSError:
                continue
            for entry in entries:
                target = folder / entry.name
                if entry.name in hidden or target.exists() or target.is_symlink():
                    continue
                if entry.is_file() and os.access(entry.path, os.X_OK):
                    target.symlink_to(entry.path)
        return folder

    def _environment(
        self, state: _PodState, process: asyncssh.SSHServerProcess[bytes]
    ) -> dict[str, str]:
        try:
            user = pwd.getpwuid(os.getuid()).pw_name
        except KeyError:
            user = str(os.getuid())
        path_dirs = [str(state.bin_dir)] if state.bin_dir is not None else self._search_path()
        env = {
            "HOME": str(state.home),
            "USER": user,
            "LOGNAME": user,
            "SHELL": self._shell,
            "PATH": os.pathsep.join(path_dirs),
            "LANG": os.environ.get("LANG") or "C.UTF-8",
            POD_ID_ENV: state.pod.pod_id,
        }
        if state.gpus is not None:
            env.update(state.gpus.environment())
        # Like sshd's default AcceptEnv: only locale settings from the client.
        for name, value in process.env.items():
            if name == "LANG" or name.startswith("LC_"):
                env[name] = value
        peer = process.get_extra_info("peername")
        sock = process.get_extra_info("sockname")
        if peer and sock:
            env["SSH_CLIENT"] = f"{peer[0]} {peer[1]} {sock[1]}"
            env["SSH_CONNECTION"] = f"{peer[0]} {peer[1]} {sock[0]} {sock[1]}"
        env.update(self._env_overrides)
        return env

    def _argv(self, process: asyncssh.SSHServerProcess[bytes]) -> tuple[str, list[str]]:
        command = process.command
        if command is None:
            # A login shell, announced by the leading "-" in argv[0] as login(1) does.
            return self._shell, ["-" + os.path.basename(self._shell)]
        return "/bin/sh", ["/bin/sh", "-c", command]

    async def _handle(self, state: _PodState, process: asyncssh.SSHServerProcess[bytes]) -> None:
        task = asyncio.current_task()
        if task is not None:
            state.handlers.add(task)
        try:
            if process.subsystem is not None:
                process.stderr.write(f"subsystem {process.subsystem} is not supported\n".encode())
                process.exit(1)
            elif process.get_terminal_type() is not None:
                await self._run_on_pty(state, process)
            else:
                await self._run_on_pipes(state, process)
        except Exception:
            logger.exception("pod %s: session failed", state.pod.pod_id)
            with contextlib.suppress(Exception):
                process.exit(1)
        finally:
            if task is not None:
                state.handlers.discard(task)

    async def _spawn(
        self,
        state: _PodState,
        process: asyncssh.SSHServerProcess[bytes],
        stdin: int,
        stdout: int,
        stderr: int,
        *,
        env: dict[str, str],
        preexec_fn: Callable[[], None] | None = None,
    ) -> _Child | None:
        executable, argv = self._argv(process)
        cwd = _working_dir(env)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                executable=executable,
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                cwd=cwd,
                env=env,
                start_new_session=True,
                preexec_fn=preexec_fn,
            )
        except OSError as exc:
            process.stderr.write(f"cannot run {executable}: {exc.strerror}\n".encode())
            process.exit(127)
            return None
        child = _Child(proc)
        state.children.add(child)
        logger.debug("pod %s: started session %d", state.pod.pod_id, proc.pid)
        return child

    async def _run_on_pipes(
        self, state: _PodState, process: asyncssh.SSHServerProcess[bytes]
    ) -> None:
        stdin_r, stdin_w = os.pipe()
        stdout_r, stdout_w = os.pipe()
        stderr_r, stderr_w = os.pipe()
        ours = [stdin_w, stdout_r, stderr_r]
        try:
            env = self._environment(state, process)
            child = await self._spawn(state, process, stdin_r, stdout_w, stderr_w, env=env)
        except BaseException:
            _close_fds(ours)
            raise
        finally:
            _close_fds([stdin_r, stdout_w, stderr_w])
        if child is None:
            _close_fds(ours)
            return
        try:
            # Handed over one by one: an fd belongs to its transport once opened.
            stdin = await _open_pipe_writer(stdin_w)
            ours.remove(stdin_w)
            # send_eof=False: EOF on stdout alone must not end the channel while
            # stderr still has data (asyncssh would tear the session down).
            await process.redirect_stdout(stdout_r, send_eof=False)
            ours.remove(stdout_r)
            await process.redirect_stderr(stderr_r, send_eof=False)
            ours.remove(stderr_r)
        except BaseException:
            _close_fds(ours)
            await self._finish(state, child, disconnected=True)
            raise

        async def output_done() -> int:
            rc = await child.proc.wait()
            await process.stdout.drain()
            await process.stderr.drain()
            return rc

        await self._supervise(state, process, child, output_done(), stdin)

    async def _run_on_pty(
        self, state: _PodState, process: asyncssh.SSHServerProcess[bytes]
    ) -> None:
        try:
            master, slave = os.openpty()
        except OSError as exc:
            process.stderr.write(f"cannot allocate a pty on this pod: {exc.strerror}\n".encode())
            process.exit(1)
            return
        try:
            _set_window_size(slave, process.get_terminal_size())
            env = self._environment(state, process)
            env["TERM"] = process.get_terminal_type() or "xterm"
            with contextlib.suppress(OSError):
                env["SSH_TTY"] = os.ttyname(slave)
            child = await self._spawn(
                state, process, slave, slave, slave, env=env, preexec_fn=_take_controlling_tty
            )
        except BaseException:
            _close_fds([master])
            raise
        finally:
            _close_fds([slave])
        if child is None:
            _close_fds([master])
            return
        # Output, input and terminal control each get their own fd: the two
        # transports close theirs whenever they see fit.
        control = master
        ours = [master]
        try:
            reader = os.dup(master)
            ours.append(reader)
            writer = os.dup(master)
            ours.append(writer)
            await process.redirect_stdout(reader, send_eof=False)
            ours.remove(reader)
            stdin = await _open_pipe_writer(writer)
            ours.remove(writer)
        except BaseException:
            _close_fds(ours)
            await self._finish(state, child, disconnected=True)
            raise

        async def output_done() -> int:
            rc = await child.proc.wait()
            # Output ends (EIO) once nothing holds the pty's other side; background
            # jobs may, and like sshd we do not wait for them.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(process.stdout.drain(), timeout=_PTY_DRAIN_TIMEOUT)
            return rc

        try:
            await self._supervise(state, process, child, output_done(), stdin, tty=control)
        finally:
            _close_fds([control])

    async def _pump_input(
        self,
        process: asyncssh.SSHServerProcess[bytes],
        child: _Child,
        writer: asyncio.StreamWriter,
        *,
        tty: int | None,
    ) -> None:
        """Copy the client's input to the child, applying window changes and signals.

        Not asyncssh's redirect_stdin(): its pipe writer re-enters the transport
        from resume_writing() and asyncio then drops the last buffered chunk when
        EOF follows (about 1 in 10 multi-megabyte uploads lost their tail).
        """
        try:
            while True:
                try:
                    data = await process.stdin.read(_CHUNK)
                except asyncssh.TerminalSizeChanged as exc:
                    if tty is not None:
                        size = (exc.width, exc.height, exc.pixwidth, exc.pixheight)
                        _set_window_size(tty, size)
                    continue
                except (asyncssh.SignalReceived, asyncssh.BreakReceived) as exc:
                    name = exc.signal if isinstance(exc, asyncssh.SignalReceived) else "INT"
                    _deliver_signal(child, name, tty)
                    continue
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except Exception as exc:
            # The client went away or the child stopped reading: input is over.
            logger.debug("input of session %d ended: %r", child.sid, exc)
        finally:
            # EOF for the child (a flush of what is buffered, then close).
            writer.close()

    async def _supervise(
        self,
        state: _PodState,
        process: asyncssh.SSHServerProcess[bytes],
        child: _Child,
        output_done: Awaitable[int],
        stdin: asyncio.StreamWriter,
        *,
        tty: int | None = None,
    ) -> None:
        """Report the exit status once the child is done, or kill it if the client goes away."""
        pump = asyncio.ensure_future(self._pump_input(process, child, stdin, tty=tty))
        done_task = asyncio.ensure_future(output_done)
        # asyncssh's drain() never returns after a disconnect, so watch the channel too.
        closed_task = asyncio.ensure_future(process.channel.wait_closed())
        disconnected = True
        try:
            await asyncio.wait({done_task, closed_task}, return_when=asyncio.FIRST_COMPLETED)
            if done_task.done() and not done_task.cancelled() and done_task.exception() is None:
                disconnected = False
                rc = done_task.result()
                if not process.is_closing():
                    process.stdout.write_eof()
                    if rc < 0:
                        process.exit_with_signal(signal.Signals(-rc).name.removeprefix("SIG"))
                    else:
                        process.exit(rc)
        finally:
            for task in (done_task, closed_task, pump):
                task.cancel()
            await asyncio.gather(pump, return_exceptions=True)
            stdin.close()  # in case the pump was cancelled before it ran
            # A pty session ends with a hangup of everything on it, as a closed terminal does.
            await self._finish(state, child, disconnected=disconnected or tty is not None)
            # Also runs asyncssh's cleanup of the redirected fds, which it only
            # does in wait_closed().
            with contextlib.suppress(Exception):
                await asyncio.wait_for(process.wait_closed(), timeout=_CLOSE_TIMEOUT)

    async def _finish(self, state: _PodState, child: _Child, *, disconnected: bool) -> None:
        if disconnected or child.proc.returncode is None:
            logger.debug("pod %s: ending session %d", state.pod.pod_id, child.sid)
            # Shielded: the processes must be killed even if this handler is cancelled.
            await asyncio.shield(self._ensure_reaper(state, child))
            return
        state.children.discard(child)
        if _session_pgids(child.sid):
            state.lingering.add(child.sid)


async def probe_ssh(host: str, port: int, timeout: float = 2.0) -> bool:
    """True once an SSH server on host:port sends its "SSH-2.0-" banner within `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, asyncio.TimeoutError):
        return False
    try:
        # RFC 4253 lets a server send other lines before its version line.
        for _ in range(20):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            line = await asyncio.wait_for(reader.readline(), remaining)
            if line.startswith(b"SSH-2.0-"):
                return True
            if not line.endswith(b"\n") or line.startswith(b"SSH-"):
                return False
        return False
    except (OSError, ValueError, asyncio.TimeoutError):
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError, asyncio.TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 1.0)
