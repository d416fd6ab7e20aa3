"""The gpuoutlet-ssh provisioner against a real OpenSSH sshd: lifecycle, failures, cleanup."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from queue import Empty
from typing import Any

import pytest
from helpers.sshd import SSHD, process_alive, process_cmdlines, sshd_unavailable_reason, start_sshd
from jupyter_client.connect import LocalPortCache
from jupyter_client.ioloop import AsyncIOLoopKernelManager
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from traitlets.config import Config

from gpuoutlet_jupyter.api import Rental
from gpuoutlet_jupyter.kernel.link import RemoteLink, end_detached_kernel, shut_down_detached
from gpuoutlet_jupyter.kernel.provisioner import (
    PORT_TRIES,
    GpuOutletSSHProvisioner,
    RemoteKernelError,
    detach_all,
)
from gpuoutlet_jupyter.kernel.records import (
    KernelRecord,
    KernelRecords,
    detached_kernels,
    kernel_states,
)
from gpuoutlet_jupyter.kernel.session import SSHProcess
from gpuoutlet_jupyter.kernel.specs import KERNEL_FILE, KernelSpecWriter
from gpuoutlet_jupyter.sandbox.testing import SSHKeypair
from gpuoutlet_jupyter.ssh import SSHConfigWriter, SSHEntry

_REASON = sshd_unavailable_reason()
pytestmark = pytest.mark.skipif(_REASON is not None, reason=_REASON or "")

# Short heartbeat lease and keep-alives so the SIGSTOP tests are quick (the defaults: 5 s / 60 s,
# a dead connection noticed in 30 s).
FAST = {
    "heartbeat_interval": 0.5,
    "heartbeat_timeout": 3.0,
    "keepalive_interval": 1,
    "keepalive_count_max": 2,
    "connect_timeout": 5,
    "launch_timeout": 30.0,
}
START_TIMEOUT = 60.0
REPLY_TIMEOUT = 30.0


def make_rental(rental_id: str, port: int, **fields: Any) -> Rental:
    return Rental.model_validate(
        {
            "id": rental_id,
            "status": "running",
            "host": "127.0.0.1",
            "port": port,
            "pricePerHourCents": 65,
            "startedAt": "2026-01-01T00:00:00Z",
            "familyId": "rtx-4090",
            "gpuCount": 1,
            **fields,
        }
    )


@dataclass
class Remote:
    """One sshd, the SSH writer of a temp ~/.ssh, and a folder of kernelspecs."""

    sshd: SSHD
    ssh: SSHConfigWriter
    entry: SSHEntry
    specs: KernelSpecWriter
    ksm: KernelSpecManager
    name: str
    state_dir: Path

    def variant(self, name: str, *, interrupt_mode: str | None = None, **config: Any) -> str:
        """A copy of the main kernelspec with other provisioner config (or interrupt mode)."""
        spec = json.loads((self.specs.spec_dir("r-kernel") / KERNEL_FILE).read_text())
        spec["metadata"]["kernel_provisioner"]["config"].update(config)
        if interrupt_mode is not None:
            spec["interrupt_mode"] = interrupt_mode
        folder = self.specs.kernels_dir / name
        folder.mkdir(exist_ok=True)
        (folder / KERNEL_FILE).write_text(json.dumps(spec))
        return name

    def install(self, rental_id: str, entry: SSHEntry, **config: Any) -> str:
        name = self.specs.install(make_rental(rental_id, entry.port), entry)
        if config:
            return self.variant(name, **config)
        return name


@pytest.fixture(scope="module")
def sshd_server(
    tmp_path_factory: pytest.TempPathFactory, ssh_keypair: SSHKeypair
) -> Iterator[SSHD]:
    server = start_sshd(tmp_path_factory.mktemp("sshd"), ssh_keypair.public_key)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def remote(
    tmp_path_factory: pytest.TempPathFactory, sshd_server: SSHD, ssh_keypair: SSHKeypair
) -> Iterator[Remote]:
    base = tmp_path_factory.mktemp("remote")
    ssh = SSHConfigWriter(base / "ssh", identity_file=ssh_keypair.private_key)
    entry = ssh.write("r-kernel", "127.0.0.1", sshd_server.port)
    # The sshd runs commands as root with root's PATH: name this interpreter (it has ipykernel).
    specs = KernelSpecWriter(
        base / "kernels", python=sys.executable, provisioner_config=FAST, state_dir=base / "state"
    )
    name = specs.install(make_rental("r-kernel", sshd_server.port), entry)
    ksm = KernelSpecManager(kernel_dirs=[str(specs.kernels_dir)])
    yield Remote(sshd_server, ssh, entry, specs, ksm, name, base / "state")
    # A test that failed half-way may have left a kernel detached: end it (no orphans).
    records = KernelRecords(base / "state")
    for record in records.all():
        with contextlib.suppress(Exception):
            asyncio.run(asyncio.wait_for(end_detached_kernel(record, records=records), 30))


async def wait_for(predicate: Callable[[], bool | Awaitable[bool]], timeout: float) -> bool:
    """Poll ``predicate`` (sync or async) until it is true; False if ``timeout`` passes first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result:
            return True
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.05)


async def dead(km: AsyncKernelManager) -> bool:
    return not await km.is_alive()


@asynccontextmanager
async def kernel(
    remote: Remote,
    name: str | None = None,
    km_class: type[AsyncKernelManager] = AsyncKernelManager,
    **kwargs: Any,
) -> AsyncIterator[tuple[AsyncKernelManager, Any]]:
    km = km_class(kernel_name=name or remote.name, kernel_spec_manager=remote.ksm, **kwargs)
    await asyncio.wait_for(km.start_kernel(), START_TIMEOUT)
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=REPLY_TIMEOUT)
        yield km, kc
    finally:
        kc.stop_channels()
        await asyncio.wait_for(km.shutdown_kernel(now=True), START_TIMEOUT)


async def run_cell(
    kc: Any, code: str, timeout: float = REPLY_TIMEOUT
) -> tuple[dict[str, Any], str, str | None]:
    """Execute ``code``; return the reply, the stdout text and the execute_result (text/plain)."""
    msg_id = kc.execute(code)
    stdout: list[str] = []
    result = None
    while True:
        msg = await kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream" and content["name"] == "stdout":
            stdout.append(content["text"])
        elif kind == "execute_result":
            result = content["data"].get("text/plain")
        elif kind == "status" and content["execution_state"] == "idle":
            break
    return await shell_reply(kc, msg_id, timeout), "".join(stdout), result


async def shell_reply(kc: Any, msg_id: str, timeout: float = REPLY_TIMEOUT) -> dict[str, Any]:
    while True:
        reply: dict[str, Any] = await kc.get_shell_msg(timeout=timeout)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply


async def wait_for_output(kc: Any, msg_id: str, text: str) -> None:
    while True:
        msg = await kc.get_iopub_msg(timeout=REPLY_TIMEOUT)
        if (
            msg["parent_header"].get("msg_id") == msg_id
            and msg["msg_type"] == "stream"
            and text in msg["content"]["text"]
        ):
            return


# Small synchronous file checks, kept out of the async tests' bodies (they never block long).
def exists(path: Path | str) -> bool:
    return os.path.lexists(path)


def mode_of(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def read_bytes(path: Path | str) -> bytes:
    return Path(path).read_bytes()


async def interrupt_until_replied(km: AsyncKernelManager, kc: Any, msg_id: str) -> dict[str, Any]:
    """Interrupt, and again if no reply comes: ipykernel loses a SIGINT that lands while the
    cell's own print is still being flushed (local kernels too, about 1 in 15 back to back)."""
    for _ in range(10):
        await km.interrupt_kernel()
        try:
            return await shell_reply(kc, msg_id, timeout=3)
        except Empty:
            continue
    raise AssertionError("the kernel was not interrupted by 10 interrupts")


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


# 1. start, kernel_info, execute; the connection key stays out of argv, environ, logs.


@pytest.mark.asyncio
async def test_start_kernel_info_execute_and_the_key_stays_private(
    remote: Remote, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with kernel(remote) as (km, kc):
        prov = km.provisioner
        info = await kc.kernel_info(reply=True, timeout=REPLY_TIMEOUT)
        assert info["content"]["status"] == "ok"
        assert info["content"]["language_info"]["name"] == "python"

        reply, out, result = await run_cell(
            kc,
            "import os\nprint(os.getpid(), os.getppid(), os.getpgid(0), "
            "os.environ['GPUOUTLET_RENTAL_ID'])\n6 * 7",
        )
        assert reply["content"]["status"] == "ok" and result == "42"
        pid, ppid, pgid, rental_id = out.split()
        # ipykernel runs under the wrapper, as the leader of its own process group.
        assert int(pid) == prov.remote_pid and int(ppid) == prov.wrapper_pid
        assert int(pgid) == prov.remote_pid and rental_id == "r-kernel"
        assert prov.transport == "ipc"

        folder = Path(prov.remote_folder)
        assert mode_of(folder) == 0o700
        remote_file = folder / "kernel.json"
        assert mode_of(remote_file) == 0o600
        key = km.session.key
        assert key and json.loads(read_bytes(remote_file))["key"].encode() == key
        assert mode_of(km.connection_file) == 0o600

        for found_pid, cmdline in process_cmdlines().items():
            assert key not in cmdline, f"the connection key is in the argv of pid {found_pid}"
        for found_pid in (prov.ssh_pid, prov.wrapper_pid, prov.remote_pid):
            assert key not in read_bytes(f"/proc/{found_pid}/environ")
        ssh_argv = read_bytes(f"/proc/{prov.ssh_pid}/cmdline").split(b"\0")
        assert b"BatchMode=yes" in ssh_argv and b"ControlPath=none" in ssh_argv
        assert b"ExitOnForwardFailure=yes" in ssh_argv and b"ForwardAgent=no" in ssh_argv
    assert key.decode() not in caplog.text


@pytest.mark.asyncio
async def test_the_pod_gets_only_the_environment_its_kernel_needs(
    remote: Remote, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The local notebook's path (JPY_SESSION_NAME), the server's token and the like stay here."""
    local = {
        "JPY_SESSION_NAME": "/home/alice/private/secret-project.ipynb",
        "JPY_PARENT_PID": "12345",
        "GPUOUTLET_SERVER_TOKEN": "kernel-token-that-stays-local",
        "GPUOUTLET_SERVER_URL": "http://127.0.0.1:8888/",
    }
    for name, value in local.items():
        monkeypatch.setenv(name, value)
    async with kernel(remote) as (km, kc):
        reply, out, _ = await run_cell(
            kc,
            "import json, os\nprint(json.dumps({k: v for k, v in os.environ.items() "
            "if k.startswith(('JPY_', 'GPUOUTLET_'))}))",
        )
        wrapper_pid = km.provisioner.wrapper_pid
    assert reply["content"]["status"] == "ok"
    assert json.loads(out) == {
        "GPUOUTLET_RENTAL_ID": "r-kernel",
        "GPUOUTLET_SSH_ALIAS": "gpuoutlet-r-kernel",
        # The wrapper's own, for ipykernel's parent poller on the machine.
        "JPY_PARENT_PID": str(wrapper_pid),
    }
    for value in local.values():
        assert value not in out


# 2. interrupt a long time.sleep, by signal and by message.


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", ["signal", "message"])
async def test_interrupt_a_long_sleep(remote: Remote, mode: str) -> None:
    name = remote.name if mode == "signal" else remote.variant("gpuoutlet-msg", interrupt_mode=mode)
    async with kernel(remote, name) as (km, kc):
        assert km.kernel_spec.interrupt_mode == mode
        # stop_on_error=False: else ipykernel aborts a request that arrives right after the
        # KeyboardInterrupt reply (its abort window races with the client, local kernels too).
        msg_id = kc.execute(
            "import time\nprint('sleeping', flush=True)\ntime.sleep(300)", stop_on_error=False
        )
        await wait_for_output(kc, msg_id, "sleeping")
        reply = await interrupt_until_replied(km, kc, msg_id)
        assert reply["content"]["status"] == "error"
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        reply, _, result = await run_cell(kc, "'still here'")
        assert result == "'still here'"


# 3. restart keeps the local ports; the old remote process is gone.


@pytest.mark.asyncio
async def test_restart_keeps_ports_and_replaces_the_remote_process(remote: Remote) -> None:
    async with kernel(remote) as (km, kc):
        prov = km.provisioner
        ports, ssh_pid = prov.local_ports, prov.ssh_pid
        for now in (False, True):
            old_pid = prov.remote_pid
            await asyncio.wait_for(km.restart_kernel(now=now), START_TIMEOUT)
            assert prov.local_ports == ports
            assert {name: getattr(km, name) for name in ports} == ports
            assert await wait_for(lambda pid=old_pid: not process_alive(pid), 15)
            assert prov.remote_pid != old_pid and process_alive(prov.remote_pid)
            assert prov.ssh_pid == ssh_pid  # the same ssh carries the new kernel
            await kc.wait_for_ready(timeout=REPLY_TIMEOUT)
            _, _, result = await run_cell(kc, "1 + 1")
            assert result == "2"


# 4. shutdown: no remote process, no folder, ssh gone, ports returned.


@pytest.mark.asyncio
async def test_shutdown_leaves_nothing_behind(remote: Remote) -> None:
    km = AsyncKernelManager(kernel_name=remote.name, kernel_spec_manager=remote.ksm)
    await asyncio.wait_for(km.start_kernel(), START_TIMEOUT)
    prov = km.provisioner
    pids = (prov.remote_pid, prov.wrapper_pid, prov.ssh_pid)
    folder, ports = Path(prov.remote_folder), prov.local_ports
    assert all(process_alive(pid) for pid in pids) and exists(folder)
    assert set(ports.values()) <= LocalPortCache.instance().currently_used_ports

    await asyncio.wait_for(km.shutdown_kernel(), START_TIMEOUT)
    assert await wait_for(lambda: not any(process_alive(pid) for pid in pids), 10)
    assert not exists(folder)
    assert prov.ssh_pid is None and not prov.has_process
    assert not set(ports.values()) & LocalPortCache.instance().currently_used_ports
    assert all(port_free(port) for port in ports.values())


# 5. detach_timeout 0, SIGKILL the local ssh: the remote kernel goes, and poll() says so.


@pytest.mark.asyncio
async def test_killed_ssh_takes_the_remote_kernel_with_it(remote: Remote) -> None:
    name = remote.variant("gpuoutlet-nodetach", detach_timeout=0)
    async with kernel(remote, name) as (km, _kc):
        prov = km.provisioner
        kernel_pid, folder = prov.remote_pid, Path(prov.remote_folder)
        os.kill(prov.ssh_pid, signal.SIGKILL)
        assert await wait_for(lambda: not process_alive(kernel_pid), 15)
        assert await wait_for(lambda: not exists(folder), 10)
        assert await prov.poll() is not None
        assert not await km.is_alive()


# 6. detach_timeout 0, SIGSTOP the local ssh: the heartbeat lease reaps the remote kernel.


@pytest.mark.asyncio
async def test_stopped_ssh_misses_heartbeats_and_the_kernel_is_reaped(remote: Remote) -> None:
    name = remote.variant("gpuoutlet-nodetach", detach_timeout=0)
    async with kernel(remote, name) as (km, _kc):
        prov = km.provisioner
        ssh_pid, kernel_pid = prov.ssh_pid, prov.remote_pid
        os.kill(ssh_pid, signal.SIGSTOP)
        try:
            # The lease is 3 s here: nothing else would end the kernel while ssh is stopped.
            assert await wait_for(lambda: not process_alive(kernel_pid), 20)
            # The interrupt does not block the caller (ssh takes no input while stopped).
            await asyncio.wait_for(prov.send_signal(signal.SIGINT), 5)
        finally:
            with contextlib.suppress(ProcessLookupError):  # killed as dead meanwhile
                os.kill(ssh_pid, signal.SIGCONT)
        assert await wait_for(lambda: dead(km), 15)


# 7. kill the remote wrapper: the kernel exits; the next start sweeps its folder.


@pytest.mark.asyncio
async def test_killed_wrapper_ends_the_kernel(remote: Remote) -> None:
    async with kernel(remote) as (km, kc):
        prov = km.provisioner
        kernel_pid, folder = prov.remote_pid, Path(prov.remote_folder)
        os.kill(prov.wrapper_pid, signal.SIGKILL)
        assert await wait_for(lambda: not process_alive(kernel_pid), 15)
        assert await wait_for(lambda: dead(km), 10)
        await asyncio.wait_for(km.restart_kernel(now=True), START_TIMEOUT)
        assert not exists(folder)  # swept by the new wrapper: it held the key file
        await kc.wait_for_ready(timeout=REPLY_TIMEOUT)
        _, _, result = await run_cell(kc, "3 * 3")
        assert result == "9"


# 8. the kernel exits by itself: the restarter notices and restarts it.


@pytest.mark.asyncio
async def test_the_restarter_sees_a_kernel_that_exited(remote: Remote) -> None:
    config = Config({"KernelRestarter": {"time_to_dead": 0.2}})
    async with kernel(remote, km_class=AsyncIOLoopKernelManager, config=config) as (km, kc):
        prov = km.provisioner
        restarted = asyncio.Event()
        km.add_restart_callback(restarted.set, "restart")
        old_pid, ports = prov.remote_pid, prov.local_ports
        kc.execute("import os; os._exit(3)")
        await asyncio.wait_for(restarted.wait(), 20)
        # has_process: the restart finished (the new kernel is up, not only started).
        assert await wait_for(
            lambda: prov.has_process and prov.remote_pid not in (None, old_pid), 30
        )
        assert process_alive(prov.remote_pid)
        assert prov.local_ports == ports
        await kc.wait_for_ready(timeout=REPLY_TIMEOUT)
        _, _, result = await run_cell(kc, "'back'")
        assert result == "'back'"


# 9. a chosen local port taken before the launch binds it: new ports, and the launch succeeds.


def squat(port: int) -> socket.socket:
    """Take ``port`` on 127.0.0.1 as another program would (listening)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock


CHANNEL_PORTS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")


def connection_file_ports(km: AsyncKernelManager) -> dict[str, int]:
    info = json.loads(Path(km.connection_file).read_text())
    return {name: info[name] for name in CHANNEL_PORTS}


async def started_on_other_ports(
    remote: Remote, km: AsyncKernelManager, taken: list[socket.socket]
) -> None:
    """The kernel runs, on ports without the one taken, and everyone knows the same ports."""
    await asyncio.wait_for(km.start_kernel(), START_TIMEOUT)
    prov = km.provisioner
    assert len(taken) == 1, "the port was never taken"
    assert taken[0].getsockname()[1] not in prov._ports.values()
    channels = {name: prov.local_ports[name] for name in CHANNEL_PORTS}
    assert connection_file_ports(km) == channels
    assert {name: prov.connection_info[name] for name in CHANNEL_PORTS} == channels
    assert {name: km.get_connection_info()[name] for name in CHANNEL_PORTS} == channels
    record = KernelRecords(remote.state_dir).read(prov.wrapper_id)
    assert record is not None and record.ssh_pid == prov.ssh_pid
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=REPLY_TIMEOUT)
        _, _, result = await run_cell(kc, "'on new ports'")
        assert result == "'on new ports'"
    finally:
        kc.stop_channels()


@pytest.mark.asyncio
@pytest.mark.parametrize("name", ["iopub_port", "shell_port", "hb_port", "shell_up"])
async def test_a_port_taken_after_it_was_chosen_means_new_ports(
    remote: Remote, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """The race of the flaky three-kernels test: pre_launch chose the ports, another program
    took one before the relays (iopub, shell) or ssh (hb, the forwards) bound it."""
    taken: list[socket.socket] = []
    real = GpuOutletSSHProvisioner.launch_kernel

    async def take_one_first(self: GpuOutletSSHProvisioner, cmd: list[str], **kw: Any) -> Any:
        if not taken:
            taken.append(squat(self._ports[name]))
        return await real(self, cmd, **kw)

    monkeypatch.setattr(GpuOutletSSHProvisioner, "launch_kernel", take_one_first)
    km = AsyncKernelManager(kernel_name=remote.name, kernel_spec_manager=remote.ksm)
    try:
        await started_on_other_ports(remote, km, taken)
    finally:
        for sock in taken:
            sock.close()
        await km.shutdown_kernel(now=True)
    assert kernel_states(remote.state_dir) == []  # the failed try left no record


@pytest.mark.asyncio
async def test_a_port_taken_between_the_check_and_ssh_means_new_ports(
    remote: Remote, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ssh itself cannot listen (ExitOnForwardFailure): that too is a port race, not a failure."""
    taken: list[socket.socket] = []
    real = SSHProcess.start

    async def take_a_forward_first(self: SSHProcess, first_input: bytes) -> None:
        if not taken and "-L" in self.argv:
            spec = self.argv[self.argv.index("-L") + 1]  # 127.0.0.1:PORT:...
            taken.append(squat(int(spec.split(":")[1])))
        await real(self, first_input)

    monkeypatch.setattr(SSHProcess, "start", take_a_forward_first)
    km = AsyncKernelManager(kernel_name=remote.name, kernel_spec_manager=remote.ksm)
    try:
        await started_on_other_ports(remote, km, taken)
    finally:
        for sock in taken:
            sock.close()
        await km.shutdown_kernel(now=True)


@pytest.mark.asyncio
async def test_ports_taken_on_every_try_fail_clearly(
    remote: Remote, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken: list[socket.socket] = []
    real = RemoteLink._check_local_ports

    def always_taken(self: RemoteLink) -> None:
        taken.append(squat(self.ports["control_up"]))
        real(self)

    monkeypatch.setattr(RemoteLink, "_check_local_ports", always_taken)
    km = AsyncKernelManager(kernel_name=remote.name, kernel_spec_manager=remote.ksm)
    try:
        with pytest.raises(RemoteKernelError, match=r"local port \d+ \(control .*already in use"):
            await asyncio.wait_for(km.start_kernel(), START_TIMEOUT)
        assert len(taken) == PORT_TRIES and km.provisioner.ssh_pid is None
        assert kernel_states(remote.state_dir) == []
    finally:
        for sock in taken:
            sock.close()
        await km.shutdown_kernel(now=True)


# 10. an unknown or changed host key fails fast: no prompt, no hang.


@pytest.mark.asyncio
@pytest.mark.parametrize("case", ["changed", "unknown"])
async def test_host_key_problems_fail_fast(
    remote: Remote, ssh_keypair: SSHKeypair, tmp_path: Path, case: str
) -> None:
    port = remote.sshd.port
    if case == "changed":
        entry = remote.ssh.write("r-changed", "127.0.0.1", port)
        # Another ed25519 key recorded for this host:port, as after a machine swap or an attack.
        other_key = " ".join(ssh_keypair.public_key.split()[:2])
        entry.known_hosts_file.write_text(f"[127.0.0.1]:{port} {other_key}\n")
        name = remote.install("r-changed", entry)
        expected = "host key of gpuoutlet-r-changed could not be verified"
    else:
        known_hosts = tmp_path / "known_hosts"
        known_hosts.touch()
        config = tmp_path / "config"
        config.write_text(
            f"Host strict-host\n  HostName 127.0.0.1\n  Port {port}\n  User root\n"
            f"  IdentityFile {ssh_keypair.private_key}\n  IdentitiesOnly yes\n"
            f"  StrictHostKeyChecking yes\n  UserKnownHostsFile {known_hosts}\n"
        )
        name = remote.variant(
            "gpuoutlet-strict",
            ssh_alias="strict-host",
            ssh_config_file=str(config),
            known_hosts_file=str(known_hosts),
        )
        expected = "host key of strict-host could not be verified"
    km = AsyncKernelManager(kernel_name=name, kernel_spec_manager=remote.ksm)
    with pytest.raises(RemoteKernelError, match=expected) as failure:
        await asyncio.wait_for(km.start_kernel(), 15)
    assert "Host key verification failed" in str(failure.value)
    assert km.provisioner.ssh_pid is None
    await km.shutdown_kernel(now=True)


# 11. a missing ipykernel or a bad python: the reason reaches the user.


@pytest.fixture(scope="module")
def python_without_ipykernel(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("venv") / "bare"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=120
    )
    python = folder / "bin" / "python"
    probe = subprocess.run(
        [str(python), "-c", "import ipykernel"], capture_output=True, check=False
    )
    if probe.returncode == 0:
        pytest.skip("the base interpreter has ipykernel: cannot make one without it")
    return str(python)


@pytest.mark.asyncio
@pytest.mark.parametrize("case", ["no-ipykernel", "no-pip", "bad-python", "crashing-kernel"])
async def test_launch_failures_explain_themselves(
    remote: Remote, python_without_ipykernel: str, case: str
) -> None:
    if case == "no-ipykernel":
        name = remote.variant("gpuoutlet-noipk", python=python_without_ipykernel)
        expected = [
            f"ipykernel is not installed for {python_without_ipykernel}",
            "-m pip install --user ipykernel",
            "install_ipykernel",
        ]
    elif case == "no-pip":
        name = remote.variant(
            "gpuoutlet-nopip", python=python_without_ipykernel, install_ipykernel=True
        )
        expected = ["pip is not available", "python3-pip"]
    elif case == "bad-python":
        name = remote.variant("gpuoutlet-badpy", python="/nonexistent/python3")
        # The remote shell's own complaint comes along.
        expected = ["'/nonexistent/python3' could not run on gpuoutlet-r-kernel", "ssh said:\n"]
    else:
        # ipykernel starts and dies at once: its own traceback is the message.
        name = remote.variant("gpuoutlet-crash")
        spec_file = remote.specs.kernels_dir / name / KERNEL_FILE
        spec = json.loads(spec_file.read_text())
        spec["argv"] = [sys.executable, "-c", "import sys; sys.exit('kernel boom 42')"]
        spec_file.write_text(json.dumps(spec))
        expected = ["exited with status 1 before it was ready", "kernel boom 42"]
    km = AsyncKernelManager(kernel_name=name, kernel_spec_manager=remote.ksm)
    with pytest.raises(RemoteKernelError) as failure:
        await asyncio.wait_for(km.start_kernel(), 30)
    for text in expected:
        assert text in str(failure.value)
    await km.shutdown_kernel(now=True)


# 13. 50 MB of output does not stall.


@pytest.mark.asyncio
async def test_fifty_megabytes_of_output_arrive(remote: Remote) -> None:
    async with kernel(remote) as (_km, kc):
        code = (
            "import sys\nline = 'x' * 999_999 + '\\n'\n"
            "for _ in range(50):\n    sys.stdout.write(line)\nsys.stdout.flush()"
        )
        reply, out, _ = await run_cell(kc, code, timeout=120)
        assert reply["content"]["status"] == "ok"
        assert len(out) == 50_000_000


# TCP fallback: a server that refuses Unix socket forwarding.


@pytest.mark.asyncio
async def test_tcp_fallback_when_streamlocal_forwarding_is_refused(
    remote: Remote, ssh_keypair: SSHKeypair, tmp_path: Path
) -> None:
    strict = start_sshd(
        tmp_path / "sshd", ssh_keypair.public_key, options={"AllowStreamLocalForwarding": "no"}
    )
    try:
        entry = remote.ssh.write("r-tcponly", "127.0.0.1", strict.port)
        name = remote.install("r-tcponly", entry)
        for _ in range(2):  # the second kernel goes straight to TCP
            async with kernel(remote, name) as (km, kc):
                assert km.provisioner.transport == "tcp"
                _, _, result = await run_cell(kc, "'over tcp'")
                assert result == "'over tcp'"
                kernel_pid = km.provisioner.remote_pid
            assert await wait_for(lambda pid=kernel_pid: not process_alive(pid), 10)
    finally:
        strict.stop()


# Detached kernels: dropped connections, a sleeping laptop, a Jupyter restart (issue 17).

# Its request stays unanswered for 20 s, so a reconnect sends it again: it must run once.
COUNT_CELL = (
    "import time\nruns = globals().get('runs', 0) + 1\n"
    "for i in range(20):\n    print(f'line {i}', flush=True)\n    time.sleep(1)"
)
COUNTED = "".join(f"line {i}\n" for i in range(20))


async def collect(kc: Any, msg_id: str, on_line: Callable[[int], Awaitable[None]]) -> str:
    """The cell's stdout until it is idle; ``on_line(n)`` after each of its first lines."""
    text = ""
    while True:
        msg = await kc.get_iopub_msg(timeout=REPLY_TIMEOUT)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
            text += msg["content"]["text"]
            await on_line(text.count("\n"))
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return text


def states(remote: Remote) -> list[str]:
    return [f"{r.state}:{r.attempt}" for r in kernel_states(remote.state_dir)]


@pytest.mark.asyncio
async def test_killed_ssh_reconnects_and_the_running_cell_goes_on(remote: Remote) -> None:
    async with kernel(remote) as (km, kc):
        prov = km.provisioner
        kernel_pid, ports, info = prov.remote_pid, prov.local_ports, km.get_connection_info()
        await run_cell(kc, "x = 42")
        seen: list[str] = []

        async def drop_after_three(lines: int) -> None:
            if lines == 3 and not seen:
                # kill -9 the ssh, and keep the server from answering for 4 s: the lines of
                # those seconds come from the keeper's buffer.
                os.kill(prov.ssh_pid, signal.SIGKILL)
                os.kill(remote.sshd.pid, signal.SIGSTOP)
                try:
                    assert await wait_for(lambda: "reconnecting:1" in states(remote), 10)
                    await asyncio.sleep(4)
                    seen.extend(states(remote))
                finally:
                    os.kill(remote.sshd.pid, signal.SIGCONT)

        msg_id = kc.execute(COUNT_CELL)
        text = await collect(kc, msg_id, drop_after_three)
        assert text == COUNTED  # all 20, in order, none twice
        assert (await shell_reply(kc, msg_id))["content"]["status"] == "ok"
        assert seen and all(state.startswith("reconnecting") for state in seen)
        assert states(remote) == ["connected:0"]
        _, _, result = await run_cell(kc, "x, runs")
        assert result == "(42, 1)"
        # The same kernel, behind the same local ports: the client never had to know.
        assert prov.remote_pid == kernel_pid and prov.local_ports == ports
        assert km.get_connection_info() == info and prov.connection_state["state"] == "connected"


@pytest.mark.asyncio
async def test_a_stopped_ssh_is_replaced_and_nothing_is_lost(remote: Remote) -> None:
    """A sleeping laptop: ssh stopped for longer than a dead connection takes to notice
    (3 s here; 30 s by default: keep-alives of 10 s, 2 missed), then continued."""
    async with kernel(remote) as (km, kc):
        prov = km.provisioner
        kernel_pid = prov.remote_pid
        await run_cell(kc, "x = 'kept'")
        stopped: list[int] = []
        sent: list[str] = []

        async def stop_after_two(lines: int) -> None:
            if lines == 2 and not stopped:
                stopped.append(prov.ssh_pid)
                os.kill(stopped[0], signal.SIGSTOP)
                # Written into the stopped ssh, and lost with it: sent again, run once.
                sent.append(kc.execute("later = globals().get('later', 0) + 1"))
                await asyncio.sleep(10)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(stopped[0], signal.SIGCONT)

        msg_id = kc.execute(COUNT_CELL)
        text = await collect(kc, msg_id, stop_after_two)
        assert text == COUNTED
        assert (await shell_reply(kc, msg_id))["content"]["status"] == "ok"
        assert prov.ssh_pid != stopped[0] and not process_alive(stopped[0])
        assert (await shell_reply(kc, sent[0]))["content"]["status"] == "ok"
        assert prov.remote_pid == kernel_pid
        _, _, result = await run_cell(kc, "x, runs, later")
        assert result == "('kept', 1, 1)"


ADOPT_SCRIPT = """
import asyncio, json, os, signal, sys
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from gpuoutlet_jupyter.kernel.provisioner import detach_all

async def main(kernels, name, how):
    km = AsyncKernelManager(kernel_name=name, kernel_spec_manager=KernelSpecManager(kernel_dirs=[kernels]))
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    await kc.wait_for_ready(timeout=30)
    reply = await kc.execute_interactive("x = 'from before'", timeout=30)
    assert reply["content"]["status"] == "ok", reply
    prov = km.provisioner
    print(json.dumps({"pid": prov.remote_pid, "wrapper": prov.wrapper_id, "folder": prov.remote_folder}), flush=True)
    if how == "killed":
        os.kill(os.getpid(), signal.SIGKILL)  # a crash: nothing is shut down
    kc.stop_channels()
    assert await detach_all() == 1  # what the server extension does when Jupyter stops
    await km.shutdown_kernel()  # then Jupyter shuts its kernels down

asyncio.run(main(*sys.argv[1:]))
"""


@pytest.mark.asyncio
@pytest.mark.parametrize("how", ["stopped", "killed"])
async def test_a_new_jupyter_adopts_the_detached_kernel(remote: Remote, how: str) -> None:
    old = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        ADOPT_SCRIPT,
        str(remote.specs.kernels_dir),
        remote.name,
        how,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(old.communicate(), START_TIMEOUT)
    before = json.loads(out.splitlines()[0])
    assert process_alive(before["pid"])
    listed = detached_kernels(remote.state_dir)
    assert [r.wrapper for r in listed["r-kernel"]] == [before["wrapper"]]
    assert mode_of(remote.state_dir / "kernels" / f"{before['wrapper']}.json") == 0o600

    async with kernel(remote) as (km, kc):
        prov = km.provisioner
        assert prov.remote_pid == before["pid"] and prov.wrapper_id == before["wrapper"]
        _, _, result = await run_cell(kc, "x")
        assert result == "'from before'"
        assert detached_kernels(remote.state_dir) == {}
    # A shut down adopted kernel ends like any other.
    assert await wait_for(lambda: not process_alive(before["pid"]), 10)
    assert not exists(before["folder"]) and kernel_states(remote.state_dir) == []


async def detach_in_process(remote: Remote, name: str) -> tuple[int, str, KernelRecord]:
    """Start a kernel and leave it detached as a stopping Jupyter does."""
    km = AsyncKernelManager(kernel_name=name, kernel_spec_manager=remote.ksm)
    await asyncio.wait_for(km.start_kernel(), START_TIMEOUT)
    prov = km.provisioner
    pid, folder, wrapper = prov.remote_pid, prov.remote_folder, prov.wrapper_id
    assert await detach_all() == 1
    await asyncio.wait_for(km.shutdown_kernel(), START_TIMEOUT)
    assert process_alive(pid) and exists(folder)
    record = KernelRecords(remote.state_dir).read(wrapper)
    assert record is not None and record.detached
    return pid, folder, record


@pytest.mark.asyncio
async def test_detach_timeout_runs_out_and_nothing_is_left(remote: Remote) -> None:
    name = remote.variant("gpuoutlet-detach2", detach_timeout=2)
    pid, folder, _ = await detach_in_process(remote, name)
    assert await wait_for(lambda: not process_alive(pid), 15)
    assert await wait_for(lambda: not exists(folder), 5)
    assert not [p for p, cmd in process_cmdlines().items() if folder.encode() in cmd]
    assert await wait_for(lambda: detached_kernels(remote.state_dir) == {}, 5)


@pytest.mark.asyncio
async def test_shut_down_ends_a_detached_kernel(remote: Remote) -> None:
    pid, folder, record = await detach_in_process(remote, remote.name)
    await asyncio.wait_for(shut_down_detached(record.wrapper, remote.state_dir), 30)
    assert await wait_for(lambda: not process_alive(pid), 10)
    assert not exists(folder) and detached_kernels(remote.state_dir) == {}


@pytest.mark.asyncio
async def test_a_stopped_rental_ends_the_reconnects(remote: Remote) -> None:
    async with kernel(remote) as (km, _kc):
        prov = km.provisioner
        os.kill(remote.sshd.pid, signal.SIGSTOP)  # the machine is out of reach...
        try:
            os.kill(prov.ssh_pid, signal.SIGKILL)
            assert await wait_for(lambda: "reconnecting:1" in states(remote), 10)
            remote.specs.remove("r-kernel")  # ...and the rental stops
            assert await wait_for(lambda: dead(km), 30)
        finally:
            os.kill(remote.sshd.pid, signal.SIGCONT)
            remote.install("r-kernel", remote.entry)
        assert kernel_states(remote.state_dir) == []


@pytest.mark.asyncio
async def test_an_adoption_that_cannot_reach_the_machine_keeps_the_kernel_listed(
    remote: Remote,
) -> None:
    pid, folder, record = await detach_in_process(remote, remote.name)
    os.kill(remote.sshd.pid, signal.SIGSTOP)  # the machine is out of reach for a while
    try:
        km = AsyncKernelManager(kernel_name=remote.name, kernel_spec_manager=remote.ksm)
        with pytest.raises(RemoteKernelError, match=r"could not connect|not ready"):
            await asyncio.wait_for(km.start_kernel(), START_TIMEOUT)
    finally:
        os.kill(remote.sshd.pid, signal.SIGCONT)
    assert process_alive(pid) and exists(folder)
    assert [r.wrapper for r in detached_kernels(remote.state_dir)["r-kernel"]] == [record.wrapper]
    with pytest.raises(LookupError):
        await shut_down_detached("a1b2c3", remote.state_dir)  # no such kernel
    async with kernel(remote) as (km, _kc):
        assert km.provisioner.remote_pid == pid  # adopted this time
    assert await wait_for(lambda: not process_alive(pid), 10)
