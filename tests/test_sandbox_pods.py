"""Tests of the sandbox's SSH pods, driven by the real OpenSSH client."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import pathlib
import shlex
import shutil
import signal
import socket
import stat
import struct
import subprocess
import tempfile
import termios
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from gpuoutlet_jupyter.sandbox import pods
from gpuoutlet_jupyter.sandbox.pods import Pod, PodManager, probe_ssh

pytestmark = pytest.mark.skipif(
    shutil.which("ssh") is None or shutil.which("ssh-keygen") is None,
    reason="needs the OpenSSH client",
)

needs_proc = pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc")

TIMEOUT = 20.0  # upper bound for any one subprocess or wait loop; never reached when all is well
POD_ID = "pod-test-1"


@dataclass
class Keys:
    first: pathlib.Path  # authorized
    second: pathlib.Path  # authorized
    stranger: pathlib.Path  # not authorized
    authorized_keys: str


@dataclass
class Client:
    keys: Keys
    known_hosts: pathlib.Path

    def argv(
        self,
        port: int,
        *args: str,
        key: pathlib.Path | None = None,
        strict: str = "accept-new",
    ) -> list[str]:
        return [
            "ssh",
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            f"StrictHostKeyChecking={strict}",
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "ConnectTimeout=10",
            "-i",
            str(key or self.keys.first),
            "-p",
            str(port),
            *args,
        ]

    async def run(
        self,
        port: int,
        *args: str,
        stdin: bytes | None = None,
        key: pathlib.Path | None = None,
        strict: str = "accept-new",
        env: dict[str, str] | None = None,
    ) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            *self.argv(port, *args, key=key, strict=strict),
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin), TIMEOUT)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        assert proc.returncode is not None
        return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def _keygen(path: pathlib.Path) -> pathlib.Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
        check=True,
        capture_output=True,
        timeout=TIMEOUT,
    )
    return path


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    folder = tmp_path_factory.mktemp("keys")
    first, second, stranger = (_keygen(folder / name) for name in ("first", "second", "stranger"))
    authorized = "# the account's keys\n\n" + "".join(
        p.with_suffix(".pub").read_text() for p in (first, second)
    )
    return Keys(first, second, stranger, authorized)


@pytest.fixture
def client(keys: Keys, tmp_path: pathlib.Path) -> Client:
    return Client(keys, tmp_path / "known_hosts")


@pytest_asyncio.fixture
async def manager(tmp_path: pathlib.Path) -> AsyncIterator[PodManager]:
    # Errors in callbacks (e.g. a transport closed twice) never reach the test
    # otherwise: collect what the loop reports and fail on it.
    loop = asyncio.get_running_loop()
    loop_errors: list[str] = []
    loop.set_exception_handler(lambda _loop, context: loop_errors.append(repr(context)))
    # S604 mistakes the pod's login shell for subprocess's shell=True.
    mgr = PodManager(tmp_path / "state", shell="/bin/sh", kill_grace=1.0)  # noqa: S604
    try:
        yield mgr
    finally:
        await mgr.close()
        loop.set_exception_handler(None)
    assert loop_errors == []


@pytest_asyncio.fixture
async def pod(manager: PodManager, keys: Keys) -> Pod:
    return await manager.start(POD_ID, keys.authorized_keys)


@pytest.fixture
def short_tmp() -> Iterator[pathlib.Path]:
    # Unix socket paths are limited to ~107 bytes; pytest's tmp_path can be longer.
    folder = pathlib.Path(tempfile.mkdtemp(prefix="pod-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _cmdline(pid: int) -> str:
    try:
        return pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


async def _wait_for(predicate: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while not predicate():
        assert loop.time() < deadline, f"gave up waiting for {what}"
        await asyncio.sleep(0.02)


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


async def _roundtrip(port: int, payload: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(payload)
        await writer.drain()
        return await asyncio.wait_for(reader.readexactly(len(payload)), TIMEOUT)
    finally:
        writer.close()


# -- exec ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_exec_output_and_exit_status(pod: Pod, client: Client) -> None:
    rc, out, _ = await client.run(pod.port, "user@127.0.0.1", "python3 -c 'print(42)'")
    assert (rc, out) == (0, "42\n")

    results = await asyncio.gather(
        client.run(pod.port, "root@127.0.0.1", "exit 3"),
        client.run(pod.port, "anyone@127.0.0.1", "echo to-out; echo to-err >&2; exit 7"),
        # Interleaved stdout and stderr must not end the session early.
        client.run(
            pod.port,
            "127.0.0.1",
            "python3 -c 'import sys\nfor i in range(3000): print(i); print(i, file=sys.stderr)'",
        ),
    )
    assert results[0][0] == 3
    rc, out, err = results[1]
    assert (rc, out) == (7, "to-out\n")
    assert "to-err\n" in err
    rc, out, err = results[2]
    expected = "".join(f"{i}\n" for i in range(3000))
    assert rc == 0
    assert out == expected
    assert err.endswith(expected)


@pytest.mark.asyncio
async def test_stdin_script_and_eof(pod: Pod, client: Client) -> None:
    script = b"import sys\nprint('script ran', sys.stdin.read() == '')\n"
    payload = os.urandom(3 * 1024 * 1024)
    (rc, out, _), (rc2, out2, _) = await asyncio.gather(
        client.run(pod.port, "127.0.0.1", "python3 -", stdin=script),
        # cat only exits on EOF; the size exercises flow control both ways.
        client.run(pod.port, "127.0.0.1", "cat | sha256sum", stdin=payload),
    )
    assert (rc, out) == (0, "script ran True\n")
    assert rc2 == 0
    assert out2.split()[0] == hashlib.sha256(payload).hexdigest()


@pytest.mark.asyncio
async def test_environment(pod: Pod, client: Client) -> None:
    env = {**os.environ, "SSH_AUTH_SOCK": "/nonexistent/agent.sock", "LC_PODTEST": "x"}
    rc, out, _ = await client.run(
        pod.port,
        "-A",
        "-o",
        "SendEnv=LC_PODTEST",
        "-o",
        "SetEnv=SECRET_FROM_CLIENT=1",
        "127.0.0.1",
        'echo "$GPUOUTLET_POD_ID|$(pwd)|$HOME|$USER|$LC_PODTEST|'
        '${SECRET_FROM_CLIENT:-unset}|${SSH_AUTH_SOCK:-no-agent}"',
        env=env,
    )
    assert rc == 0
    pod_id, cwd, home, user, lc, secret, agent = out.strip().split("|")
    assert pod_id == POD_ID
    assert cwd == home
    assert user
    assert lc == "x"
    assert secret == "unset"
    assert agent == "no-agent"


@pytest.mark.asyncio
async def test_shell_without_pty(pod: Pod, client: Client) -> None:
    rc, out, _ = await client.run(
        pod.port, "-T", "127.0.0.1", stdin=b'echo "shell on $GPUOUTLET_POD_ID"\nexit 4\n'
    )
    assert rc == 4
    assert f"shell on {POD_ID}" in out


# -- authentication -----------------------------------------------------------


@pytest.mark.asyncio
async def test_keys(pod: Pod, client: Client, keys: Keys) -> None:
    (rc_second, out_second, _), (rc, _, err) = await asyncio.gather(
        client.run(pod.port, "someone@127.0.0.1", "echo ok", key=keys.second),
        client.run(pod.port, "root@127.0.0.1", "echo ok", key=keys.stranger),
    )
    assert (rc_second, out_second) == (0, "ok\n")
    assert rc == 255
    # Only public-key authentication is offered.
    assert "Permission denied (publickey)" in err


# -- forwarding ---------------------------------------------------------------


@pytest.mark.asyncio
async def test_local_forwarding(pod: Pod, client: Client, short_tmp: pathlib.Path) -> None:
    tcp_echo = await asyncio.start_server(_echo, "127.0.0.1", 0)
    sock_path = short_tmp / "echo.sock"
    unix_echo = await asyncio.start_unix_server(_echo, str(sock_path))
    echo_port = tcp_echo.sockets[0].getsockname()[1]
    tcp_port, unix_port, outside_port = _free_port(), _free_port(), _free_port()
    ssh = await asyncio.create_subprocess_exec(
        *client.argv(
            pod.port,
            "-N",
            "-o",
            "ExitOnForwardFailure=yes",
            "-L",
            f"127.0.0.1:{tcp_port}:127.0.0.1:{echo_port}",
            "-L",
            f"127.0.0.1:{unix_port}:{sock_path}",
            "-L",
            f"127.0.0.1:{outside_port}:192.0.2.1:80",
            "127.0.0.1",
        ),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT
        while True:  # ssh listens locally only once it is logged in
            try:
                assert await _roundtrip(tcp_port, b"over tcp\n") == b"over tcp\n"
                break
            except ConnectionRefusedError:
                assert ssh.returncode is None, "ssh exited"
                assert loop.time() < deadline, "tunnel never came up"
                await asyncio.sleep(0.05)
        assert await _roundtrip(unix_port, b"over unix\n" * 1000) == b"over unix\n" * 1000

        # The refusal reaches the client as a closed tunnel, not as an ssh exit.
        reader, writer = await asyncio.open_connection("127.0.0.1", outside_port)
        try:
            writer.write(b"GET / HTTP/1.0\r\n\r\n")
            with contextlib.suppress(ConnectionResetError):
                assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
        finally:
            writer.close()
    finally:
        if ssh.returncode is None:
            ssh.terminate()
        _, err = await asyncio.wait_for(ssh.communicate(), TIMEOUT)
        tcp_echo.close()
        unix_echo.close()
    assert "administratively prohibited" in err.decode()


@pytest.mark.asyncio
async def test_remote_forwarding_refused(pod: Pod, client: Client) -> None:
    rc, _, err = await client.run(
        pod.port,
        "-o",
        "ExitOnForwardFailure=yes",
        "-R",
        f"127.0.0.1:{_free_port()}:127.0.0.1:{pod.port}",
        "127.0.0.1",
        "sleep 5",
    )
    assert rc == 255
    assert "remote port forwarding failed" in err


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1", True),
        ("127.10.20.30", True),
        ("::1", True),
        ("localhost", True),
        ("LocalHost.", True),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
        ("192.0.2.1", False),
        ("::", False),
        ("example.com", False),
        ("localhost.example.com", False),
        ("", False),
    ],
)
def test_loopback_destinations(host: str, allowed: bool) -> None:
    assert pods._is_loopback_destination(host) is allowed


# -- process cleanup ----------------------------------------------------------


async def _start_sleepers(
    client: Client, pod: Pod
) -> tuple[asyncio.subprocess.Process, str, list[int]]:
    """A remote session whose first process and a background child both sleep."""
    marker = f"gpuoutlet-pod-test-{uuid.uuid4().hex}"
    sleeper = "python3 -c 'import time; time.sleep(1000)'"
    ssh = await asyncio.create_subprocess_exec(
        *client.argv(
            pod.port,
            "127.0.0.1",
            f"{sleeper} {marker}-bg & echo $!; echo $$; exec {sleeper} {marker}-fg",
        ),
        stdin=subprocess.PIPE,  # kept open: the remote side must not get EOF by itself
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert ssh.stdout is not None
    pids = [int(await asyncio.wait_for(ssh.stdout.readline(), TIMEOUT)) for _ in range(2)]
    await _wait_for(
        lambda: marker in _cmdline(pids[0]) and marker in _cmdline(pids[1]), "the sleepers"
    )
    return ssh, marker, pids


def _gone(marker: str, pids: list[int]) -> bool:
    # A zombie or a reused pid has no marker in its command line.
    return all(marker not in _cmdline(pid) for pid in pids)


@needs_proc
@pytest.mark.asyncio
async def test_killed_client_kills_remote_processes(pod: Pod, client: Client) -> None:
    ssh, marker, pids = await _start_sleepers(client, pod)
    ssh.kill()
    await asyncio.wait_for(ssh.wait(), TIMEOUT)
    await _wait_for(lambda: _gone(marker, pids), "the remote processes to die")


@needs_proc
@pytest.mark.asyncio
async def test_stop_kills_remote_processes(manager: PodManager, pod: Pod, client: Client) -> None:
    ssh, marker, pids = await _start_sleepers(client, pod)
    try:
        await manager.stop(POD_ID)
        assert _gone(marker, pids)  # stop() returns only once they are dead
        assert await asyncio.wait_for(ssh.wait(), TIMEOUT) != 0
    finally:
        if ssh.returncode is None:
            ssh.kill()
            await ssh.wait()
    assert manager.get(POD_ID) is None
    assert manager.running() == []
    await manager.stop(POD_ID)  # idempotent


@needs_proc
@pytest.mark.asyncio
async def test_background_job_survives_session_until_stop(
    manager: PodManager, pod: Pod, client: Client
) -> None:
    marker = f"gpuoutlet-pod-test-{uuid.uuid4().hex}"
    rc, out, _ = await client.run(
        pod.port,
        "127.0.0.1",
        f"python3 -c 'import time; time.sleep(1000)' {marker} </dev/null >/dev/null 2>&1 & echo $!",
    )
    assert rc == 0
    pid = int(out)
    await _wait_for(lambda: marker in _cmdline(pid), "the background job")
    await manager.stop(POD_ID)
    assert marker not in _cmdline(pid)


@needs_proc
@pytest.mark.asyncio
async def test_stop_kills_daemons_that_left_their_session(
    manager: PodManager, pod: Pod, client: Client
) -> None:
    marker = f"gpuoutlet-pod-test-{uuid.uuid4().hex}"
    daemon = (
        "import os, sys, time\n"
        "if os.fork(): sys.exit(0)\n"
        "os.setsid()\n"
        "if os.fork(): sys.exit(0)\n"
        "print(os.getpid(), flush=True)\n"
        "os.close(1)\n"
        "time.sleep(1000)\n"
    )
    rc, out, _ = await client.run(
        pod.port, "127.0.0.1", f"python3 -c {shlex.quote(daemon)} {marker} </dev/null 2>/dev/null"
    )
    assert rc == 0
    pid = int(out)
    await _wait_for(lambda: marker in _cmdline(pid), "the daemon")
    await asyncio.sleep(0.3)
    assert marker in _cmdline(pid)  # the session is over; the daemon is not
    await manager.stop(POD_ID)
    assert marker not in _cmdline(pid)


# -- host key and readiness ---------------------------------------------------


@pytest.mark.asyncio
async def test_host_key_persists_across_restarts(
    manager: PodManager, client: Client, keys: Keys, tmp_path: pathlib.Path
) -> None:
    first = await manager.start(POD_ID, keys.authorized_keys)
    rc, _, _ = await client.run(first.port, "127.0.0.1", "true")
    assert rc == 0
    key_file = tmp_path / "state" / POD_ID / "host_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    keygen = await asyncio.create_subprocess_exec(
        *("ssh-keygen", "-l", "-F", f"[127.0.0.1]:{first.port}", "-f", str(client.known_hosts)),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    listed, _ = await asyncio.wait_for(keygen.communicate(), TIMEOUT)
    assert first.host_key_fingerprint in listed.decode()

    await manager.stop(POD_ID)
    again = await manager.start(POD_ID, keys.authorized_keys, port=first.port)
    assert again == first
    rc, out, err = await client.run(first.port, "127.0.0.1", "echo same", strict="yes")
    assert (rc, out) == (0, "same\n"), err

    other = PodManager(tmp_path / "state")
    try:
        assert (await other.start(POD_ID, keys.authorized_keys)).host_key_fingerprint == (
            first.host_key_fingerprint
        )
    finally:
        await other.close()


@pytest.mark.asyncio
async def test_probe_ssh(pod: Pod) -> None:
    assert await probe_ssh(pod.host, pod.port) is True
    assert await probe_ssh("127.0.0.1", _free_port()) is False

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    async def not_ssh(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        writer.close()

    servers = [await asyncio.start_server(h, "127.0.0.1", 0) for h in (silent, not_ssh)]
    try:
        for server in servers:
            port = server.sockets[0].getsockname()[1]
            assert await probe_ssh("127.0.0.1", port, timeout=0.3) is False
    finally:
        for server in servers:
            server.close()


# -- pty ----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_pty_session_with_piped_input(pod: Pod, client: Client) -> None:
    rc, out, _ = await client.run(pod.port, "-tt", "127.0.0.1", stdin=b"tty; exit 5\n")
    assert rc == 5
    assert "/dev/pts/" in out


def _set_winsize(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


@pytest.mark.asyncio
async def test_pty_window_size_follows_client(pod: Pod, client: Client) -> None:
    # ssh reads the window size from its stdin, so give it a terminal of our own.
    master, slave = os.openpty()
    _set_winsize(slave, 33, 101)
    ssh = await asyncio.create_subprocess_exec(
        *client.argv(pod.port, "-tt", "127.0.0.1"),
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    os.close(slave)
    stdout = ssh.stdout
    assert stdout is not None
    output = b""

    async def until_seen(text: bytes, command: bytes) -> None:
        # The command is repeated only while the session is quiet, as a user would.
        nonlocal output
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT
        os.write(master, command)
        while text not in output:
            remaining = deadline - loop.time()
            assert remaining > 0, f"never saw {text!r} in {output!r}"
            try:
                chunk = await asyncio.wait_for(stdout.read(4096), min(remaining, 1.0))
            except asyncio.TimeoutError:
                os.write(master, command)
                continue
            assert chunk, f"ssh ended before {text!r} appeared in {output!r}"
            output += chunk

    try:
        await until_seen(b"33 101", b"stty size\n")
        _set_winsize(master, 40, 120)
        ssh.send_signal(signal.SIGWINCH)
        await until_seen(b"40 120", b"stty size\n")
        os.write(master, b"exit 6\n")
        assert await asyncio.wait_for(ssh.wait(), TIMEOUT) == 6
    finally:
        if ssh.returncode is None:
            ssh.kill()
            await ssh.wait()
        os.close(master)


@pytest.mark.asyncio
async def test_pty_refused_cleanly_when_unavailable(
    pod: Pod, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_pty() -> tuple[int, int]:
        raise OSError(6, "No such device or address")

    monkeypatch.setattr(os, "openpty", no_pty)  # the pod runs in this process
    rc, _, err = await client.run(pod.port, "-tt", "127.0.0.1", stdin=b"echo hi\n")
    assert rc == 1
    assert "cannot allocate a pty" in err


# -- manager bookkeeping ------------------------------------------------------


@pytest.mark.asyncio
async def test_manager_bookkeeping(manager: PodManager, keys: Keys) -> None:
    pod = await manager.start(POD_ID, keys.authorized_keys)
    assert pod.host == "127.0.0.1"
    assert pod.host_key_fingerprint.startswith("SHA256:")
    assert await manager.start(POD_ID, keys.authorized_keys) == pod
    twins = await asyncio.gather(*(manager.start("pod-twin", keys.authorized_keys) for _ in "ab"))
    assert twins[0] == twins[1]
    await manager.stop("pod-twin")
    assert manager.get(POD_ID) == pod
    second = await manager.start("pod-test-2", keys.authorized_keys)
    assert second.port != pod.port
    assert second.host_key_fingerprint != pod.host_key_fingerprint
    assert sorted(p.pod_id for p in manager.running()) == [POD_ID, "pod-test-2"]

    for bad_id in ("", "../escape", "a/b", ".hidden", "x" * 200):
        with pytest.raises(ValueError, match="invalid pod id"):
            await manager.start(bad_id, keys.authorized_keys)
    with pytest.raises(ValueError, match="no usable authorized key"):
        await manager.start("pod-test-3", "# nothing here\nnot a key\n")
    assert manager.get("pod-test-3") is None

    await manager.close()
    assert manager.running() == []
    assert await probe_ssh("127.0.0.1", pod.port, timeout=0.5) is False


# -- the pod's disk, SFTP and nvidia-smi --------------------------------------------


@pytest.mark.asyncio
async def test_each_pod_has_its_own_disk(manager: PodManager, keys: Keys, client: Client) -> None:
    first = await manager.start(POD_ID, keys.authorized_keys)
    second = await manager.start("pod-test-2", keys.authorized_keys)
    rc, out, _ = await client.run(first.port, "127.0.0.1", 'echo "$HOME"; echo mine > work/f')
    assert rc == 0
    home = pathlib.Path(out.strip())
    assert home == manager.home(POD_ID) and (home / "work" / "f").read_text() == "mine\n"
    rc, out, _ = await client.run(second.port, "127.0.0.1", "pwd; ls -A; ls work | wc -l")
    assert rc == 0
    cwd, listing, count = out.split()
    assert pathlib.Path(cwd) == manager.home("pod-test-2") != home
    assert (listing, count) == ("work", "0")
    assert stat.S_IMODE(os.stat(home).st_mode) == 0o700


@pytest.mark.asyncio
async def test_stop_keeps_the_disk_and_destroy_deletes_it(
    manager: PodManager, keys: Keys, client: Client
) -> None:
    pod = await manager.start(POD_ID, keys.authorized_keys)
    rc, _, _ = await client.run(pod.port, "127.0.0.1", "echo kept > work/state")
    assert rc == 0
    await manager.stop(POD_ID)  # a sandbox shutdown: the rental still runs
    again = await manager.start(POD_ID, keys.authorized_keys, port=pod.port)
    rc, out, _ = await client.run(again.port, "127.0.0.1", "cat work/state", strict="yes")
    assert (rc, out) == (0, "kept\n")
    await manager.destroy(POD_ID)  # a rental's stop: the disk is wiped
    assert manager.get(POD_ID) is None
    assert not (manager.home(POD_ID).parent).exists()
    await manager.destroy(POD_ID)  # idempotent
    fresh = await manager.start(POD_ID, keys.authorized_keys)
    assert fresh.host_key_fingerprint != pod.host_key_fingerprint  # a new machine
    assert [p.name for p in manager.home(POD_ID).iterdir()] == ["work"]


@pytest.mark.asyncio
async def test_sftp_starts_in_the_pods_home(
    pod: Pod, manager: PodManager, client: Client, tmp_path: pathlib.Path
) -> None:
    if shutil.which("sftp") is None:
        pytest.skip("needs sftp")
    local = tmp_path / "up.txt"
    local.write_text("over sftp\n")
    argv = client.argv(pod.port, "127.0.0.1")
    sftp = ["sftp", *argv[1:-1], "-P", str(pod.port), "-b", "-", "127.0.0.1"]
    sftp.remove("-p")
    sftp.remove(str(pod.port))
    proc = await asyncio.create_subprocess_exec(
        *sftp,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(
        proc.communicate(f"pwd\nput {local} work/up.txt\n".encode()), TIMEOUT
    )
    assert proc.returncode == 0, err.decode()
    assert str(manager.home(POD_ID)) in out.decode()
    assert (manager.home(POD_ID) / "work" / "up.txt").read_text() == "over sftp\n"


@pytest.mark.asyncio
async def test_nvidia_smi_reports_the_pods_gpus(
    tmp_path: pathlib.Path, keys: Keys, client: Client
) -> None:
    if shutil.which("nvidia-smi") is not None:
        pytest.skip("this machine has real GPUs")
    manager = PodManager(tmp_path / "gpus", kill_grace=1.0)
    try:
        spec = pods.GpuSpec(4, "NVIDIA B200", 183359, 1000)
        with_gpus = await manager.start("pod-gpus", keys.authorized_keys, gpus=spec)
        rc, out, _ = await client.run(with_gpus.port, "127.0.0.1", "nvidia-smi -L")
        assert rc == 0
        assert [line.split(" (UUID")[0] for line in out.splitlines()] == [
            f"GPU {i}: NVIDIA B200" for i in range(4)
        ]
        rc, out, _ = await client.run(
            with_gpus.port,
            "127.0.0.1",
            "nvidia-smi --query-gpu=index,memory.total,power.draw --format=csv -i 2",
        )
        assert (rc, out.splitlines()) == (
            0,
            ["index, memory.total [MiB], power.draw [W]", "2, 183359 MiB, 60.00 W"],
        )
        rc, _, err = await client.run(
            with_gpus.port, "127.0.0.1", "nvidia-smi --query-gpu=bogus --format=csv"
        )
        assert rc == 2 and 'Field "bogus" is not a valid field to query.' in err
        # A pod without GPUs (no spec) has the command but no driver, as on a CPU machine.
        plain = await manager.start("pod-plain", keys.authorized_keys)
        rc, _, err = await client.run(plain.port, "127.0.0.1", "nvidia-smi")
        assert rc == 9 and "couldn't communicate with the NVIDIA driver" in err
    finally:
        await manager.close()
    # With real GPUs the sandbox leaves PATH alone: no simulated command at all.
    real = PodManager(tmp_path / "real", kill_grace=1.0, simulate_gpus=False)
    try:
        pod = await real.start("pod-real", keys.authorized_keys, gpus=spec)
        rc, _, _ = await client.run(pod.port, "127.0.0.1", "command -v nvidia-smi")
        assert rc != 0
    finally:
        await real.close()
