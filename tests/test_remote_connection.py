"""The shared SSH connection of a rental, against a real OpenSSH sshd."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
from pathlib import Path

import pytest
from helpers.remote_pods import TestPod, connected, needs_sshd
from helpers.sshd import process_alive, start_sshd

from gpuoutlet_jupyter.remote import (
    CommandFailed,
    CommandTimeout,
    ConnectFailed,
    ConnectionClosed,
    ConnectionLost,
    ControlPathError,
    RemoteManager,
    SharedConnection,
    SSHTarget,
)
from gpuoutlet_jupyter.remote.controlpath import MAX_CONTROL_DIR, ensure_control_dir
from gpuoutlet_jupyter.sandbox.testing import SSHKeypair
from gpuoutlet_jupyter.ssh import SSHConfigWriter

pytestmark = [needs_sshd, pytest.mark.asyncio]


async def wait_for(predicate: object, timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.05)
    return bool(predicate())  # type: ignore[operator]


async def test_one_login_for_many_commands_and_gone_after_close(
    gpu_pod: TestPod, control_dir: Path
) -> None:
    logins = gpu_pod.logins()
    async with connected(gpu_pod, control_dir) as conn:
        assert not conn.is_open()  # opened on demand, not before
        results = await asyncio.gather(*(conn.run(f"echo {i}") for i in range(12)))
        results += [await conn.run(["printf", "%s", "a b"]) for _ in range(3)]
        assert [r.text.strip() for r in results[:12]] == [str(i) for i in range(12)]
        assert results[-1].stdout == b"a b"
        assert conn.opened_count == 1
        assert gpu_pod.logins() == logins + 1  # one real login carried all 15 commands
        pid = conn.master_pid
        socket_path = conn.control_socket
        assert pid is not None and process_alive(pid)
        assert socket_path is not None and stat.S_ISSOCK(os.lstat(socket_path).st_mode)
        assert socket_path.startswith(f"{control_dir}/")
        await conn.close()
        assert not process_alive(pid)
        assert not Path(socket_path).exists()  # noqa: ASYNC240
        with pytest.raises(ConnectionClosed, match="rental has stopped"):
            await conn.run("true")


async def test_exit_status_stdout_stderr_input_and_check(
    gpu_pod: TestPod, control_dir: Path
) -> None:
    async with connected(gpu_pod, control_dir) as conn:
        result = await conn.run("echo out; echo err >&2; exit 3")
        assert (result.exit_status, result.stdout, result.stderr) == (3, b"out\n", b"err\n")
        assert not result.ok
        echoed = await conn.run("cat; echo done", input=b"x" * 300_000)
        assert echoed.stdout == b"x" * 300_000 + b"done\n"
        with pytest.raises(CommandFailed, match="exit status 4: nope"):
            await conn.run("echo nope >&2; exit 4", check=True)
        # A remote command's own 255 is its status, not a lost connection.
        assert (await conn.run("exit 255")).exit_status == 255


def running(command: str) -> bool:
    """Whether a process runs ``command`` (the pods are local; the ssh clients that carry it
    have it later in their command lines, so the match is anchored)."""
    import subprocess

    return subprocess.run(["pgrep", "-f", f"^{command}"], capture_output=True).returncode == 0


async def test_timeout_ends_the_command_on_the_pod_too(gpu_pod: TestPod, control_dir: Path) -> None:
    async with connected(gpu_pod, control_dir) as conn:
        with pytest.raises(CommandTimeout, match=r"did not finish within 0\.5 s") as caught:
            await conn.run("echo started; sleep 31.4159; echo never", timeout=0.5)
        assert caught.value.stdout == b"started\n"
        # A session without a tty gets no SIGHUP when its client goes: the pod's process group
        # is killed instead, so nothing is left running there.
        assert await wait_for(lambda: not running("sleep 31.4159"), 10)
        assert (await conn.run("echo still usable")).text == "still usable\n"
        assert conn.opened_count == 1


async def test_cancelling_a_command_ends_it_on_the_pod(gpu_pod: TestPod, control_dir: Path) -> None:
    async with connected(gpu_pod, control_dir) as conn:
        task = asyncio.ensure_future(conn.run("sleep 27.1828"))
        assert await wait_for(lambda: running("sleep 27.1828"), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await wait_for(lambda: not running("sleep 27.1828"), 10)
        async with conn.process("echo begun; sleep 26.1234") as proc:
            assert await proc.stdout.readline() == b"begun\n"
            assert await wait_for(lambda: proc.remote_pid is not None, 5)  # stderr's first line
        assert await wait_for(lambda: not running("sleep 26.1234"), 10)


async def test_streams_output_as_it_comes(gpu_pod: TestPod, control_dir: Path) -> None:
    async with connected(gpu_pod, control_dir) as conn:
        seen: list[tuple[str, str]] = []
        async with conn.process("for i in 1 2 3; do echo $i; sleep 0.1; done; echo bye >&2") as p:
            async for item in p.lines():
                seen.append(item)
            assert await p.wait() == 0
        assert [line for name, line in seen if name == "stdout"] == ["1", "2", "3"]
        assert ("stderr", "bye") in seen
        async with conn.process("cat", stdin=True) as p:
            assert p.stdin is not None
            p.stdin.write(b"hello\n")
            await p.stdin.drain()
            assert await p.stdout.readline() == b"hello\n"
            p.stdin.close()
            assert await p.wait(timeout=10) == 0


async def test_idle_close_then_reopen_on_demand(gpu_pod: TestPod, control_dir: Path) -> None:
    async with connected(gpu_pod, control_dir, idle_timeout=1) as conn:
        await conn.run("true")
        first = conn.master_pid
        # ControlPersist=1: the master leaves by itself once nothing used it for a second.
        assert await wait_for(lambda: not process_alive(first), 10)
        assert not conn.is_open()
        assert (await conn.run("echo back")).text == "back\n"
        # Under load the fresh master may idle out again before the command starts: then
        # the command finds it gone and reopens once more, so 2 or 3 masters, never 1.
        assert conn.opened_count >= 2 and conn.master_pid != first


async def test_a_hold_keeps_it_open_past_the_idle_timeout(
    gpu_pod: TestPod, control_dir: Path
) -> None:
    async with connected(gpu_pod, control_dir, idle_timeout=3) as conn:
        await conn.open()
        pid = conn.master_pid
        hold = conn.hold()  # probes the socket every second
        await asyncio.sleep(8)
        assert process_alive(pid) and conn.opened_count == 1
        hold.release()
        assert await wait_for(lambda: not process_alive(pid), 10)


async def test_disconnect_on_request_keeps_it_usable(gpu_pod: TestPod, control_dir: Path) -> None:
    async with connected(gpu_pod, control_dir) as conn:
        await conn.open()
        pid = conn.master_pid
        await conn.disconnect()
        assert not process_alive(pid) and not conn.is_open()
        assert (await conn.run("echo again")).text == "again\n"
        assert conn.opened_count == 2


async def test_master_gone_between_commands_is_reopened_not_bypassed(
    gpu_pod: TestPod, control_dir: Path
) -> None:
    async with connected(gpu_pod, control_dir) as conn:
        await conn.open()
        pid = conn.master_pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # the master is ours: we started it
        assert await wait_for(lambda: not process_alive(pid), 5)
        logins = gpu_pod.logins()
        # A killed master leaves its socket file behind: it is cleared, and the command goes
        # through a new master (one new login), never a connection of its own.
        assert (await conn.run("echo ok")).text == "ok\n"
        assert conn.opened_count == 2 and conn.master_pid != pid
        assert gpu_pod.logins() == logins + 1


async def test_a_client_never_logs_in_by_itself(gpu_pod: TestPod, control_dir: Path) -> None:
    conn = gpu_pod.connection(control_dir)
    # No master: the raw argv of a session must fail rather than open its own connection.
    proc = await asyncio.create_subprocess_exec(
        *conn.argv("echo leaked"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 255 and out == b""
    assert b"gpuoutlet-no-shared-connection" in err


async def test_connection_lost_mid_command(gpu_pod: TestPod, control_dir: Path) -> None:
    async with connected(gpu_pod, control_dir) as conn:
        await conn.open()
        pid = conn.master_pid
        assert pid is not None
        task = asyncio.ensure_future(conn.run("sleep 20"))
        await asyncio.sleep(1.0)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(ConnectionLost, match="was lost while running 'sleep 20'"):
            await asyncio.wait_for(task, 15)


async def test_pod_that_does_not_answer(
    tmp_path: Path, control_dir: Path, ssh_keypair: SSHKeypair
) -> None:
    server = start_sshd(tmp_path / "sshd", ssh_keypair.public_key)
    entry = SSHConfigWriter(tmp_path / "ssh", identity_file=ssh_keypair.private_key).write(
        "r-gone", server.host, server.port
    )
    server.stop()
    conn = SharedConnection(SSHTarget.from_entry(entry), control_dir=control_dir, connect_timeout=5)
    with pytest.raises(
        ConnectFailed, match=r"could not open the SSH connection to rental r-gone.*refused"
    ) as caught:
        await conn.run("true")
    assert "%gpu_rentals" in str(caught.value)
    assert not conn.is_open()


async def test_key_not_accepted(tmp_path: Path, control_dir: Path, gpu_pod: TestPod) -> None:
    from gpuoutlet_jupyter.sandbox.testing import make_keypair

    stranger = make_keypair(tmp_path / "other-key")
    entry = SSHConfigWriter(tmp_path / "ssh", identity_file=stranger.private_key).write(
        "r-stranger", gpu_pod.sshd.host, gpu_pod.sshd.port
    )
    conn = SharedConnection(SSHTarget.from_entry(entry), control_dir=control_dir)
    with pytest.raises(ConnectFailed, match="Permission denied"):
        await conn.open()


async def test_alias_resolves_through_the_managed_config_whatever_home_says(
    gpu_pod: TestPod, control_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # OpenSSH reads ~/.ssh/config from the password database, not $HOME: without -F the alias
    # would not resolve at all. The connection always passes the managed config.
    monkeypatch.setenv("HOME", str(tmp_path / "elsewhere"))
    async with connected(gpu_pod, control_dir) as conn:
        assert (await conn.run("echo resolved")).text == "resolved\n"


async def test_control_folder_too_long_is_refused_before_ssh(
    gpu_pod: TestPod, tmp_path: Path
) -> None:
    long_dir = tmp_path / ("x" * 60)
    assert len(os.fsencode(long_dir)) > MAX_CONTROL_DIR
    with pytest.raises(ControlPathError, match=r"too long for ssh's control socket.*at most 49"):
        ensure_control_dir(long_dir)
    logins = gpu_pod.logins()
    conn = gpu_pod.connection(long_dir)
    with pytest.raises(ControlPathError, match="too long"):
        await conn.run("true")
    assert not long_dir.exists()
    assert gpu_pod.logins() == logins  # ssh never ran


async def test_control_folder_must_be_ours_and_private(tmp_path: Path) -> None:
    short = Path("/tmp") / f"gor-own-{os.getpid()}"
    try:
        short.mkdir(mode=0o755)
        assert ensure_control_dir(short) == short
        assert stat.S_IMODE(short.stat().st_mode) == 0o700  # tightened
        os.chown(short, 65534, 65534)  # someone else's folder (we are root in these tests)
        with pytest.raises(ControlPathError, match="belongs to user id 65534"):
            ensure_control_dir(short)
        os.rmdir(short)
        short.symlink_to(tmp_path)
        with pytest.raises(ControlPathError, match="not a folder"):
            ensure_control_dir(short)
    finally:
        if short.is_symlink():
            short.unlink()
        elif short.exists():
            os.rmdir(short)


async def test_manager_gives_one_remote_per_rental_and_closes_it(
    gpu_pod: TestPod, control_dir: Path
) -> None:
    manager = RemoteManager(control_dir)
    remote = await manager.rental(gpu_pod.target)
    assert await manager.rental(gpu_pod.target) is remote
    await remote.connection.run("true")
    pid = remote.connection.master_pid
    await manager.close_rental(gpu_pod.target.rental_id)
    assert manager.get(gpu_pod.target.rental_id) is None
    assert not process_alive(pid)
    with pytest.raises(ConnectionClosed):
        await remote.connection.run("true")
    await manager.close()
