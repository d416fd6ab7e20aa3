"""Runs on the rented machine, sent over ssh's stdin: ipykernel in its own process group, tied to ssh.

Stdlib only, Python >= 3.8. The provisioner starts ``python3 -c <bootstrap>`` over ssh; the
bootstrap reads one line (this file, compressed) from stdin and runs it. Then, on stdin:

* one JSON line, the launch config (the connection key is in it, so it never reaches argv);
* then commands, one per line: ``ping`` (the heartbeat), ``signal <n>`` (to the kernel's
  process group), ``start <json>`` (a new kernel after the last one exited: a restart),
  ``ports <n>`` (free TCP ports on 127.0.0.1, for the TCP fallback).

Events go to stdout as JSON lines carrying a ``"gpuoutlet"`` key (anything else on stdout, say
from a chatty login script, is ignored): ``hello``, ``started`` (the kernel's pid), ``ready``
(its sockets are bound), ``exit`` (its status), ``error``, ``installing``, ``ports``, ``closed``.
The kernel's own stdout and stderr go to the wrapper's stderr, which ssh carries home.

The kernel's whole process group is killed on stdin EOF (ssh went away: without a pty the remote
side gets no SIGHUP), when no ``ping`` arrived within the lease, or on SIGTERM/SIGHUP. If the
wrapper itself is SIGKILLed, ipykernel's parent poller (``JPY_PARENT_PID``) ends the kernel.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.util
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

PROTOCOL = 1
STDIN = 0
# The kernel's sockets: "<folder>/k-<n>" for ipc; names agreed with the provisioner.
IPC_PREFIX = "k"
IPC_PORTS = {"shell_port": 1, "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5}
CONNECTION_FILE = "kernel.json"
OWNER_FILE = "wrapper.pid"
FOLDER_PREFIX = "gpuoutlet-kernel-"
CONFIG_TIMEOUT = 60.0
KILL_GRACE = 2.0
READY_POLL = 0.02
MAX_WAIT = 1.0
INSTALL_TIMEOUT = 600.0
# Signals the wrapper passes on to the kernel's group rather than acting on them.
RELAYED = ("SIGINT", "SIGQUIT", "SIGUSR1", "SIGUSR2")
FATAL = ("SIGTERM", "SIGHUP")


def log(message: str) -> None:
    """A line for the user on stderr (ssh brings it to the Jupyter server's log)."""
    with contextlib.suppress(OSError):
        os.write(2, ("gpuoutlet-wrapper: " + message + "\n").encode("utf-8", "replace"))


class Gone(Exception):
    """The provisioner is gone (stdin EOF, a missed heartbeat, a broken stdout, SIGTERM)."""


class Wrapper:
    """One kernel at a time (restarts reuse the folder), tied to this process's stdin."""

    def __init__(self) -> None:
        self.config: dict[str, Any] = {}
        self.folder = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self.waiting_ready = False
        self.ready_ports: set[int] = set()
        self.buffer = b""
        self.last_ping = time.monotonic()
        self.lease = 60.0
        self.wake_r = -1
        self.wake_w = -1

    # Output.

    def emit(self, event: str, **fields: Any) -> None:
        fields["gpuoutlet"] = PROTOCOL
        fields["event"] = event
        data = (json.dumps(fields, separators=(",", ":")) + "\n").encode("utf-8")
        try:
            while data:
                data = data[os.write(1, data) :]
        except OSError as exc:
            raise Gone("stdout is closed") from exc

    # Signals: every one we handle wakes select() through the wakeup pipe.

    def install_signals(self) -> None:
        self.wake_r, self.wake_w = os.pipe()
        for fd in (self.wake_r, self.wake_w):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(self.wake_w)
        for name in (*RELAYED, *FATAL, "SIGCHLD"):
            signal.signal(getattr(signal, name), lambda *_: None)

    def drain_signals(self) -> None:
        try:
            data = os.read(self.wake_r, 512)
        except BlockingIOError:
            return
        for signum in data:
            name = signal.Signals(signum).name
            if name in FATAL:
                raise Gone(f"received {name}")
            if name in RELAYED:
                self.signal_kernel(signum)

    # Input.

    def read_line(self, timeout: float) -> bytes | None:
        """The next stdin line (without its newline); None on timeout; Gone on EOF."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            readable, _, _ = select.select([STDIN, self.wake_r], [], [], remaining)
            if self.wake_r in readable:
                self.drain_signals()
            if STDIN in readable:
                self.fill()
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line

    def fill(self) -> None:
        try:
            chunk = os.read(STDIN, 65536)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EINTR):
                return
            raise Gone(f"stdin failed: {exc}") from exc
        if not chunk:
            raise Gone("stdin closed")
        self.buffer += chunk

    # The private folder and the connection file.

    def make_folder(self) -> None:
        folder = str(self.config["folder"])
        parent = os.path.dirname(folder)
        if not os.path.isdir(parent):
            raise RuntimeError(f"the runtime folder {parent} does not exist on this machine")
        os.mkdir(folder, 0o700)
        self.folder = folder
        info = os.lstat(folder)
        # mkdir on a fresh random name is ours; checked anyway, as it holds the key.
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            raise RuntimeError(f"{folder} is not a folder owned by this user")
        os.chmod(folder, 0o700)
        with open(os.path.join(folder, OWNER_FILE), "w") as owner:
            owner.write(str(os.getpid()))

    def sweep_stale_folders(self) -> None:
        """Remove folders of wrappers that were killed outright (their key file is in there)."""
        parent = os.path.dirname(str(self.config["folder"]))
        try:
            names = os.listdir(parent)
        except OSError:
            return
        for name in names:
            if not name.startswith(FOLDER_PREFIX):
                continue
            path = os.path.join(parent, name)
            try:
                info = os.lstat(path)
                if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
                    continue
                with open(os.path.join(path, OWNER_FILE)) as owner:
                    pid = int(owner.read().strip() or 0)
            except (OSError, ValueError):
                continue
            if pid > 0 and not process_exists(pid):
                shutil.rmtree(path, ignore_errors=True)

    def connection_info(self) -> dict[str, Any]:
        config = self.config
        info: dict[str, Any] = {
            "key": config["key"],
            "signature_scheme": config.get("signature_scheme", "hmac-sha256"),
            "kernel_name": config.get("kernel_name", ""),
            "transport": config["transport"],
        }
        if config["transport"] == "ipc":
            info["ip"] = os.path.join(self.folder, IPC_PREFIX)
            info.update(IPC_PORTS)
        else:
            info["ip"] = "127.0.0.1"
            info.update(config["ports"])
        return info

    def write_connection_file(self) -> str:
        path = os.path.join(self.folder, CONNECTION_FILE)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        data = json.dumps(self.connection_info(), indent=1).encode("utf-8")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            while data:
                data = data[os.write(fd, data) :]
        finally:
            os.close(fd)
        return path

    def remove_stale_sockets(self) -> None:
        # A kernel that was killed leaves its socket files; the next one must bind the same paths.
        for port in IPC_PORTS.values():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.folder, f"{IPC_PREFIX}-{port}"))

    def remove_folder(self) -> None:
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = ""

    # ipykernel.

    def kernel_argv(self) -> tuple[list[str], bool]:
        """The kernel's argv, and whether it runs this very interpreter.

        ``{python}`` is this interpreter (the configured one), ``{connection_file}`` the file
        in the private folder.
        """
        argv = [str(a) for a in self.config["argv"]]
        ours = argv[0] in ("{python}", self.config.get("python"))
        if ours:
            argv[0] = sys.executable
        connection_file = os.path.join(self.folder, CONNECTION_FILE)
        argv = [
            a.replace("{connection_file}", connection_file).replace("{python}", sys.executable)
            for a in argv
        ]
        return argv, ours

    def check_ipykernel(self) -> bool:
        if importlib.util.find_spec("ipykernel") is not None:
            return True
        if not self.config.get("install_ipykernel"):
            self.emit(
                "error",
                kind="no_ipykernel",
                python=sys.executable,
                version=".".join(map(str, sys.version_info[:3])),
            )
            return False
        return self.install_ipykernel()

    def install_ipykernel(self) -> bool:
        if importlib.util.find_spec("pip") is None:
            self.emit("error", kind="no_pip", python=sys.executable)
            return False
        argv = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        if sys.prefix == sys.base_prefix:  # not a venv: the user's own site-packages
            argv.append("--user")
            marker = os.path.join(sysconfig.get_paths()["stdlib"], "EXTERNALLY-MANAGED")
            if os.path.exists(marker):
                # PEP 668 guards the system's packages; a --user install leaves them alone.
                argv.append("--break-system-packages")
        argv.append("ipykernel")
        self.emit("installing", argv=argv)
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
            self.emit("error", kind="install_failed", python=sys.executable, detail=str(exc))
            return False
        importlib.invalidate_caches()
        self.last_ping = time.monotonic()  # pings queued during the install are read next
        if result.returncode != 0 or not self.find_ipykernel_again():
            self.emit(
                "error",
                kind="install_failed",
                python=sys.executable,
                detail=f"pip exited with status {result.returncode}",
            )
            return False
        return True

    def find_ipykernel_again(self) -> bool:
        # A fresh --user site folder is not on sys.path yet: ask a new interpreter.
        probe = subprocess.run(
            [sys.executable, "-c", "import ipykernel"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=2,
            check=False,
        )
        return probe.returncode == 0

    def start_kernel(self) -> None:
        argv, ours = self.kernel_argv()
        if ours and not self.check_ipykernel():
            return
        if self.config["transport"] == "ipc":
            self.remove_stale_sockets()
        self.write_connection_file()
        env = dict(os.environ)
        env.update({str(k): str(v) for k, v in self.config.get("env", {}).items()})
        # ipykernel exits by itself within a second once this process is gone (even SIGKILLed).
        env["JPY_PARENT_PID"] = str(os.getpid())
        cwd = self.config.get("cwd") or os.path.expanduser("~")
        if not os.path.isdir(cwd):
            cwd = "/"
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=2,
                stderr=2,
                cwd=cwd,
                env=env,
                start_new_session=True,  # its own process group: signals and kills reach it all
            )
        except OSError as exc:
            self.emit("error", kind="spawn_failed", argv=argv, detail=str(exc))
            return
        self.waiting_ready = True
        self.ready_ports = set()
        self.emit("started", pid=self.proc.pid)

    def check_ready(self) -> None:
        if not self.waiting_ready:
            return
        if self.config["transport"] == "ipc":
            for port in IPC_PORTS.values():
                path = os.path.join(self.folder, f"{IPC_PREFIX}-{port}")
                try:
                    if not stat.S_ISSOCK(os.stat(path).st_mode):
                        return
                except FileNotFoundError:
                    return
        else:
            for port in self.config["ports"].values():
                if port in self.ready_ports:
                    continue
                with socket.socket() as probe:
                    probe.settimeout(0.5)
                    if probe.connect_ex(("127.0.0.1", int(port))) != 0:
                        return
                self.ready_ports.add(port)
        self.waiting_ready = False
        self.emit("ready")

    def check_kernel(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is None:
            return
        self.proc = None
        self.waiting_ready = False
        # Whatever the kernel started in its group goes with it.
        kill_group(proc.pid, None)
        self.emit("exit", code=proc.returncode)

    def signal_kernel(self, signum: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signum)

    def stop_kernel(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            kill_group(proc.pid, proc)

    # Commands.

    def handle(self, line: bytes) -> None:
        command, _, argument = line.decode("utf-8", "replace").strip().partition(" ")
        if command == "ping":
            self.last_ping = time.monotonic()
        elif command == "signal":
            self.signal_kernel(int(argument))
        elif command == "start":
            if self.proc is not None:
                self.emit("error", kind="busy", detail="a kernel is still running")
                return
            self.config.update(json.loads(argument))
            self.start_kernel()
        elif command == "ports":
            self.emit("ports", ports=free_ports(int(argument)))
        elif command:
            log(f"unknown command {command!r} ignored")

    def serve(self) -> None:
        while True:
            now = time.monotonic()
            remaining = self.last_ping + self.lease - now
            if remaining <= 0:
                raise Gone(f"no heartbeat for {self.lease:g} s")
            timeout = min(remaining, READY_POLL if self.waiting_ready else MAX_WAIT)
            readable, _, _ = select.select([STDIN, self.wake_r], [], [], timeout)
            if self.wake_r in readable:
                self.drain_signals()
            if STDIN in readable:
                self.fill()
                while b"\n" in self.buffer:
                    line, self.buffer = self.buffer.split(b"\n", 1)
                    self.handle(line)
            self.check_kernel()
            self.check_ready()

    def run(self) -> int:
        self.install_signals()
        try:
            self.emit(
                "hello",
                pid=os.getpid(),
                python=sys.executable,
                version=".".join(map(str, sys.version_info[:3])),
            )
            line = self.read_line(CONFIG_TIMEOUT)
            if line is None:
                log(f"no launch config within {CONFIG_TIMEOUT:g} s")
                return 2
            self.config = json.loads(line.decode("utf-8"))
            self.lease = float(self.config.get("lease", self.lease))
            self.last_ping = time.monotonic()
            if self.config.get("mode") == "ports":
                self.emit("ports", ports=free_ports(int(self.config.get("count", 5))))
                return 0
            self.sweep_stale_folders()
            try:
                self.make_folder()
            except (OSError, RuntimeError) as exc:
                self.emit("error", kind="folder", detail=str(exc))
                return 1
            self.start_kernel()
            self.serve()
        except Gone as exc:
            if self.proc is not None:
                log(f"{exc}: stopping the kernel")
        finally:
            self.stop_kernel()
            self.remove_folder()
            with contextlib.suppress(Gone):
                self.emit("closed")
        return 0


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
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
    sys.exit(Wrapper().run())


if __name__ == "__main__":
    main()
