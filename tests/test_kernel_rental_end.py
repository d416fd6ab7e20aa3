"""No orphans at the product level: a rental that ends takes its remote kernels with it, the
detached ones included, and leaves no kernel record behind, whatever path ended it.

The server runs against the sandbox, whose pods are real SSH servers on this machine: a kernel
on a pod is a process here, so "no process left" is checked on the processes themselves.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from helpers.counting import CountingTransport
from helpers.kernel_records import a_record
from helpers.server import (
    Rest,
    gpuoutlet_app,
    sandbox_server_config,
    start_extension,
    until,
    ws_execute,
)
from helpers.sshd import process_alive

from gpuoutlet_jupyter.api import AsyncRentalsClient
from gpuoutlet_jupyter.kernel.provisioner import detach_all
from gpuoutlet_jupyter.kernel.records import KernelRecords
from gpuoutlet_jupyter.kernel.rental_end import EndedRentalKernels

pytestmark = [
    pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the OpenSSH client"),
    pytest.mark.usefixtures("no_gpuoutlet_env"),
]


@pytest.fixture
def extra_traits() -> dict[str, Any]:
    return {}


@pytest.fixture
def jp_server_config(
    tmp_path: Path, sandbox: Any, account: Any, ssh_keypair: Any, extra_traits: dict[str, Any]
) -> dict[str, Any]:
    return sandbox_server_config(tmp_path, sandbox, account, ssh_keypair, **extra_traits)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "gpuoutlet-state"  # server_config's


async def rent_running(rest: Rest) -> dict[str, Any]:
    created = await rest.api("POST", "rentals", json={"familyId": "rtx-4090", "gpuCount": 1})
    assert created.status_code == 200, created.text
    rental_id = created.json()["id"]

    async def running() -> Any:
        view = (await rest.api("GET", f"rentals/{rental_id}")).json()
        return view if view["status"] == "running" and view["ssh"] else None

    view: dict[str, Any] = await until(running, timeout=40, interval=0.2)
    return view


async def stopped(rest: Rest, rental_id: str) -> None:
    async def done() -> bool:
        view = (await rest.api("GET", f"rentals/{rental_id}")).json()
        return bool(view["status"] == "stopped")

    await until(done, timeout=40, interval=0.2)


def record_files(state_dir: Path) -> list[str]:
    folder = state_dir / "kernels"
    return sorted(p.name for p in folder.glob("*.json")) if folder.is_dir() else []


async def test_a_stopped_rental_leaves_no_detached_kernel_and_no_record(
    server: Any, jp_fetch: Any, jp_ws_fetch: Any, jp_root_dir: Path, state_dir: Path
) -> None:
    rest = await start_extension(server)
    rental = await rent_running(rest)
    (jp_root_dir / "run.ipynb").write_text(
        json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    )
    body = {"path": "run.ipynb", "name": "run.ipynb", "type": "notebook"}
    reply = await jp_fetch(
        "api",
        "sessions",
        method="POST",
        body=json.dumps({**body, "kernel": {"name": rental["kernel"]}}),
    )
    kernel_id = json.loads(reply.body)["kernel"]["id"]
    ws = await jp_ws_fetch("api", "kernels", kernel_id, "channels")
    try:
        _, executed = await ws_execute(ws, "import time\nx = 1")
    finally:
        ws.close()
    assert executed["content"]["status"] == "ok"
    prov = server.kernel_manager.get_kernel(kernel_id).provisioner
    pids, folder, wrapper = (prov.remote_pid, prov.wrapper_pid), prov.remote_folder, prov.wrapper_id

    # Jupyter goes away: the kernel stays on the pod, detached, and is listed as such.
    assert await detach_all() == 1
    await server.kernel_manager.shutdown_kernel(kernel_id)
    assert all(process_alive(pid) for pid in pids) and _exists(folder)
    (view,) = (await rest.api("GET", "remote-kernels")).json()["kernels"]
    assert view["wrapper"] == wrapper and view["detached"] and view["rentalId"] == rental["id"]

    stop = await rest.api("POST", f"rentals/{rental['id']}/stop")
    assert stop.status_code == 200, stop.text
    await stopped(rest, rental["id"])
    # The machine is gone, and the kernel and its keeper with it; nothing is listed any more.
    await until(lambda: _now(not any(process_alive(pid) for pid in pids)), timeout=20)
    assert not _exists(folder)
    assert (await rest.api("GET", "remote-kernels")).json()["kernels"] == []
    assert record_files(state_dir) == []


@pytest.mark.parametrize("extra_traits", [{"kernelspecs": False}])
async def test_a_rental_stopped_elsewhere_forgets_its_kernel_records(
    server: Any, sandbox: Any, account: Any, state_dir: Path
) -> None:
    """The ended hook alone (no kernelspec writer here to forget them), and a stop that is not
    this server's: the gpuoutlet website's."""
    rest = await start_extension(server)
    rental = await rent_running(rest)
    records = KernelRecords(state_dir)
    records.write(a_record("aaa111", rental["id"], owner_pid=0))  # left by a Jupyter gone
    records.write(a_record("bbb222", rental["id"]))  # driven here
    records.write(a_record("ccc333", "rent_other", owner_pid=0))  # another rental's
    listed = (await rest.api("GET", f"rentals/{rental['id']}/kernels")).json()["kernels"]
    assert {k["wrapper"]: k["state"] for k in listed} == {
        "aaa111": "detached",
        "bbb222": "connected",
    }

    with sandbox.client(account.sid) as http:
        assert http.post(f"/v1/rentals/{rental['id']}/stop").status_code == 200
    await stopped(rest, rental["id"])
    await until(lambda: _now(record_files(state_dir) == ["ccc333.json"]), timeout=10)
    assert [k["wrapper"] for k in (await rest.api("GET", "remote-kernels")).json()["kernels"]] == [
        "ccc333"
    ]


#: No running-rental poll and no reconcile during the test: any upstream request is the reads'.
QUIET = {"running_poll_interval": 3600.0, "reconcile_interval": 3600.0}
VIEWERS = 20


@pytest.mark.parametrize("extra_traits", [QUIET], ids=["quiet"])
async def test_kernel_reads_ask_the_rentals_api_nothing_however_many_viewers(
    server: Any, state_dir: Path
) -> None:
    """The sidebars' kernel listings (plain reads and long-polls, all of a rental's or every
    rental's) are answered from the kernel records alone: not one request to the vendor's API,
    whose 100 a minute are the whole account's."""
    upstream = CountingTransport()
    gpuoutlet_app(server).manager.client_factory = lambda settings: AsyncRentalsClient(
        settings, transport=upstream
    )
    rest = await start_extension(server)
    rental = await rent_running(rest)
    records = KernelRecords(state_dir)
    records.write(a_record("aaa111", rental["id"], owner_pid=0))
    paths = ("remote-kernels", f"rentals/{rental['id']}/kernels")
    version = (await rest.api("GET", "remote-kernels")).json()["version"]
    before = upstream.requests.copy()

    async def viewer(index: int) -> list[str]:
        path = paths[index % 2]
        waited = await rest.api("GET", path, params={"wait": "10", "since": str(version)})
        assert waited.status_code == 200, waited.text
        assert waited.json()["version"] > version
        for _ in range(5):
            read = await rest.api("GET", path)
            assert read.status_code == 200, read.text
        return sorted(k["wrapper"] for k in waited.json()["kernels"])

    viewers = asyncio.gather(*(viewer(i) for i in range(VIEWERS)))
    await asyncio.sleep(0.5)  # every viewer waits: then a kernel appears
    records.write(a_record("bbb222", rental["id"], owner_pid=0))
    assert await viewers == [["aaa111", "bbb222"]] * VIEWERS
    assert upstream.requests == before, upstream.requests - before

    assert (await rest.api("POST", f"rentals/{rental['id']}/stop")).status_code == 200
    await stopped(rest, rental["id"])


@pytest.mark.asyncio
async def test_the_hook_forgets_only_the_ended_rental(tmp_path: Path) -> None:
    records = KernelRecords(tmp_path)
    for wrapper, rental_id in (("a1", "rent_a"), ("a2", "rent_a"), ("b1", "rent_b")):
        records.write(a_record(wrapper, rental_id, owner_pid=0))

    class Ended:
        id = "rent_a"

    await EndedRentalKernels(tmp_path).ended(Ended())
    assert [r.wrapper for r in records.all()] == ["b1"]
    await EndedRentalKernels(tmp_path / "none").ended(Ended())  # no folder: nothing to do


async def _now(value: bool) -> bool:
    return value


def _exists(path: str) -> bool:
    return os.path.lexists(path)
