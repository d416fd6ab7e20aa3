"""The ``gpuoutlet-ssh`` kernel provisioner: ipykernel on a rented machine, kept across drops."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import time
import weakref
from pathlib import Path
from typing import Any, ClassVar

from jupyter_client.connect import KernelConnectionInfo, LocalPortCache
from jupyter_client.provisioning.provisioner_base import KernelProvisionerBase
from traitlets import Bool, CaselessStrEnum, Float, Integer, TraitError, Unicode, validate

from . import messages
from .link import (
    LOCAL_PORTS,
    LOCALHOST,
    KernelGone,
    LinkSettings,
    LocalPortTaken,
    RemoteKernelError,
    RemoteLink,
)
from .records import KernelRecord, KernelRecords, State, default_state_dir, process_start

__all__ = ["GpuOutletSSHProvisioner", "RemoteKernelError", "detach_all"]

#: The kernel manager's channel ports.
PORT_NAMES = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
# Set by the kernel manager for a notebook's kernel: the path a reopened notebook has again.
SESSION_ENV = "JPY_SESSION_NAME"
#: Launches on new ports after another program took a chosen one (LocalPortTaken).
PORT_TRIES = 5


class GpuOutletSSHProvisioner(KernelProvisionerBase):
    """Starts ipykernel on a rental through ``ssh -F <config> <alias>`` and forwards its ports.

    One ssh process per kernel carries the channels (local 127.0.0.1 ports to Unix sockets in a
    private folder on the machine, or to its 127.0.0.1 when Unix forwarding is refused) and
    talks to the wrapper: the launch config (with the connection key: never in argv), signals,
    the heartbeat. On the machine a keeper owns the kernel: when the connection drops it keeps
    the kernel, detached, and buffers its output; this provisioner reconnects through the same
    local ports and replays what it missed. A restart reuses the connection and its ports.
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
        help="The wrapper counts the connection as lost after this many seconds without a "
        "heartbeat: it detaches the kernel (or, with detach_timeout 0, ends it).",
    )
    keepalive_interval = Integer(
        10,
        config=True,
        help="ssh's ServerAliveInterval. A connection silent for keepalive_interval × "
        "(keepalive_count_max + 1) seconds (30 by default) counts as dead, and is replaced.",
    )
    keepalive_count_max = Integer(2, config=True, help="ssh's ServerAliveCountMax.")
    detach_timeout = Float(
        None,
        allow_none=True,
        config=True,
        help="Seconds a kernel whose connection dropped keeps running, detached, for this "
        "provisioner (or, after a Jupyter restart, the next start of the kernelspec) to "
        "reattach. None (the default): until the rental stops. 0: it ends with its connection.",
    )
    replay_buffer_mb = Float(
        64.0,
        config=True,
        help="MiB of the kernel's output kept on the machine while no one is connected, "
        "replayed on reconnect (the oldest goes first when it is full; the replay says so).",
    )
    reconnect_delay_max = Float(
        30.0, config=True, help="The longest wait between two reconnect attempts (backoff)."
    )
    state_dir = Unicode(
        "",
        config=True,
        help="Where each kernel's reattach record and connection state are kept (0600), "
        "under kernels/. Empty: <Jupyter data dir>/gpuoutlet (the server extension's).",
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
    #: Every provisioner with a link, for :func:`detach_all`.
    _live: ClassVar[weakref.WeakSet[GpuOutletSSHProvisioner]] = weakref.WeakSet()

    @validate("detach_timeout", "replay_buffer_mb", "reconnect_delay_max")
    def _not_negative(self, proposal: Any) -> Any:
        value = proposal["value"]
        if value is not None and value < 0:
            raise TraitError(f"{proposal['trait'].name} must be 0 or more, not {value}")
        return value

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._link: RemoteLink | None = None
        self._ports: dict[str, int] = {}
        self._launched = False
        self._adopting: KernelRecord | None = None
        self._rental_over = False

    # What tests, the server and the curious may look at.

    @property
    def ssh_pid(self) -> int | None:
        """The local ssh process of this kernel (None while there is none)."""
        link = self._link
        proc = link.proc if link is not None else None
        return proc.pid if proc is not None and proc.returncode is None else None

    @property
    def remote_pid(self) -> int | None:
        """The kernel's pid on the machine (also its process group)."""
        return self._link.kernel_pid if self._link is not None else None

    @property
    def wrapper_pid(self) -> int | None:
        """The keeper's pid on the machine (the kernel's parent)."""
        return self._link.keeper_pid if self._link is not None else None

    @property
    def remote_folder(self) -> str:
        """The private folder on the machine (connection file, sockets)."""
        return self._link.folder if self._link is not None else ""

    @property
    def transport(self) -> str:
        """``ipc`` or ``tcp``: how the forwards reach the keeper on the machine."""
        return self._link.transport if self._link is not None else ""

    @property
    def local_ports(self) -> dict[str, int]:
        """The kernel manager's five channel ports."""
        return {name: self._ports[name] for name in PORT_NAMES if name in self._ports}

    @property
    def wrapper_id(self) -> str:
        """The keeper's id: the name of this kernel's record under the state folder."""
        return self._link.wrapper if self._link is not None else ""

    @property
    def connection_state(self) -> dict[str, Any]:
        """``{"state": connecting|connected|reconnecting|detached, "attempt", "error"}``."""
        link = self._link
        if link is None:
            return {"state": State.CONNECTING, "attempt": 0, "error": ""}
        return {"state": link.state, "attempt": link.attempt, "error": link.error}

    @property
    def records(self) -> KernelRecords:
        return KernelRecords(Path(self.state_dir) if self.state_dir else default_state_dir())

    # KernelProvisionerBase.

    @property
    def has_process(self) -> bool:
        return self._launched

    async def poll(self) -> int | None:
        link = self._link
        if not self._launched or link is None:
            return 0
        if link.rental_over and not self._rental_over:
            # Its rental ended, and its machine with it: a restart could only fail (and say
            # "Kernel Restarting" first). The restarter is stopped before anyone learns the
            # kernel is dead; this poll may be the restarter's own, which would restart at once
            # on a dead answer, so this one answer is "alive", every later one "dead".
            self.end_with_rental()
            return None
        return link.kernel_status()

    @property
    def rental_over(self) -> bool:
        """The kernel's rental ended (stopped, failed or gone): it cannot run or start again."""
        return self._rental_over or (self._link is not None and self._link.rental_over)

    def end_with_rental(self) -> None:
        """The rental ended: no restart is tried (the Jupyter server's restarter is stopped),
        and the kernel's manager says why it died (``reason``, which JupyterLab shows)."""
        if self._rental_over:
            return
        self._rental_over = True
        km = self.parent
        if km is not None:
            if getattr(km, "autorestart", False):
                km.stop_restarter()
                km.autorestart = False
            if km.has_trait("reason"):  # jupyter_server's kernel managers have one
                km.reason = messages.rental_over(self.rental_id or self.ssh_alias)
        self.log.info(
            "the rental of kernel %s ended: it is not restarted", self.rental_id or self.ssh_alias
        )

    async def wait(self) -> int | None:
        link = self._link
        if not self._launched or link is None:
            return 0
        # Callers bound this wait (KernelManager uses wait_for); the keeper reports the exit.
        status = await link.call(link.wait_kernel())
        self._launched = False
        return status

    async def send_signal(self, signum: int) -> None:
        link = self._link
        if self._launched and link is not None:
            await link.call(link.signal(int(signum)))

    async def kill(self, restart: bool = False) -> None:
        link = self._link
        if link is not None:
            await link.call(link.kill())

    async def terminate(self, restart: bool = False) -> None:
        await self.send_signal(signal.SIGTERM)

    async def cleanup(self, restart: bool = False) -> None:
        link = self._link
        if restart:
            return  # the connection and its ports serve the next kernel
        self._link = None
        self._launched = False
        if link is not None:
            if link.state != State.DETACHED:
                await link.call(link.end())
            await link.close()
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
        if self.rental_over or messages.entry_gone(self.known_hosts_file):
            # A (re)start of the kernel of a rental that ended: its alias is gone with it, and
            # ssh would only say it cannot resolve it.
            self.end_with_rental()
            raise RemoteKernelError(messages.rental_over(self.rental_id or self.ssh_alias))
        # Locally the kernel is plain TCP on loopback: the ports are ssh's forwards (and ours).
        km.transport = "tcp"
        km.ip = LOCALHOST
        if self._link is None:
            env = kwargs.get("env") or {}
            self._adopting = await asyncio.to_thread(
                self.records.claim, self.rental_id or self.ssh_alias, env.get(SESSION_ENV, "")
            )
            if self._adopting is not None:
                # The kernel's key is the detached kernel's: our clients must sign with it.
                km.session.signature_scheme = self._adopting.signature_scheme
                km.session.key = self._adopting.key.encode()
        if not self._ports:
            km.cleanup_connection_file()  # ports from a failed launch: start from fresh ones
            self._choose_ports()
        else:
            self._use_ports()
        extra = list(kwargs.pop("extra_arguments", None) or [])
        cmd = [*self.kernel_spec.argv, *extra]
        return await super().pre_launch(cmd=cmd, **kwargs)

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        """Start (or adopt) the kernel; the connection info it returns is the kernel manager's.

        Ports are chosen in ``pre_launch`` and bound here, and another program may take one in
        between: then new ones are chosen (the kernel manager, its connection file and
        ``connection_info`` follow) and the launch tries again, up to PORT_TRIES times.
        """
        env = kwargs.get("env") or {}
        adopting, self._adopting = self._adopting, None
        for attempt in range(1, PORT_TRIES + 1):
            link = self._link or self._new_link()
            try:
                if adopting is not None:
                    if await self._adopt(link, adopting):
                        self._launched = True
                        return self.connection_info
                    adopting = None  # it was gone: a new kernel instead
                launch = self._launch_config(cmd, env)
                await link.call(
                    link.launch(launch, self._transport(), lambda: self._new_record(env))
                )
                if link.streamlocal_refused:
                    self._streamlocal_refused.add(self._refusal_key())
            except LocalPortTaken as exc:
                await self._drop_link(link)
                if attempt == PORT_TRIES:
                    if adopting is not None:  # still there, for a later start or a shut down
                        await asyncio.to_thread(
                            self.records.update,
                            adopting.wrapper,
                            state=State.DETACHED,
                            since=time.time(),
                        )
                    raise
                self.log.warning("%s; trying again on new ports", exc)
                self._choose_ports()
                continue
            except BaseException:
                await self._drop_link(link)
                raise
            self._launched = True
            return self.connection_info
        raise AssertionError("unreachable: the last try returns or raises")  # pragma: no cover

    async def get_provisioner_info(self) -> dict[str, Any]:
        info: dict[str, Any] = await super().get_provisioner_info()
        info.update(
            ssh_alias=self.ssh_alias,
            ssh_pid=self.ssh_pid,
            remote_pid=self.remote_pid,
            transport=self.transport,
            wrapper=self.wrapper_id,
        )
        return info

    # Links and records.

    def _new_link(self) -> RemoteLink:
        key = self.connection_info.get("key", b"")
        self._link = RemoteLink(
            LinkSettings(
                alias=self.ssh_alias,
                config_file=self.ssh_config_file,
                known_hosts_file=self.known_hosts_file,
                python=self.python,
                ssh_executable=self.ssh_executable,
                connect_timeout=self.connect_timeout,
                keepalive_interval=self.keepalive_interval,
                keepalive_count_max=self.keepalive_count_max,
                heartbeat_interval=self.heartbeat_interval,
                heartbeat_timeout=self.heartbeat_timeout,
                launch_timeout=self.launch_timeout,
                install_timeout=self.install_timeout,
                detach_timeout=self.detach_timeout,
                replay_buffer_mb=self.replay_buffer_mb,
                reconnect_delay_max=self.reconnect_delay_max,
                runtime_dir=self.remote_runtime_dir,
                rental_id=self.rental_id,
            ),
            self._ports,
            key=key if isinstance(key, bytes) else str(key).encode(),
            signature_scheme=str(self.connection_info.get("signature_scheme", "hmac-sha256")),
            log=self.log,
            records=self.records,
        )
        self._live.add(self)
        return self._link

    async def _adopt(self, link: RemoteLink, record: KernelRecord) -> bool:
        """Reattach to a detached kernel; False (and it is forgotten) when it is gone."""
        await asyncio.to_thread(self.records.update, record.wrapper, kernel_id=self.kernel_id)
        try:
            await link.call(link.adopt(record))
        except KernelGone:
            self.log.warning(
                "the detached kernel %s on %s is gone; starting a new one",
                record.wrapper,
                self.ssh_alias,
            )
            await asyncio.to_thread(self.records.remove, record.wrapper)
            return False
        self.log.info("adopted the detached kernel %s on %s", record.wrapper, self.ssh_alias)
        return True

    def _new_record(self, env: dict[str, str]) -> KernelRecord:
        key = self.connection_info.get("key", b"")
        return KernelRecord(
            wrapper=secrets.token_hex(8),
            rental_id=self.rental_id or self.ssh_alias,
            kernel_name=self._kernel_name(),
            ssh_alias=self.ssh_alias,
            ssh_config_file=self.ssh_config_file,
            known_hosts_file=self.known_hosts_file,
            folder="",
            transport="",
            remote_ports={},
            key=key.decode() if isinstance(key, bytes) else str(key),
            signature_scheme=str(self.connection_info.get("signature_scheme", "hmac-sha256")),
            python=self.python,
            ssh_executable=self.ssh_executable,
            session_name=env.get(SESSION_ENV, ""),
            kernel_id=str(self.kernel_id or ""),
            started_at=time.time(),
            since=time.time(),
            detach_timeout=self.detach_timeout,
            owner_pid=os.getpid(),
            owner_start=process_start(os.getpid()),
        )

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
            "kernel_name": self._kernel_name(),
            "install_ipykernel": bool(self.install_ipykernel),
        }

    def _kernel_name(self) -> str:
        """The kernelspec's name (the connection info has none: the kernel manager knows it)."""
        name = self.connection_info.get("kernel_name") or getattr(self.parent, "kernel_name", "")
        return str(name or "")

    def _refusal_key(self) -> tuple[str, str]:
        return (self.ssh_config_file, self.ssh_alias)

    def _transport(self) -> str:
        transport = str(self.remote_transport).lower()
        if transport == "auto" and self._refusal_key() in self._streamlocal_refused:
            return "tcp"
        return transport

    def _choose_ports(self) -> None:
        """Free local ports for a new link (any held before are let go first)."""
        self._return_ports()
        cache = LocalPortCache.instance()
        self._ports = {name: cache.find_available_port(LOCALHOST) for name in LOCAL_PORTS}
        self._use_ports()

    def _use_ports(self) -> None:
        """The kernel manager, its connection file and ``connection_info`` get our ports."""
        km = self.parent
        assert km is not None
        if any(getattr(km, name, 0) != self._ports[name] for name in PORT_NAMES):
            km.cleanup_connection_file()  # it names other ports: written again below
        for name in PORT_NAMES:
            setattr(km, name, self._ports[name])
        km.write_connection_file()
        self.connection_info = km.get_connection_info()

    async def _drop_link(self, link: RemoteLink) -> None:
        """A launch failed: end what it started (not an adopted kernel) and let its ports go."""
        self._link = None
        try:
            await link.call(link.end())  # a keeper started for this launch goes too
        finally:
            await link.close()
            self._return_ports()  # a retry picks new ones (one may have been taken)

    def _return_ports(self) -> None:
        if not self._ports:
            return
        cache = LocalPortCache.instance()
        for port in self._ports.values():
            cache.return_port(port)
        self._ports = {}

    async def _detach(self) -> bool:
        """Leave the kernel running, detached (Jupyter goes away); whether it was."""
        link = self._link
        if link is None or self.detach_timeout == 0 or not self._launched or self.rental_over:
            return False
        await link.call(link.detach())
        return True


async def detach_all() -> int:
    """Detach every remote kernel of this process instead of ending it; how many were.

    For a Jupyter server that is going away: call it before the kernels are shut down (an
    extension's ``stop_extension`` runs first), and the next Jupyter adopts them.
    """
    provisioners = list(GpuOutletSSHProvisioner._live)
    results = await asyncio.gather(*(p._detach() for p in provisioners), return_exceptions=True)
    return sum(1 for result in results if result is True)
