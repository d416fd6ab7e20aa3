"""The connection of one remote kernel: ssh to its keeper, the iopub relay, reconnects.

A :class:`RemoteLink` runs on its own thread and event loop, so heartbeats, reconnects and the
iopub relay go on whatever the caller's loop does (a sync KernelManager runs one only during a
call) and a burst of output never holds up the Jupyter server. The provisioner calls it through
:meth:`RemoteLink.call`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import re
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import zmq.asyncio

from . import messages
from .records import KernelRecord, KernelRecords, State, default_state_dir
from .relay import REQUEST_CHANNELS, IopubRelay, RequestRelay
from .session import SSHEnded, SSHProcess
from .ssh_command import Forward, SSHCommandError, build_ssh_argv, check_remote_path, wrapper_line
from .wrapper import (
    FOLDER_PREFIX,
    FORWARDED,
    FRONT_PREFIX,
    Command,
    ErrorKind,
    Event,
    Mode,
)

T = TypeVar("T")
LOCALHOST = "127.0.0.1"
#: The kernel manager's five channel ports (the relays hold iopub, shell, control and stdin).
CHANNEL_PORTS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
#: The local end of each forward (the keeper's name on the left): ours alone but for hb.
FORWARD_PORTS = {
    "shell_port": "shell_up",
    "replay_port": "replay_port",
    "stdin_port": "stdin_up",
    "control_port": "control_up",
    "hb_port": "hb_port",
}
#: Every local port a link needs.
LOCAL_PORTS = (*CHANNEL_PORTS, "replay_port", "shell_up", "stdin_up", "control_up")
FORWARD_NAMES = tuple(FORWARDED)
PROBE_TIMEOUT = 3.0
CLOSE_GRACE = 3.0
FIRST_RETRY_DELAY = 0.5


class RemoteKernelError(RuntimeError):
    """The remote kernel could not be started or reached; the message says why and what to do."""


class KernelGone(RemoteKernelError):
    """The kernel no longer exists on the machine (its detach timeout ran out, or it ended)."""


class LocalPortTaken(RemoteKernelError):
    """A local port chosen for the kernel was taken by another program before it was bound.

    Ports are chosen (bound to port 0, then let go) before the relays and ssh bind them, and
    another program may take one in between: nothing has reached the machine yet when this is
    raised, so the launch may choose new ports and try again.
    """

    def __init__(self, port: int, channel: str) -> None:
        super().__init__(messages.local_port_taken(port, channel, LOCALHOST))
        self.port = port
        self.channel = channel


#: What ssh says when it cannot listen on a forward's local port (then ExitOnForwardFailure).
_FORWARD_BIND_FAILED = re.compile(
    r"bind \[?[^\]\s]*\]?:(\d+): Address already in use|cannot listen to port: (\d+)"
)


@cache
def _wrapper_line() -> bytes:
    """The wrapper, compressed onto one line (read once per process)."""
    return wrapper_line(resources.files(__package__).joinpath("wrapper.py").read_bytes())


@dataclass(frozen=True)
class LinkSettings:
    """The provisioner's traits, as the link uses them."""

    alias: str
    config_file: str
    known_hosts_file: str
    python: str
    ssh_executable: str
    connect_timeout: int
    keepalive_interval: int
    keepalive_count_max: int
    heartbeat_interval: float
    heartbeat_timeout: float
    launch_timeout: float
    install_timeout: float
    detach_timeout: float | None
    replay_buffer_mb: float
    reconnect_delay_max: float
    runtime_dir: str
    rental_id: str = ""

    @property
    def where(self) -> messages.Where:
        return messages.Where(
            self.alias, self.python, self.config_file, self.known_hosts_file, self.rental_id
        )

    @property
    def silence_limit(self) -> float:
        """No word from the wrapper for this long: the connection is dead (as ssh would say)."""
        if self.keepalive_interval > 0:
            return float(self.keepalive_interval * (self.keepalive_count_max + 1))
        return self.heartbeat_timeout


class RemoteLink:
    """ssh to one keeper on one machine, through fixed local ports, for as long as it lives."""

    def __init__(
        self,
        settings: LinkSettings,
        ports: dict[str, int],
        *,
        key: bytes,
        signature_scheme: str,
        log: logging.Logger | logging.LoggerAdapter[Any],
        records: KernelRecords | None = None,
    ) -> None:
        self.settings = settings
        self.ports = dict(ports)
        self.key = key
        self.signature_scheme = signature_scheme
        self.log = log
        self.records = records
        self.record: KernelRecord | None = None
        self.wrapper = ""
        self.folder = ""
        self.transport = ""
        self.remote_ports: dict[str, int] = {}
        self.proc: SSHProcess | None = None
        self.keeper_pid: int | None = None
        self.kernel_pid: int | None = None
        #: The last kernel's exit status once known; None while it runs (or may run).
        self.exit_code: int | None = None
        self.kernel_running = False
        self.state = State.CONNECTING
        self.attempt = 0
        self.error = ""
        self.closing = False
        self.reconnects = 0
        self.streamlocal_refused = False
        #: The kernel is gone because its rental ended (its machine with it): nothing to
        #: reconnect to, end or restart.
        self.rental_over = False
        self._supervisor: asyncio.Task[None] | None = None
        self._kernel_done: asyncio.Event | None = None
        self._wake: asyncio.Event | None = None
        self.relay: IopubRelay | None = None
        self.requests: RequestRelay | None = None
        self._context: zmq.asyncio.Context | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._run_loop, name=f"gpuoutlet-link-{settings.alias}", daemon=True
        )
        self._thread.start()

    # Running on the link's own loop.

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()
        with contextlib.suppress(Exception):
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the link's loop; await it from any loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    async def close(self) -> None:
        """Stop the relay and the loop (after :meth:`end` or :meth:`detach`)."""
        if not self._thread.is_alive():
            return
        await self.call(self._shutdown_loop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        await asyncio.to_thread(self._thread.join, 5.0)

    async def _shutdown_loop(self) -> None:
        self.closing = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
        if self.relay is not None:
            self.relay.close()
            self.relay = None
        if self.requests is not None:
            self.requests.close()
            self.requests = None
        if self._context is not None:
            self._context.destroy(linger=0)
            self._context = None

    # What the provisioner asks for (each runs on the link's loop).

    def kernel_status(self) -> int | None:
        """None while the kernel runs or may still run (reconnecting); else its exit status."""
        return (
            None if self.kernel_running else (self.exit_code if self.exit_code is not None else 0)
        )

    async def launch(
        self, launch: dict[str, Any], transport: str, new_record: Callable[[], KernelRecord]
    ) -> None:
        """Start a kernel: on the running connection (a restart), or over a new one.

        ``transport``: ipc, tcp, or auto (ipc, and tcp when the server refuses Unix socket
        forwarding: :attr:`streamlocal_refused` then says so). ``new_record``: the record of a
        new keeper (written before it starts, so a crash never leaves one nobody knows of).
        """
        self._ensure_loop_state()
        self.closing = False
        proc = self.proc
        if proc is not None and proc.alive and self.state == State.CONNECTED:
            if self.kernel_running:
                raise RemoteKernelError(f"a kernel is still running on {self.settings.alias}")
            waiter = proc.expect({Event.READY, Event.ERROR, Event.EXIT})
            proc.command(Command.START, json.dumps(launch))
            await self._until_ready(proc, waiter)
            return
        if proc is not None or self.keeper_pid is not None:
            await self._abandon()  # what is left of the last kernel's connection
        # Every local port first (a port another program took means new ports, see
        # LocalPortTaken): no record is written and nothing is started before they are ours.
        self._hold_channel_ports()
        self._check_local_ports()
        self.record = new_record()
        self.wrapper = self.record.wrapper
        self.keeper_pid = None
        remote_ports = await self._remote_free_ports() if transport == "tcp" else {}
        await self._first_connect(launch, transport, remote_ports)
        if transport == "auto":
            if await self._forward_works(self.ports["hb_port"]):
                transport = "ipc"
            else:
                # The server refused streamlocal forwarding: the same kernel over TCP.
                self.streamlocal_refused = True
                self.log.warning(messages.streamlocal_refused(self.settings.alias))
                ports = await self._ask_ports()
                await self._end_keeper()
                await self._end_connection()
                self.exit_code, self.kernel_running, self.keeper_pid = None, False, None
                await self._first_connect(launch, "tcp", ports)
                transport = "tcp"
        self.transport = transport
        await self._connected(from_now=False)

    async def adopt(self, record: KernelRecord) -> None:
        """Reattach to a detached kernel (a Jupyter restart): same key, new local ports."""
        self._ensure_loop_state()
        self.record = record
        self.wrapper, self.folder = record.wrapper, record.folder
        self.transport, self.remote_ports = record.transport, dict(record.remote_ports)
        try:
            self._hold_channel_ports()
            await self._attach()
        except KernelGone:
            raise
        except LocalPortTaken:
            # Nothing reached the machine: the kernel stays as it was, for a try on new ports.
            self.wrapper, self.keeper_pid = "", None
            raise
        except BaseException:
            # Not reached this time (the machine is out of reach, ...): it stays detached and
            # listed, for a later start or a shut down; this link lets go of it.
            wrapper, self.wrapper, self.keeper_pid = self.wrapper, "", None
            if self.records is not None:
                await asyncio.to_thread(
                    self.records.update, wrapper, state=State.DETACHED, since=time.time()
                )
            raise
        await self._connected(from_now=True)

    async def signal(self, signum: int) -> None:
        proc = self.proc
        if self.kernel_running and proc is not None and proc.alive:
            proc.command(Command.SIGNAL, str(int(signum)))

    async def kill(self) -> None:
        """SIGKILL the kernel through the keeper; if it does not answer, end the keeper."""
        proc = self.proc
        if not self.kernel_running:
            return
        if proc is not None and proc.alive and self.state == State.CONNECTED:
            proc.command(Command.SIGNAL, str(int(signal.SIGKILL)))
            if await self._wait_kernel(3.0):
                return
        # No answer (a stopped ssh, a dead connection): the keeper is ended over a new
        # connection; a restart then starts a new one.
        await self._abandon()

    async def wait_kernel(self) -> int | None:
        await self._wait_kernel(None)
        return self.kernel_status()

    async def end(self) -> None:
        """End the kernel, its keeper and its folder; forget its record."""
        self._ensure_loop_state()
        self.closing = True
        await self._abandon()

    async def _abandon(self) -> None:
        """End the keeper (over the live connection, else a new one), then the connection.

        A keeper that cannot be reached keeps its record, marked detached: it stays listed, to
        be shut down later (its lease and detach timeout, or the rental's stop, end it too).
        """
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None and supervisor is not asyncio.current_task():
            supervisor.cancel()
            await asyncio.gather(supervisor, return_exceptions=True)
        self._detach_relays()
        ended = await self._end_keeper()
        await self._end_connection()
        self._mark_gone(self.exit_code if self.exit_code is not None else 0)
        if self.records is not None and self.wrapper:
            if ended or self.keeper_pid is None:
                await asyncio.to_thread(self.records.remove, self.wrapper)
            else:
                self._set_state(State.DETACHED)
        self.keeper_pid = None

    async def _end_keeper(self) -> bool:
        """Tell the keeper to end; whether it said it did (or is gone already)."""
        proc = self.proc
        if proc is not None and proc.alive:
            waiter = proc.expect({Event.CLOSED})
            proc.command(Command.END)
            with contextlib.suppress(SSHEnded, asyncio.TimeoutError):
                await asyncio.wait_for(waiter, CLOSE_GRACE + 2.0)
                return True
        if self.keeper_pid is None or not self.folder:
            return True  # no keeper was ever started
        try:
            await say_end(self.settings, self.folder, self.wrapper, self.log)
        except (RemoteKernelError, OSError, asyncio.TimeoutError) as exc:
            self.log.warning("could not end the kernel on %s: %s", self.settings.alias, exc)
            return False
        return True

    async def detach(self) -> None:
        """Leave the kernel running, detached (Jupyter goes away; another one may adopt it)."""
        self._ensure_loop_state()
        self.closing = True
        if self._supervisor is not None:
            self._supervisor.cancel()
        await self._end_connection()  # stdin EOF without "end": the keeper detaches
        self._set_state(State.DETACHED)
        self._mark_gone(0)

    # Connections.

    def _ensure_loop_state(self) -> None:
        if self._kernel_done is None:
            self._kernel_done = asyncio.Event()
            self._wake = asyncio.Event()
            self._context = zmq.asyncio.Context()

    async def _first_connect(
        self, launch: dict[str, Any], transport: str, remote_ports: dict[str, int]
    ) -> None:
        self.folder = f"{self._runtime_dir()}/{FOLDER_PREFIX}{secrets.token_hex(8)}"
        self.transport = "ipc" if transport in ("ipc", "auto") else "tcp"
        self.remote_ports = remote_ports
        if self.records is not None and self.record is not None:
            self.record.folder, self.record.transport = self.folder, self.transport
            self.record.remote_ports = dict(remote_ports)
            await asyncio.to_thread(self.records.write, self.record)
        proc = await self._open(Mode.LAUNCH, launch)
        waiter = proc.expect({Event.ATTACHED, Event.ERROR, Event.EXIT})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.launch_timeout
        # ipykernel may be installed first: that gets its own, longer, time.
        installing = proc.expect({Event.INSTALLING})
        while True:
            event = await self._next(proc, [waiter, installing], deadline - loop.time())
            if event.get("event") == Event.INSTALLING:
                deadline = loop.time() + self.settings.install_timeout
                self.log.warning("installing ipykernel on %s ...", self.settings.alias)
                installing = proc.expect({Event.INSTALLING})
                continue
            installing.cancel()
            break
        self._check_launch_event(proc, event)
        ready = proc.expect({Event.READY, Event.ERROR, Event.EXIT})
        await self._until_ready(proc, ready)

    async def _until_ready(self, proc: SSHProcess, waiter: asyncio.Future[dict[str, Any]]) -> None:
        event = await self._next(proc, [waiter], self.settings.launch_timeout)
        self._check_launch_event(proc, event)

    def _check_launch_event(self, proc: SSHProcess, event: dict[str, Any]) -> None:
        kind = event.get("event")
        tail = proc.stderr_tail()
        if kind == Event.ERROR:
            raise RemoteKernelError(messages.wrapper_error(self.settings.where, event, tail))
        if kind == Event.EXIT:
            raise RemoteKernelError(
                messages.early_exit(self.settings.where, event.get("code"), tail)
            )

    async def _next(
        self,
        proc: SSHProcess,
        waiters: list[asyncio.Future[dict[str, Any]]],
        timeout: float,
    ) -> dict[str, Any]:
        """The first of ``waiters`` to resolve; clear errors for ssh ending or a timeout."""
        try:
            done, _ = await asyncio.wait(
                waiters, timeout=max(0.0, timeout), return_when=asyncio.FIRST_COMPLETED
            )
        except asyncio.CancelledError:
            raise
        if not done:
            raise RemoteKernelError(
                messages.not_ready(
                    self.settings.where, self.settings.launch_timeout, proc.stderr_tail()
                )
            )
        first = done.pop()
        try:
            event: dict[str, Any] = first.result()
            return event
        except SSHEnded:
            await proc.wait(1.0)  # ssh's last words, and its status
            taken = self._port_taken_by_ssh(proc)
            if taken is not None:
                raise taken from None
            raise RemoteKernelError(
                messages.ssh_failure(self.settings.where, proc.returncode, proc.stderr_tail())
            ) from None

    async def _open(self, mode: str, launch: dict[str, Any] | None = None) -> SSHProcess:
        """Start ssh with the forwards and the wrapper in ``mode``."""
        self._check_local_ports()
        settings = self.settings
        config: dict[str, Any] = {
            **(launch or {}),
            "mode": mode,
            "folder": self.folder,
            "wrapper": self.wrapper,
            "transport": self.transport,
            "ports": self.remote_ports,
            "lease": settings.heartbeat_timeout,
            "detach_timeout": settings.detach_timeout,
            "replay_buffer_mb": settings.replay_buffer_mb,
        }
        proc = SSHProcess(
            self._argv(self._forwards()),
            label=f"[{settings.alias} kernel]",
            log=self.log,
            on_event=self._on_event,
        )
        self.proc = proc
        try:
            await proc.start(_wrapper_line() + json.dumps(config).encode() + b"\n")
        except OSError as exc:
            self.proc = None
            raise RemoteKernelError(
                f"could not run {settings.ssh_executable!r} ({exc.strerror or exc}): install "
                "the OpenSSH client or set ssh_executable in the kernelspec's provisioner config"
            ) from None
        return proc

    def _forwards(self) -> list[Forward]:
        local = {name: self.ports[FORWARD_PORTS[name]] for name in FORWARD_NAMES}
        if self.transport == "tcp":
            if set(self.remote_ports) != set(FORWARD_NAMES):
                raise RemoteKernelError(f"no free ports were found on {self.settings.alias}")
            return [Forward(local[n], remote_port=self.remote_ports[n]) for n in FORWARD_NAMES]
        return [
            Forward(local[n], remote_path=f"{self.folder}/{FRONT_PREFIX}-{FORWARDED[n]}")
            for n in FORWARD_NAMES
        ]

    def _argv(self, forwards: list[Forward]) -> list[str]:
        settings = self.settings
        try:
            return build_ssh_argv(
                settings.alias,
                python=settings.python,
                forwards=forwards,
                config_file=settings.config_file or None,
                known_hosts_file=settings.known_hosts_file or None,
                connect_timeout=settings.connect_timeout,
                keepalive_interval=settings.keepalive_interval,
                keepalive_count_max=settings.keepalive_count_max,
                ssh_executable=settings.ssh_executable,
            )
        except (SSHCommandError, ValueError) as exc:
            raise RemoteKernelError(
                f"the kernelspec's provisioner config is not usable: {exc}"
            ) from None

    def _runtime_dir(self) -> str:
        try:
            return check_remote_path(
                self.settings.runtime_dir.rstrip("/") or "/", "remote_runtime_dir"
            )
        except SSHCommandError as exc:
            raise RemoteKernelError(str(exc)) from None

    def _hold_channel_ports(self) -> None:
        """Bind the kernel manager's iopub, shell, control and stdin ports, and hold them.

        The relays bind them once and keep them across reconnects; binding them before ssh
        starts leaves another program no time to take them (hb and the forwards are ssh's).
        """
        assert self._context is not None
        try:
            if self.relay is None:
                self.relay = IopubRelay(
                    self._context,
                    self.ports["iopub_port"],
                    key=self.key,
                    signature_scheme=self.signature_scheme,
                    buffer_mb=self.settings.replay_buffer_mb,
                    log=self.log,
                )
            if self.requests is None:
                self.requests = RequestRelay(self._context, self.ports, log=self.log)
        except zmq.ZMQError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            held = ("iopub_port",) if self.relay is not None else ()
            found = re.search(r":(\d+)'?\)?\s*$", str(exc))
            port = int(found.group(1)) if found else 0
            name = next(
                (n for n in CHANNEL_PORTS if n not in held and self.ports[n] == port),
                "shell_port" if held else "iopub_port",
            )
            raise LocalPortTaken(self.ports[name], _channel(name)) from None

    def _check_local_ports(self) -> None:
        """Fail at once, and clearly, when a local port was taken meanwhile."""
        names = list(FORWARD_PORTS.values())
        if self.relay is None:  # the relays bind these once, and hold them
            names += [n for n in CHANNEL_PORTS if n != "hb_port"]
        for name in names:
            port = self.ports[name]
            with socket.socket() as sock:
                # As ssh binds its listeners: a port in TIME_WAIT is free, a listener is not.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((LOCALHOST, port))
                except OSError as exc:
                    if exc.errno != errno.EADDRINUSE:
                        raise
                    raise LocalPortTaken(port, _channel(name)) from None

    def _port_taken_by_ssh(self, proc: SSHProcess) -> LocalPortTaken | None:
        """ssh ended because it could not listen on a forward's port (taken after the check)."""
        found = _FORWARD_BIND_FAILED.search(proc.stderr_tail())
        if found is None:
            return None
        port = int(found.group(1) or found.group(2))
        name = next((n for n, p in self.ports.items() if p == port), "")
        return LocalPortTaken(port, _channel(name) if name else "forwarded")

    def _replace_forward_port(self, port: int) -> bool:
        """Move one of the link's own forwards (not a port of the kernel manager's clients)
        off a port another program took while the connection was down; whether it was one."""
        for name in ("shell_up", "replay_port", "stdin_up", "control_up"):
            if self.ports.get(name) == port:
                with socket.socket() as sock:
                    sock.bind((LOCALHOST, 0))
                    self.ports[name] = sock.getsockname()[1]
                return True
        return False

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == Event.ATTACHED:
            self.keeper_pid = _int(event.get("pid"))
            self.kernel_pid = _int(event.get("kernel"))
            code = event.get("code")
            self.kernel_running = self.kernel_pid is not None and code is None
            if not self.kernel_running and self.kernel_pid is not None:
                self._mark_gone(_int(code) or 0 if code is not None else 1)
        elif kind == Event.STARTED:
            self.kernel_pid = _int(event.get("pid"))
            self.exit_code = None
            self.kernel_running = True
            if self._kernel_done is not None:
                self._kernel_done.clear()
        elif kind == Event.EXIT:
            code = _int(event.get("code"))
            self._mark_gone(code if code is not None else 1)
        elif kind == Event.CLOSED and self.kernel_running:
            self._mark_gone(0)

    def _mark_gone(self, code: int) -> None:
        if self.kernel_running or self.exit_code is None:
            self.exit_code = code
        self.kernel_running = False
        if self.requests is not None:
            self.requests.forget()
        if self._kernel_done is not None:
            self._kernel_done.set()

    async def _wait_kernel(self, timeout: float | None) -> bool:
        assert self._kernel_done is not None
        if not self.kernel_running:
            return True
        try:
            await asyncio.wait_for(self._kernel_done.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def _connected(self, *, from_now: bool) -> None:
        """A connection is up: the relay reads through it; the supervisor watches it."""
        if self.relay is None:
            assert self._context is not None
            self.relay = IopubRelay(
                self._context,
                self.ports["iopub_port"],
                key=self.key,
                signature_scheme=self.signature_scheme,
                buffer_mb=self.settings.replay_buffer_mb,
                log=self.log,
            )
        self.relay.attach(self.ports["replay_port"], from_now=from_now)
        if self.requests is None:
            assert self._context is not None
            self.requests = RequestRelay(self._context, self.ports, log=self.log)
        self.requests.attach({name: self.ports[FORWARD_PORTS[name]] for name in REQUEST_CHANNELS})
        self.attempt, self.error = 0, ""
        self._set_state(State.CONNECTED)
        assert self.proc is not None
        self._supervisor = asyncio.create_task(self._supervise(self.proc))

    async def _attach(self) -> None:
        proc = await self._open(Mode.ATTACH)
        waiter = proc.expect({Event.ATTACHED, Event.ERROR})
        event = await self._next(proc, [waiter], self.settings.connect_timeout + 15.0)
        if event.get("event") == Event.ERROR:
            await self._end_connection()
            message = messages.wrapper_error(self.settings.where, event, proc.stderr_tail())
            if event.get("kind") == ErrorKind.NOT_FOUND:
                raise KernelGone(message)
            raise RemoteKernelError(message)

    async def _supervise(self, proc: SSHProcess) -> None:
        """Heartbeats while the connection lives; a reconnect when it dies."""
        loop = asyncio.get_running_loop()
        settings = self.settings
        while not proc.ended.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(proc.ended.wait(), settings.heartbeat_interval)
            if proc.ended.is_set():
                break
            if loop.time() - proc.last_heard > settings.silence_limit:
                self.log.warning(
                    "no word from the kernel on %s for %g s: its connection is dead",
                    settings.alias,
                    settings.silence_limit,
                )
                proc.signal(signal.SIGKILL)  # ours; a stopped ssh ends too
                break
            proc.ping()
        if self.closing:
            return
        await self._lost()

    async def _lost(self) -> None:
        """The connection dropped: detach and reconnect, or, with detach_timeout 0, give up."""
        settings = self.settings
        self._detach_relays()
        await self._end_connection(grace=0.0)
        if settings.detach_timeout == 0:
            self._give_up("its connection dropped (detach_timeout is 0)")
            return
        self.reconnects += 1
        loop = asyncio.get_running_loop()
        lost_at = loop.time()
        delay = 0.0
        while not self.closing:
            if delay and not await self._sleep(delay):
                return
            delay = min(settings.reconnect_delay_max, max(FIRST_RETRY_DELAY, delay * 2))
            if settings.detach_timeout is not None and loop.time() - lost_at > (
                settings.detach_timeout + settings.heartbeat_timeout
            ):
                self._give_up(
                    f"no connection for longer than detach_timeout ({settings.detach_timeout:g} s)"
                )
                return
            if not await self._record_exists():
                # Its record goes when its rental stops (the kernelspec writer forgets it).
                self.rental_over = True
                self.keeper_pid = None  # nothing left to end on a machine that is gone
                self._give_up("its rental stopped")
                return
            self.attempt += 1
            self._set_state(State.RECONNECTING)
            self.log.warning(messages.reconnecting(settings.alias, self.attempt, self.error))
            try:
                await self._attach()
            except KernelGone as exc:
                self._give_up(str(exc))
                return
            except LocalPortTaken as exc:
                # Taken while ssh was down: the link's own forwards move to a new port (the
                # kernel manager's hb port cannot: its clients know it, so it is tried again).
                self.error = str(exc)
                self._replace_forward_port(exc.port)
                await self._end_connection(grace=0.0)
                continue
            except (RemoteKernelError, OSError) as exc:
                self.error = str(exc)
                await self._end_connection(grace=0.0)
                continue
            self.log.warning("the kernel on %s is reconnected", settings.alias)
            await self._connected(from_now=False)
            return

    def _detach_relays(self) -> None:
        if self.relay is not None:
            self.relay.detach()
        if self.requests is not None:
            self.requests.detach()

    def _give_up(self, why: str) -> None:
        # A rental that ended takes its kernel with it: expected, not an error of the kernel.
        report = self.log.info if self.rental_over else self.log.error
        report(messages.gave_up(self.settings.alias, why))
        self.error = why
        self._mark_gone(1)
        if self.records is not None and self.wrapper:
            self.records.remove(self.wrapper)

    async def _sleep(self, delay: float) -> bool:
        """Wait ``delay`` seconds; False when the link is closing meanwhile."""
        assert self._wake is not None
        self._wake.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), delay)
        return not self.closing

    async def _record_exists(self) -> bool:
        if self.records is None or not self.wrapper:
            return True
        return await asyncio.to_thread(self.records.exists, self.wrapper)

    async def _end_connection(self, grace: float = CLOSE_GRACE) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.close_stdin()
        await proc.stop(grace)

    async def _forward_works(self, port: int) -> bool:
        """Whether a forward reaches the keeper: its ZMTP greeting arrives through the tunnel."""
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

    async def _ask_ports(self) -> dict[str, int]:
        proc = self.proc
        if proc is None:
            raise RemoteKernelError(f"{self.settings.alias} did not report free ports.")
        waiter = proc.expect({Event.PORTS})
        proc.command(Command.PORTS, str(len(FORWARD_NAMES)))
        event = await self._next(proc, [waiter], self.settings.launch_timeout)
        return dict(zip(FORWARD_NAMES, (int(p) for p in event.get("ports", [])), strict=False))

    async def _remote_free_ports(self) -> dict[str, int]:
        """Free TCP ports on the machine's loopback, from a short ssh run of the wrapper."""
        proc = SSHProcess(self._argv([]), label=f"[{self.settings.alias} ports]", log=self.log)
        config = {"folder": "", "mode": Mode.PORTS, "count": len(FORWARD_NAMES), "lease": 60}
        await proc.start(_wrapper_line() + json.dumps(config).encode() + b"\n")
        waiter = proc.expect({Event.PORTS})
        try:
            event = await self._next(proc, [waiter], self.settings.launch_timeout)
        finally:
            proc.close_stdin()
            await proc.stop(CLOSE_GRACE)
        return dict(zip(FORWARD_NAMES, (int(p) for p in event.get("ports", [])), strict=False))

    # State.

    def _set_state(self, state: str) -> None:
        self.state = state
        if self.records is None or not self.wrapper:
            return
        proc = self.proc
        changes = {
            "state": state,
            "ssh_pid": (proc.pid or 0) if proc is not None and proc.alive else 0,
            "attempt": self.attempt,
            "error": self.error,
            "since": time.time(),
            "transport": self.transport,
            "remote_ports": self.remote_ports,
            "folder": self.folder,
        }
        try:
            record = self.records.update(self.wrapper, **changes)
        except OSError as exc:
            self.log.warning("could not write the kernel's state file: %s", exc)
            return
        if record is not None:
            self.record = record


def _channel(name: str) -> str:
    """How a port's name reads in messages: ``iopub``, ``shell (to the machine)``."""
    if name.endswith("_up"):
        return f"{name[: -len('_up')]} (to the machine)"
    return name.removesuffix("_port")


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


async def say_end(
    settings: LinkSettings,
    folder: str,
    wrapper: str,
    log: logging.Logger | logging.LoggerAdapter[Any],
) -> None:
    """A short connection that tells a keeper to end its kernel and folder (done if gone)."""
    argv = build_ssh_argv(
        settings.alias,
        python=settings.python,
        forwards=[],
        config_file=settings.config_file or None,
        known_hosts_file=settings.known_hosts_file or None,
        connect_timeout=settings.connect_timeout,
        ssh_executable=settings.ssh_executable,
    )
    proc = SSHProcess(argv, label=f"[{settings.alias} end]", log=log)
    config = {"mode": Mode.END, "folder": folder, "wrapper": wrapper, "lease": 60}
    await proc.start(_wrapper_line() + json.dumps(config).encode() + b"\n")
    waiter = proc.expect({Event.CLOSED, Event.ERROR})
    try:
        event = await asyncio.wait_for(waiter, settings.connect_timeout + 15.0)
    except SSHEnded:
        await proc.wait(1.0)
        raise RemoteKernelError(
            messages.ssh_failure(settings.where, proc.returncode, proc.stderr_tail())
        ) from None
    finally:
        proc.close_stdin()
        await proc.stop(CLOSE_GRACE)
    if event.get("event") == Event.ERROR:
        raise RemoteKernelError(messages.wrapper_error(settings.where, event, proc.stderr_tail()))


async def end_detached_kernel(
    record: KernelRecord,
    *,
    records: KernelRecords | None = None,
    log: logging.Logger | logging.LoggerAdapter[Any] | None = None,
) -> None:
    """End a detached kernel on its machine and forget it (the "Shut down" of a listed one)."""
    settings = LinkSettings(
        alias=record.ssh_alias,
        config_file=record.ssh_config_file,
        known_hosts_file=record.known_hosts_file,
        python=record.python,
        ssh_executable=record.ssh_executable,
        connect_timeout=15,
        keepalive_interval=10,
        keepalive_count_max=2,
        heartbeat_interval=5.0,
        heartbeat_timeout=60.0,
        launch_timeout=60.0,
        install_timeout=60.0,
        detach_timeout=None,
        replay_buffer_mb=1,
        reconnect_delay_max=1,
        runtime_dir="/",
    )
    await say_end(settings, record.folder, record.wrapper, log or logging.getLogger(__name__))
    if records is not None:
        await asyncio.to_thread(records.remove, record.wrapper)


async def shut_down_detached(wrapper: str, state_dir: Path | str | None = None) -> None:
    """The "Shut down" of a listed detached kernel, by its wrapper id (LookupError: not one)."""
    records = KernelRecords(state_dir or default_state_dir())
    record = await asyncio.to_thread(records.read, wrapper)
    if record is None or not record.detached:
        raise LookupError(
            f"no detached kernel {wrapper!r}: it ended, or a Jupyter drives it (shut it down there)"
        )
    await end_detached_kernel(record, records=records)
