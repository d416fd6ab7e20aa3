"""Port forwards over the shared connection and the pod's listening ports, against real sshds.

The web app is ``python -m http.server`` started on the pod over ssh (the pods run on this
machine, so its pid is ours to end).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import signal
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from helpers.remote_pods import TestPod, connected, needs_sshd
from helpers.sshd import process_alive

from gpuoutlet_jupyter.remote import (
    ConnectionClosed,
    ForwardError,
    RemoteManager,
    SharedConnection,
    free_local_port,
    known_ports,
    listening_ports,
)
from gpuoutlet_jupyter.remote.ports import parse_proc_net_tcp, parse_ss

# ss -ltnp and /proc/net/tcp{,6} as captured on a Debian 12 machine.
SS_OUTPUT = """\
State  Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess
LISTEN 0      128          0.0.0.0:22         0.0.0.0:*    users:(("sshd",pid=612,fd=3))
LISTEN 0      4096   127.0.0.53%lo:53         0.0.0.0:*    users:(("systemd-resolve",pid=401,fd=14))
LISTEN 0      2048       127.0.0.1:7860       0.0.0.0:*    users:(("python3",pid=9001,fd=7))
LISTEN 0      128             [::]:22            [::]:*    users:(("sshd",pid=612,fd=4))
LISTEN 0      511                *:11434            *:*
LISTEN 0      5              [::1]:6006          [::]:*
"""
PROC_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:1EB4 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 2 1 0 100 0 0 10 0
   2: 0100007F:1EB4 0100007F:A2C8 01 00000000:00000000 00:00000000 00000000  1000        0 3 1 0 20 4 30 10 -1
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1776 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4 1 0 100 0 0 10 0
"""


def test_parse_ss() -> None:
    ports = parse_ss(SS_OUTPUT)
    assert [(p.port, p.address, p.process) for p in ports] == [
        (22, "0.0.0.0", "sshd"),
        (22, "::", "sshd"),
        (53, "127.0.0.53", "systemd-resolve"),
        (6006, "::1", None),
        (7860, "127.0.0.1", "python3"),
        (11434, "*", None),
    ]
    by_port = {(p.port, p.address): p for p in ports}
    assert by_port[(7860, "127.0.0.1")].pid == 9001
    assert by_port[(11434, "*")].connect_host == "127.0.0.1"
    assert by_port[(22, "::")].connect_host == "127.0.0.1"
    assert by_port[(6006, "::1")].connect_host == "::1"


def test_parse_proc_net_tcp() -> None:
    ports = parse_proc_net_tcp(PROC_TCP)
    # Only LISTEN (0A) rows; addresses decoded from the kernel's little-endian words.
    assert [(p.port, p.address) for p in ports] == [
        (22, "0.0.0.0"),
        (6006, "::1"),
        (7860, "127.0.0.1"),
    ]


def test_template_ports_from_the_vendor_sheet() -> None:
    assert [p.port for p in known_ports("ollama")] == [11434]
    assert [p.port for p in known_ports("a1111")] == [7860]
    assert [p.port for p in known_ports("text-gen-webui")] == [7860]
    assert known_ports("pytorch") == () and known_ports("ubuntu-24-04") == ()
    assert known_ports(None) == () and known_ports("no-such-template") == ()
    (vllm,) = known_ports("vllm")
    assert vllm.port == 8000 and not vllm.documented  # the sheet says "not stated"


@contextlib.asynccontextmanager
async def web_app(conn: SharedConnection, folder: Path) -> AsyncIterator[int]:
    """``python -m http.server`` started on the pod over ssh; yields its port."""
    port = free_local_port()
    # Everything after "&" must not hold the session's stdout, or ssh waits for it forever.
    command = (
        f"mkdir -p {shlex.quote(str(folder))} && cd {shlex.quote(str(folder))} && "
        "echo 'hello from the pod' > hello.txt || exit 1; "
        f"nohup {shlex.quote(sys.executable)} -m http.server {port} --bind 127.0.0.1 "
        "</dev/null >/dev/null 2>&1 & echo $!"
    )
    pid = int((await conn.run(command, check=True)).text.strip())
    try:
        ready = f"{shlex.quote(sys.executable)} -c 'import socket; socket.create_connection((\"127.0.0.1\", {port}), 1)'"
        for _ in range(200):
            if (await conn.run(ready)).ok:
                break
            await asyncio.sleep(0.05)
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)  # started by this test, on this machine


def refused(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
    except httpx.ConnectError:
        return True
    except httpx.HTTPError:
        return False
    return False


@needs_sshd
@pytest.mark.asyncio
async def test_forward_reaches_a_web_app_on_the_pod_until_cancelled(
    gpu_pod: TestPod, control_dir: Path, tmp_path: Path
) -> None:
    manager = RemoteManager(control_dir)
    remote = await manager.rental(gpu_pod.target)
    conn = remote.connection
    try:
        async with web_app(conn, tmp_path / "site") as port:
            forward = await remote.forwards.open(port)
            assert forward.remote_port == port and forward.local_port != port
            assert forward.local_url == f"http://127.0.0.1:{forward.local_port}/"
            assert json.loads(json.dumps(forward.to_dict()))["remote_port"] == port
            async with httpx.AsyncClient() as client:
                reply = await client.get(forward.local_url + "hello.txt", timeout=10)
            assert reply.text == "hello from the pod\n"
            assert remote.forwards.list() == [forward]
            assert await remote.forwards.open(port) == forward  # one forward per pod port
            assert conn.opened_count == 1

            assert await remote.forwards.cancel(port)
            assert remote.forwards.list() == []
            assert await asyncio.to_thread(refused, forward.local_port)
            assert not await remote.forwards.cancel(port)
            assert process_alive(conn.master_pid)  # cancelling a forward keeps the connection

            again = await remote.forwards.open(port)
            pid = conn.master_pid
            await manager.close_rental(remote.rental_id)  # the rental stops: everything ends
            assert await asyncio.to_thread(refused, again.local_port)
            assert not process_alive(pid)
            with pytest.raises(ConnectionClosed, match="has stopped"):
                await remote.forwards.open(port)
    finally:
        await manager.close()


@needs_sshd
@pytest.mark.asyncio
async def test_a_forward_holds_the_connection_and_survives_a_reopen(
    gpu_pod: TestPod, control_dir: Path, tmp_path: Path
) -> None:
    async with connected(gpu_pod, control_dir, idle_timeout=2) as conn:
        from gpuoutlet_jupyter.remote import PortForwarder

        forwards = PortForwarder(conn)
        async with web_app(conn, tmp_path / "site") as port:
            forward = await forwards.open(port)
            first = conn.master_pid
            await asyncio.sleep(5)  # past the idle timeout: the forward is a user
            assert conn.master_pid == first and process_alive(first)
            assert first is not None
            os.kill(first, signal.SIGKILL)  # the connection drops (the master is ours)
            for _ in range(200):  # the hold notices, reopens, and puts the forward back
                if conn.opened_count == 2 and not await asyncio.to_thread(
                    refused, forward.local_port
                ):
                    break
                await asyncio.sleep(0.05)
            async with httpx.AsyncClient() as client:
                reply = await client.get(forward.local_url + "hello.txt", timeout=10)
            assert reply.text == "hello from the pod\n"
            assert forwards.list() == [forward]  # same local port, same URL
            await forwards.close()
            assert forwards.list() == [] and conn.holds == 0


@needs_sshd
@pytest.mark.asyncio
async def test_forward_errors(gpu_pod: TestPod, control_dir: Path) -> None:
    async with connected(gpu_pod, control_dir) as conn:
        from gpuoutlet_jupyter.remote import PortForwarder

        forwards = PortForwarder(conn)
        with pytest.raises(ForwardError, match="is not a port"):
            await forwards.open(0)
        with pytest.raises(ForwardError, match="is not a port"):
            await forwards.open("8080")  # type: ignore[arg-type]
        with pytest.raises(ForwardError, match="not an address on the pod"):
            await forwards.open(8080, remote_host="evil host")
        # A local port already taken here: ssh cannot bind it, and says so.
        with socket_listening() as taken:
            with pytest.raises(ForwardError, match=f"Local port {taken} may be in use"):
                await forwards.open(8080, local_port=taken)
        assert forwards.list() == [] and conn.holds == 0


@contextlib.contextmanager
def socket_listening() -> Iterator[int]:
    """A port something listens on here (bound to port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@needs_sshd
@pytest.mark.asyncio
@pytest.mark.parametrize("pod_name", ["gpu_pod", "bare_pod"])
async def test_listening_ports_on_the_pod(
    pod_name: str, request: pytest.FixtureRequest, control_dir: Path, tmp_path: Path
) -> None:
    pod: TestPod = request.getfixturevalue(pod_name)
    async with connected(pod, control_dir) as conn:
        async with web_app(conn, tmp_path / "site") as port:
            ports = await listening_ports(conn)
            mine = [p for p in ports if p.port == port]
            assert [p.address for p in mine] == ["127.0.0.1"]
            assert pod.sshd.port in {p.port for p in ports}
            uses_ss = (await conn.run("command -v ss")).ok
            assert uses_ss == (pod_name == "gpu_pod")  # the bare pod reads /proc/net/tcp
            if uses_ss:
                assert mine[0].process is not None and mine[0].process.startswith("python")
