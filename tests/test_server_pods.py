"""A rental's pod through a real Jupyter server: GPU telemetry, ports and forwards, and the
GPU-aware idle stop, against the sandbox's pods (real SSH servers with a simulated nvidia-smi
whose utilisation follows the CPU load of the pod's processes).

Every pod command rides on the rental's one shared OpenSSH connection; a busy loop started on a
pod over plain ssh makes its GPU busy. Nothing is timed: waits are bounded polls.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers.pod_commands import BUSY, free_port, on_pod, web_server
from helpers.server import Rest, gpuoutlet_app, server_config, start_extension, until
from helpers.sshd import process_alive

from gpuoutlet_jupyter.notebook.discovery import ServerLocation
from gpuoutlet_jupyter.notebook.rest import ServerBackend
from gpuoutlet_jupyter.notebook.top import GpuTopWidget
from gpuoutlet_jupyter.remote import RentalRemote
from gpuoutlet_jupyter.sandbox.testing import SandboxProcess

pytestmark = pytest.mark.usefixtures("no_gpuoutlet_env")

#: Telemetry every 0.3 s here (5 s for real): a look outlasts its request by 0.9 s.
INTERVAL = 0.3


@pytest.fixture(scope="module")
def sandbox(fast_sandbox: SandboxProcess) -> SandboxProcess:
    return fast_sandbox


@pytest.fixture
def extra_traits() -> dict[str, Any]:
    return {}


@pytest.fixture
def jp_server_config(
    tmp_path: Path,
    sandbox: Any,
    account: Any,
    ssh_keypair: Any,
    control_dir: Path,
    extra_traits: dict[str, Any],
) -> dict[str, Any]:
    config = server_config(
        tmp_path,
        api_url=sandbox.url,
        sid=account.sid,
        identity_file=str(ssh_keypair.private_key),
        control_dir=str(control_dir),
        telemetry_interval=INTERVAL,
        kernelspecs=False,
        **extra_traits,
    )
    config["ServerApp"]["jpserver_extensions"]["jupyter_server_proxy"] = True
    return config


async def _json(rest: Rest, method: str, path: str, **kwargs: Any) -> Any:
    response = await rest.api(method, path, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


async def _running(rest: Rest, **body: Any) -> dict[str, Any]:
    created = await _json(
        rest, "POST", "rentals", json={"familyId": "rtx-4090", "gpuCount": 1, **body}
    )

    async def ready() -> Any:
        view = await _json(rest, "GET", f"rentals/{created['id']}")
        return view if view["status"] == "running" and view["ssh"].get("alias") else None

    running: dict[str, Any] = await until(ready, timeout=60, interval=0.2)
    return running


def _remote(server: Any, rental_id: str) -> RentalRemote | None:
    service = gpuoutlet_app(server).manager.host.running
    assert service is not None
    return service.pods.remotes.get(rental_id)


async def test_telemetry_is_sampled_while_looked_at_and_follows_a_busy_loop_on_the_pod(
    server: Any, sandbox: Any
) -> None:
    rest = await start_extension(server)
    rental = await _running(rest, name="telemetry")
    rid = rental["id"]

    first = await _json(rest, "GET", f"rentals/{rid}/telemetry", params={"since": 0, "wait": 10})
    assert first["state"] == "sampling" and first["sampling"], first
    assert first["gpuCount"] == 1 and "4090" in first["gpuModel"], first
    reading = first["samples"][-1]["gpus"][0]
    assert reading["memoryTotal"] > 0 and reading["utilization"] is not None

    async with on_pod(rental["ssh"], BUSY):
        state = {"since": first["version"]}

        async def busy() -> Any:
            view = await _json(
                rest,
                "GET",
                f"rentals/{rid}/telemetry",
                params={"since": state["since"], "wait": 5},
            )
            state["since"] = view["version"]
            return view if view["samples"][-1]["gpus"][0]["utilization"] >= 30 else None

        seen = await until(busy, timeout=40, interval=0)
    assert len(seen["samples"]) >= 2  # the history (the last ten minutes) comes along

    # Nobody looks any more: the sampler stops once the last look has run out.
    remote = _remote(server, rid)
    assert remote is not None

    async def stopped() -> bool:
        return not remote.telemetry.running

    await until(stopped, timeout=20, interval=0.1)
    taken = remote.telemetry.samples_taken
    await asyncio.sleep(4 * INTERVAL)
    assert remote.telemetry.samples_taken == taken


async def test_viewers_share_one_sampler(server: Any, sandbox: Any) -> None:
    rest = await start_extension(server)
    rental = await _running(rest, name="shared")
    rid = rental["id"]
    first = await _json(rest, "GET", f"rentals/{rid}/telemetry", params={"since": 0, "wait": 10})
    remote = _remote(server, rid)
    assert remote is not None
    # Ten viewers wait for the next sample; between them, the pod is asked a few times only.
    before = remote.telemetry.samples_taken
    params = {"since": first["version"], "wait": 10}
    views = await asyncio.gather(
        *(_json(rest, "GET", f"rentals/{rid}/telemetry", params=params) for _ in range(10))
    )
    assert all(v["version"] > first["version"] for v in views)
    assert remote.telemetry.subscribers == 1
    assert remote.telemetry.samples_taken - before <= 3, remote.telemetry.samples_taken - before


async def test_a_pod_web_server_opens_through_a_forward_and_the_proxy_and_all_ends_with_stop(
    server: Any, sandbox: Any
) -> None:
    rest = await start_extension(server)
    status = await _json(rest, "GET", "status")
    assert status["proxyBase"] == "/a%40b/proxy/", status  # pytest-jupyter's base_url
    rental = await _running(rest, name="ports", templateId="a1111")
    rid = rental["id"]
    port = free_port()
    async with on_pod(rental["ssh"], web_server(port)):

        async def listening() -> Any:
            ports = await _json(rest, "GET", f"rentals/{rid}/ports")
            return ports if any(p["port"] == port for p in ports["listening"]) else None

        ports = await until(listening, timeout=30, interval=0.2)
        assert [(k["port"], k["listening"]) for k in ports["known"]] == [(7860, False)]

        forward = await _json(rest, "POST", f"rentals/{rid}/forwards", json={"port": port})
        assert forward["remotePort"] == port and forward["localPort"] != port
        assert forward["proxyPath"] == f"/a%40b/proxy/{forward['localPort']}/"
        again = await _json(rest, "POST", f"rentals/{rid}/forwards", json={"port": port})
        assert again["localPort"] == forward["localPort"]  # one forward per pod port

        async with httpx.AsyncClient(timeout=10, trust_env=False) as http:
            direct = await http.get(f"{forward['localUrl']}hello.txt")
        assert direct.text.strip() == "hello-from-pod"
        proxied = await rest.call("GET", f"proxy/{forward['localPort']}/hello.txt")
        assert proxied.status_code == 200 and proxied.text.strip() == "hello-from-pod"

        remote = _remote(server, rid)
        assert remote is not None and remote.connection.master_pid is not None
        master = remote.connection.master_pid
        listed = await _json(rest, "GET", f"rentals/{rid}/forwards")
        assert [f["localPort"] for f in listed["forwards"]] == [forward["localPort"]]

        await _json(rest, "POST", f"rentals/{rid}/stop")

        async def ended() -> Any:
            view = await _json(rest, "GET", f"rentals/{rid}")
            return view["status"] == "stopped" and _remote(server, rid) is None

        await until(ended, timeout=30, interval=0.2)
    # The forward and the shared connection are gone with the rental.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", forward["localPort"]), 2).close()
    assert not process_alive(master)
    refused = await rest.api("GET", f"rentals/{rid}/telemetry")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "pod_not_reachable"


async def test_bad_ports_are_refused_with_what_to_do(server: Any, sandbox: Any) -> None:
    rest = await start_extension(server)
    rental = await _running(rest, name="bad-ports")
    rid = rental["id"]
    for body in ({}, {"port": 0}, {"port": "http"}, {"port": 80, "host": "x"}):
        response = await rest.api("POST", f"rentals/{rid}/forwards", json=body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"]["code"] == "validation_error"
    closed = await rest.api("DELETE", f"rentals/{rid}/forwards/70000")
    assert closed.status_code == 400
    await _json(rest, "POST", f"rentals/{rid}/stop")


@pytest.mark.parametrize(
    "extra_traits",
    # 6 s idle: a busy loop starved of CPU that long on a loaded machine would look idle.
    [{"idle_stop_minutes": 0.1, "idle_warning_minutes": 0.01, "idle_check_interval": 0.05}],
)
async def test_idle_gpu_util_keeps_a_rental_with_a_busy_gpu_and_no_kernel_alive(
    server: Any, sandbox: Any
) -> None:
    rest = await start_extension(server)
    bad = await rest.api(
        "POST",
        "rentals",
        json={"familyId": "rtx-4090", "gpuCount": 1, "idleStopMinutes": 0, "idleGpuUtil": 10},
    )
    assert bad.status_code == 400 and "idleGpuUtil" in bad.text
    watched = await _running(rest, name="gpu-busy", idleGpuUtil=10)
    assert watched["idleStop"]["gpuUtil"] == 10
    async with on_pod(watched["ssh"], BUSY):
        # A rental without a GPU threshold, alike otherwise, is stopped for being idle...
        control = await _running(rest, name="kernels-only", idleGpuUtil=0)
        assert control["idleStop"]["gpuUtil"] is None

        async def control_stopped() -> Any:
            view = await _json(rest, "GET", f"rentals/{control['id']}")
            return view["status"] in ("stopping", "stopped")

        await until(control_stopped, timeout=60, interval=0.2)
        # ... while the one whose GPU is busy runs on, though no kernel ever ran on it.
        view = await _json(rest, "GET", f"rentals/{watched['id']}")
        assert view["status"] == "running", view
        assert view["idleStop"]["kernels"] == 0
        assert (view["idleStop"]["gpuPeak"] or 0) >= 10, view["idleStop"]
    # The job ends: the rental is idle now, and stopped.

    async def stopped() -> Any:
        view = await _json(rest, "GET", f"rentals/{watched['id']}")
        return view if view["status"] in ("stopping", "stopped") else None

    final = await until(stopped, timeout=60, interval=0.2)
    assert final["stopReason"] == "idle"


async def test_the_gpu_top_widget_follows_samples_until_stopped_or_the_rental_ends(
    server: Any, sandbox: Any
) -> None:
    rest = await start_extension(server)
    rental = await _running(rest, name="widget")
    rid = rental["id"]
    backend = ServerBackend(ServerLocation(rest.url, rest.kernel_token, "the test"))
    first = GpuTopWidget(backend, rid, wait=5).start()
    assert first.running

    async def two_samples() -> bool:
        table = first.table
        return table is not None and table.view["version"] >= 2

    await until(two_samples, timeout=30)
    assert "RTX 4090" in first.html.value and "<table>" in first.html.value

    # A second %gpu_top on the same rental replaces the first; its Stop button ends it.
    second = GpuTopWidget(backend, rid, wait=5).start()
    await asyncio.sleep(0)
    assert not first.running and first.stop_button.disabled
    second.stop_button.click()
    await asyncio.sleep(0)
    assert not second.running and "Stopped watching" in second.status.value

    # The rental ends while a third one watches: it says so and stops.
    third = GpuTopWidget(backend, rid, wait=5).start()
    await _json(rest, "POST", f"rentals/{rid}/stop")

    async def ended() -> bool:
        return not third.running

    await until(ended, timeout=30)
    assert "only a running rental's pod" in third.status.value


@pytest.mark.parametrize(
    "extra_traits",
    [{"idle_stop_minutes": 0.05, "idle_warning_minutes": 0.02, "idle_check_interval": 0.05}],
)
async def test_a_pod_without_nvidia_smi_is_idle_stopped_on_its_kernels_and_says_why(
    server: Any, sandbox: Any
) -> None:
    rest = await start_extension(server)
    sandbox.set_faults({"podHiddenCommands": ["nvidia-smi"]})
    try:
        rental = await _running(rest, name="no-smi", idleGpuUtil=20)
    finally:
        sandbox.set_faults({})
    rid = rental["id"]
    seen: list[dict[str, Any]] = []

    async def stopped() -> Any:
        view = await _json(rest, "GET", f"rentals/{rid}")
        seen.append(view)
        return view["status"] in ("stopping", "stopped")

    await until(stopped, timeout=60, interval=0.1)
    problems = {v["idleStop"]["gpuProblem"] for v in seen if v["status"] == "running"}
    assert any(p and "no nvidia-smi" in p for p in problems), problems
    telemetry = await rest.api("GET", f"rentals/{rid}/telemetry")
    assert telemetry.status_code == 409  # it has ended
