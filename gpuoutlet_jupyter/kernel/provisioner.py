"""The ``gpuoutlet-ssh`` kernel provisioner: ipykernel on a rented machine, over one ssh process."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import json
import secrets
import shlex
import signal
import socket
from importlib import resources
from typing import Any, ClassVar

from jupyter_client.connect import KernelConnectionInfo, LocalPortCache
from jupyter_client.provisioning.provisioner_base import KernelProvisionerBase
from traitlets import Bool, CaselessStrEnum, Float, Integer, Unicode

from .session import SSHSession
from .ssh_command import (
    OLD_PYTHON_MESSAGE,
    Forward,
    SSHCommandError,
    build_ssh_argv,
    check_remote_path,
    wrapper_line,
)
from .wrapper import FOLDER_PREFIX, IPC_PORTS, IPC_PREFIX

LOCALHOST = "127.0.0.1"
PORT_NAMES = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
POLL = 0.01
PROBE_TIMEOUT = 3.0
CLOSE_GRACE = 3.0


class RemoteKernelError(RuntimeError):
    """The remote kernel could not be started; the message says why and what to do."""


@functools.cache
def _wrapper_line() -> bytes:
    """The wrapper, compressed onto one line (read once per server process)."""
    return wrapper_line(resources.files(__package__).joinpath("wrapper.py").read_bytes())


class GpuOutletSSHProvisioner(KernelProvisionerBase):
    """Starts ipykernel on a rental through ``ssh -F <config> <alias>`` and forwards its ports.

    One ssh process per kernel carries the five channels (local 127.0.0.1 ports to Unix sockets
    in a private folder on the machine, or to its 127.0.0.1 when Unix forwarding is refused) and
    talks to a small wrapper on its stdin: the launch config (with the connection key: never in
    argv), signals, the heartbeat. A restart reuses the ssh process and its local ports.
    """

    ssh_alias = Unicode("", config=True, help="The SSH alias of the rental (gpuoutlet-<id>).")
    ssh_config_file = Unicode(
        "", config=True, help="The ssh config that defines the alias (passed as ssh -F)."
    )
    known_hosts_file = Unicode(
        "", config=True, help="The rental's own known_hosts (UserKnownHostsFile)."
    )
    python = Unicode("python3", config=True, help="The Python interpreter on the machine.")
    rental_id = Unicode("", config=True, help="The rental id (GPUOUTLET_RENTAL_ID remotely).")
    remote_transport = CaselessStrEnum(
        ["auto", "ipc", "tcp"],
        default_value="auto",
        config=True,
        help="ipc: Unix sockets in a private folder; tcp: the machine's 127.0.0.1; auto: ipc, "
        "and tcp when the server refuses Unix socket forwarding.",
    )
    remote_runtime_dir = Unicode(
        # Safe in a shared /tmp: the wrapper mkdirs a fresh random name 0700 and checks its owner.
        "/tmp",  # noqa: S108
        config=True,
        help="Where the private 0700 kernel folder is made on the machine (keep it short: "
        "Unix socket paths are limited to about 100 bytes).",
    )
    remote_cwd = Unicode("", config=True, help="The kernel's working folder (default: home).")
    launch_timeout = Float(60.0, config=True, help="Seconds until the kernel must be up.")
    install_timeout = Float(
        600.0, config=True, help="Extra seconds allowed while ipykernel is being installed."
    )
    heartbeat_interval = Float(5.0, config=True, help="Seconds between heartbeats to the wrapper.")
    heartbeat_timeout = Float(
        60.0,
        config=True,
        help="The wrapper kills the kernel after this many seconds without a heartbeat.",
    )
    install_ipykernel = Bool(
        False,
        config=True,
        help="Install ipykernel into the user's site-packages on the machine when it is missing.",
    )
    connect_timeout = Integer(15, config=True, help="ssh's ConnectTimeout, in seconds.")
    ssh_executable = Unicode("ssh", config=True, help="The OpenSSH client.")

    #: (config file, alias) pairs whose server refused Unix socket forwarding.
    _streamlocal_refused: ClassVar[set[tuple[str, str]]] = set()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._session: SSHSession | None = None
        self._ports: dict[str, int] = {}
        self._launched = False
        self._transport = ""
        self._folder = ""

    # What tests and the curious may look at.

    @property
    def ssh_pid(self) -> int | None:
        """The local ssh process of this kernel."""
        return self._session.pid if self._session is not None else None

    @property
    def remote_pid(self) -> int | None:
        """The kernel's pid on the machine (also its process group)."""
        return self._session.kernel_pid if self._session is not None else None

    @property
    def wrapper_pid(self) -> int | None:
        return self._session.wrapper_pid if self._session is not None else None

    @property
    def remote_folder(self) -> str:
        """The private folder on the machine (connection file, sockets)."""
        return self._folder

    @property
    def transport(self) -> str:
        """``ipc`` or ``tcp``: how the forwards reach the kernel on the machine."""
        return self._transport

    @property
    def local_ports(self) -> dict[str, int]:
        return dict(self._ports)

    # KernelProvisionerBase.

    @property
    def has_process(self) -> bool:
        return self._launched

    async def poll(self) -> int | None:
        if not self._launched or self._session is None:
            return 0
        return self._session.kernel_status()

    async def wait(self) -> int | None:
        if not self._launched:
            return 0
        # Callers bound this wait (KernelManager uses wait_for); the wrapper reports the exit.
        await _until(lambda: self._kernel_done(), float("inf"))
        status = await self.poll()
        self._launched = False
        return status

    def _kernel_done(self) -> bool:
        return self._session is None or self._session.kernel_status() is not None

    async def send_signal(self, signum: int) -> None:
        session = self._session
        if self._launched and session is not None and session.alive:
            session.command(f"signal {int(signum)}")

    async def kill(self, restart: bool = False) -> None:
        session = self._session
        if session is None or session.kernel_status() is not None:
            return  # nothing runs any more (and the ssh may serve the restart)
        if session.alive:
            session.command(f"signal {int(signal.SIGKILL)}")
            if await _until(lambda: session.kernel_status() is not None, 3.0):
                return
        # The wrapper did not answer (a stopped or stuck ssh): without ssh it kills the kernel.
        session.signal_ssh(signal.SIGKILL)

    async def terminate(self, restart: bool = False) -> None:
        await self.send_signal(signal.SIGTERM)

    async def cleanup(self, restart: bool = False) -> None:
        session = self._session
        if session is not None and not (restart and session.alive and not session.kernel_running):
            await self._close_session()
        if not restart:
            self._return_ports()

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        km = self.parent
        if km is None:
            raise RemoteKernelError("the gpuoutlet-ssh provisioner needs a KernelManager parent")
        if not self.ssh_alias:
            raise RemoteKernelError(
                f"the kernelspec {getattr(km, 'kernel_name', '')!r} names no ssh_alias in its "
                "kernel_provisioner config; remove it and let gpuoutlet-jupyter write it again"
            )
        # Locally the kernel is plain TCP on loopback: the ports are ssh's forwards.
        km.transport = "tcp"
        km.ip = LOCALHOST
        if not self._ports:
            km.cleanup_connection_file()  # ports from a failed launch: start from fresh ones
            cache = LocalPortCache.instance()
            self._ports = {name: cache.find_available_port(LOCALHOST) for name in PORT_NAMES}
        for name, port in self._ports.items():
            setattr(km, name, port)
        km.write_connection_file()
        self.connection_info = km.get_connection_info()
        extra = list(kwargs.pop("extra_arguments", None) or [])
        cmd = [*self.kernel_spec.argv, *extra]
        return await super().pre_launch(cmd=cmd, **kwargs)

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        launch = self._launch_config(cmd, kwargs.get("env") or {})
        session = self._session
        try:
            if session is not None and session.alive and not session.kernel_running:
                # A restart: the same ssh, the same local ports, a new kernel process.
                cursor = len(session.events)
                session.command("start " + json.dumps(launch))
                await self._await_ready(session, cursor)
            else:
                if session is not None:
                    await self._close_session()
                await self._start_session(launch)
        except BaseException:
            await self._close_session()
            self._return_ports()  # a retry picks new ones (one may have been taken)
            raise
        self._launched = True
        return self.connection_info

    async def get_provisioner_info(self) -> dict[str, Any]:
        info: dict[str, Any] = await super().get_provisioner_info()
        info.update(
            ssh_alias=self.ssh_alias,
            ssh_pid=self.ssh_pid,
            remote_pid=self.remote_pid,
            transport=self._transport,
        )
        return info

    # Sessions.

    def _launch_config(self, cmd: list[str], env: dict[str, str]) -> dict[str, Any]:
        # Only what the kernel needs goes to the machine: the kernelspec's own "env" and the
        # rental's names. Nothing else of the local environment (the notebook's path in
        # JPY_SESSION_NAME, the server's URL and token, the user's variables) leaves it.
        remote_env = {k: env[k] for k in self.kernel_spec.env if k in env}
        if self.rental_id:
            remote_env["GPUOUTLET_RENTAL_ID"] = self.rental_id
        remote_env["GPUOUTLET_SSH_ALIAS"] = self.ssh_alias
        key = self.connection_info.get("key", b"")
        return {
            "argv": cmd,
            "env": remote_env,
            "cwd": self.remote_cwd,
            "python": self.python,
            "key": key.decode() if isinstance(key, bytes) else str(key),
            "signature_scheme": self.connection_info.get("signature_scheme", "hmac-sha256"),
            "kernel_name": self.connection_info.get("kernel_name", ""),
            "install_ipykernel": bool(self.install_ipykernel),
        }

    def _refusal_key(self) -> tuple[str, str]:
        return (self.ssh_config_file, self.ssh_alias)

    async def _start_session(self, launch: dict[str, Any]) -> None:
        transport = self.remote_transport.lower()
        if transport == "auto" and self._refusal_key() in self._streamlocal_refused:
            transport = "tcp"
        remote_ports = await self._remote_free_ports() if transport == "tcp" else None
        session = await self._open_session(
            launch, "ipc" if transport != "tcp" else "tcp", remote_ports
        )
        if transport == "auto" and not await self._forward_works(self._ports["hb_port"]):
            # The server refused streamlocal forwarding: the same kernel over TCP on its loopback.
            self._streamlocal_refused.add(self._refusal_key())
            self.log.warning(
                "%s refuses Unix socket forwarding (AllowStreamLocalForwarding); the kernel "
                "listens on the machine's 127.0.0.1 instead (its messages stay signed).",
                self.ssh_alias,
            )
            ports = await self._ask_ports(session)
            await self._close_session()
            await self._open_session(launch, "tcp", ports)

    async def _open_session(
        self, launch: dict[str, Any], transport: str, remote_ports: list[int] | None
    ) -> SSHSession:
        folder = f"{self._runtime_dir()}/{FOLDER_PREFIX}{secrets.token_hex(8)}"
        if transport == "ipc":
            forwards = [
                Forward(self._ports[name], remote_path=f"{folder}/{IPC_PREFIX}-{IPC_PORTS[name]}")
                for name in PORT_NAMES
            ]
            ports_map: dict[str, int] = {}
        else:
            if remote_ports is None or len(remote_ports) != len(PORT_NAMES):
                raise RemoteKernelError(f"no free ports were found on {self.ssh_alias}")
            ports_map = dict(zip(PORT_NAMES, remote_ports, strict=True))
            forwards = [
                Forward(self._ports[name], remote_port=ports_map[name]) for name in PORT_NAMES
            ]
        self._check_local_ports()
        argv = self._argv(forwards)
        config = {
            **launch,
            "folder": folder,
            "transport": transport,
            "ports": ports_map,
            "lease": self.heartbeat_timeout,
        }
        session = SSHSession(
            argv,
            label=f"[{self.ssh_alias} kernel]",
            log=self.log,
            heartbeat_interval=self.heartbeat_interval,
        )
        self._session = session
        self._transport = transport
        self._folder = folder
        try:
            session.start(_wrapper_line() + json.dumps(config).encode() + b"\n")
        except OSError as exc:
            raise RemoteKernelError(
                f"could not run {self.ssh_executable!r} ({exc.strerror or exc}): install the "
                "OpenSSH client or set ssh_executable in the kernelspec's provisioner config"
            ) from None
        await self._await_ready(session, 0)
        return session

    def _argv(self, forwards: list[Forward]) -> list[str]:
        try:
            return build_ssh_argv(
                self.ssh_alias,
                python=self.python,
                forwards=forwards,
                config_file=self.ssh_config_file or None,
                known_hosts_file=self.known_hosts_file or None,
                connect_timeout=self.connect_timeout,
                ssh_executable=self.ssh_executable,
            )
        except (SSHCommandError, ValueError) as exc:
            raise RemoteKernelError(
                f"the kernelspec's provisioner config is not usable: {exc}"
            ) from None

    def _runtime_dir(self) -> str:
        try:
            return check_remote_path(
                self.remote_runtime_dir.rstrip("/") or "/", "remote_runtime_dir"
            )
        except SSHCommandError as exc:
            raise RemoteKernelError(str(exc)) from None

    def _check_local_ports(self) -> None:
        """Fail at once, and clearly, when a chosen local port was taken meanwhile."""
        for name, port in self._ports.items():
            with socket.socket() as sock:
                # As ssh binds its listeners: a port in TIME_WAIT is free, a listener is not.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((LOCALHOST, port))
                except OSError as exc:
                    if exc.errno != errno.EADDRINUSE:
                        raise
                    raise RemoteKernelError(
                        f"the local port {port} ({name.replace('_port', '')} channel) on "
                        f"{LOCALHOST} is already in use by another program. Start the kernel "
                        "again: new ports are chosen."
                    ) from None

    async def _await_ready(self, session: SSHSession, cursor: int) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.launch_timeout
        ended = False
        while True:
            for event in session.events_since(cursor):
                cursor += 1
                kind = event.get("event")
                if kind == "ready":
                    return
                if kind == "installing":
                    deadline = loop.time() + self.install_timeout
                    self.log.warning("installing ipykernel on %s ...", self.ssh_alias)
                elif kind == "error":
                    raise RemoteKernelError(self._describe_error(event, session))
                elif kind == "exit":
                    raise RemoteKernelError(self._describe_early_exit(event, session))
            if ended:
                raise RemoteKernelError(self._describe_ssh_failure(session))
            if not session.alive:
                # Let the readers catch up with the last events and ssh's last words, then
                # look at the events once more: the wrapper's own error explains best.
                await _until(lambda: session.returncode is not None, 1.0)
                await asyncio.sleep(0.05)
                ended = True
                continue
            if loop.time() > deadline:
                raise RemoteKernelError(
                    f"the kernel on {self.ssh_alias} was not ready after "
                    f"{self.launch_timeout:g} s (launch_timeout).{_tail(session)}"
                )
            await asyncio.sleep(POLL)

    async def _forward_works(self, port: int) -> bool:
        """Whether a forward reaches the kernel: its ZMTP greeting arrives through the tunnel."""
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(LOCALHOST, port), PROBE_TIMEOUT
            )
        except (OSError, asyncio.TimeoutError):
            return False
        try:
            data = await asyncio.wait_for(reader.read(10), PROBE_TIMEOUT)
        except asyncio.TimeoutError:
            return True  # slow, not refused: a refused channel closes at once
        except OSError:
            return False
        finally:
            writer.close()
            with contextlib.suppress(OSError, asyncio.TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
        return bool(data)

    async def _ask_ports(self, session: SSHSession) -> list[int]:
        cursor = len(session.events)
        session.command(f"ports {len(PORT_NAMES)}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.launch_timeout
        while True:
            # Events first: the wrapper may answer and exit before we look.
            for event in session.events_since(cursor):
                cursor += 1
                if event.get("event") == "ports":
                    return [int(p) for p in event.get("ports", [])]
            if loop.time() > deadline or (
                session.stdout_closed and not session.events_since(cursor)
            ):
                break
            await asyncio.sleep(POLL)
        raise RemoteKernelError(f"{self.ssh_alias} did not report free ports.{_tail(session)}")

    async def _remote_free_ports(self) -> list[int]:
        """Free TCP ports on the machine's loopback, from a short ssh run of the wrapper."""
        argv = self._argv([])
        session = SSHSession(
            argv, label=f"[{self.ssh_alias} ports]", log=self.log, heartbeat_interval=3600
        )
        config = {"folder": "", "mode": "ports", "count": len(PORT_NAMES), "lease": 60}
        session.start(_wrapper_line() + json.dumps(config).encode() + b"\n")
        try:
            return await self._ask_ports(session)
        finally:
            session.close_stdin()
            await _until(lambda: session.returncode is not None, CLOSE_GRACE)
            session.signal_ssh(signal.SIGKILL)
            await asyncio.to_thread(session.reap)

    async def _close_session(self) -> None:
        session, self._session = self._session, None
        self._launched = False
        if session is None:
            return
        session.close_stdin()
        # The wrapper stops the kernel and removes its folder, then ssh ends (a zmq client's
        # reconnects can keep it up a little: once the wrapper said goodbye, we end it).
        await _until(lambda: session.returncode is not None or session.wrapper_closed, CLOSE_GRACE)
        if session.returncode is None:
            await _until(lambda: session.returncode is not None, 0.3)
        if session.returncode is None:
            session.signal_ssh(signal.SIGTERM)
            if not await _until(lambda: session.returncode is not None, 2.0):
                session.signal_ssh(signal.SIGKILL)
        await asyncio.to_thread(session.reap)

    def _return_ports(self) -> None:
        if not self._ports:
            return
        cache = LocalPortCache.instance()
        for port in self._ports.values():
            cache.return_port(port)
        self._ports = {}

    # Messages.

    def _ssh_command_for_user(self) -> str:
        if self.ssh_config_file:
            return f"ssh -F {shlex.quote(self.ssh_config_file)} {self.ssh_alias}"
        return f"ssh {self.ssh_alias}"

    def _describe_error(self, event: dict[str, Any], session: SSHSession) -> str:
        kind = event.get("kind")
        python = str(event.get("python") or self.python)
        ssh = self._ssh_command_for_user()
        if kind == "no_ipykernel":
            return (
                f"ipykernel is not installed for {python} (Python {event.get('version', '?')}) "
                f"on {self.ssh_alias}. Install it there, for example with\n"
                f"    {ssh} {shlex.quote(python)} -m pip install --user ipykernel\n"
                'and start the kernel again; or set "install_ipykernel": true in the '
                "kernel_provisioner config of this kernelspec to let gpuoutlet-jupyter install "
                'it into the user\'s site-packages. To use another interpreter, set "python" '
                "there."
            )
        if kind == "no_pip":
            return (
                f"ipykernel is missing on {self.ssh_alias} and pip is not available for "
                f"{python} to install it. Install pip or ipykernel with the machine's package "
                f"manager, e.g. `{ssh} apt-get install -y python3-pip` (or python3-ipykernel), "
                "and start the kernel again."
            )
        if kind == "install_failed":
            return (
                f"installing ipykernel for {python} on {self.ssh_alias} failed "
                f"({event.get('detail')}). Install it by hand with "
                f"`{ssh} {shlex.quote(python)} -m pip install --user ipykernel`.{_tail(session)}"
            )
        if kind == "folder":
            return (
                f"could not create the kernel's private folder on {self.ssh_alias}: "
                f"{event.get('detail')}. Set remote_runtime_dir in the kernelspec's "
                "provisioner config to a writable folder with a short path."
            )
        if kind == "spawn_failed":
            return (
                f"could not start the kernel command {event.get('argv')} on {self.ssh_alias}: "
                f'{event.get("detail")}. Check "python" and "argv" in the kernelspec.'
            )
        return f"the remote kernel on {self.ssh_alias} failed: {event}.{_tail(session)}"

    def _describe_early_exit(self, event: dict[str, Any], session: SSHSession) -> str:
        return (
            f"the kernel on {self.ssh_alias} exited with status {event.get('code')} before it "
            f"was ready.{_tail(session)}"
        )

    def _describe_ssh_failure(self, session: SSHSession) -> str:
        tail = session.stderr_tail()
        code = session.returncode
        where = self.ssh_alias
        said = f"\nssh said:\n{_indent(tail)}" if tail else ""
        if (
            "REMOTE HOST IDENTIFICATION HAS CHANGED" in tail
            or "Host key verification failed" in tail
        ):
            known = self.known_hosts_file or "the known_hosts file named in the ssh config"
            return (
                f"the host key of {where} could not be verified: it is not the one recorded in "
                f"{known}, or it is unknown and the ssh config does not allow adding it. If the "
                f"rental really moved to a new machine, remove its line from {known} and start "
                f"the kernel again; otherwise do not connect.{said}"
            )
        if "Permission denied" in tail:
            return (
                f"{where} refused the SSH key. Check that the rental was created with your "
                f"public key and that the IdentityFile in the ssh config is right.{said}"
            )
        if "Could not resolve hostname" in tail:
            return (
                f"ssh cannot resolve the alias {where}: pass the ssh config that defines it "
                f"(ssh_config_file in the kernelspec's provisioner config).{said}"
            )
        if "Address already in use" in tail or "local forwarding" in tail:
            return (
                f"ssh could not listen on a local port for the kernel on {where} (one was taken "
                f"meanwhile). Start the kernel again: new ports are chosen.{said}"
            )
        if OLD_PYTHON_MESSAGE in tail:
            return (
                f'{self.python!r} on {where} is older than Python 3.8. Set "python" in the '
                f"kernelspec's provisioner config to a newer interpreter there.{said}"
            )
        if code == 127 or "not found" in tail or "No such file" in tail:
            return (
                f"the Python interpreter {self.python!r} could not run on {where}. Set "
                f'"python" in the kernelspec\'s provisioner config to an interpreter that '
                f"exists there (e.g. python3 or /opt/conda/bin/python).{said}"
            )
        if code == 255:
            return (
                f"ssh could not connect to {where} (status 255). Is the rental still "
                f"running? Try `{self._ssh_command_for_user()} true` in a terminal.{said}"
            )
        return (
            f"the kernel on {where} ended before it was ready (ssh exited with status "
            f"{code}).{said}"
        )


async def _until(predicate: Any, timeout: float) -> bool:
    """Wait (polling) until ``predicate()`` is true; whether it became true within ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(POLL)
    return True


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def _tail(session: SSHSession) -> str:
    tail = session.stderr_tail()
    return f"\nIts output:\n{_indent(tail)}" if tail else ""
