"""Remote kernels in the REST API and %gpu_kernels, against a real OpenSSH sshd and a real
Jupyter server: the listing and its connection states, Reattach after a (simulated) Jupyter
restart, Shut down, the errors, and one read of the records per change however many viewers.

A "Jupyter restart" here is what the server extension does when Jupyter stops (``detach_all``,
then the kernels are shut down): the kernel stays on its machine, detached.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from helpers.kernel_records import a_record
from helpers.kernels import execute, ready_client, run_ok
from helpers.server import Rest, gpuoutlet_app, server_config, start_extension, until, ws_execute
from helpers.sshd import SSHD, process_alive, sshd_unavailable_reason, start_sshd

from gpuoutlet_jupyter.api import Rental
from gpuoutlet_jupyter.kernel.provisioner import detach_all
from gpuoutlet_jupyter.kernel.records import KernelRecords
from gpuoutlet_jupyter.kernel.specs import KernelSpecWriter
from gpuoutlet_jupyter.rest.kernels import KernelBoard
from gpuoutlet_jupyter.sandbox.testing import SSHKeypair
from gpuoutlet_jupyter.server.handlers import routes as routes_of
from gpuoutlet_jupyter.server.kernel_handlers import kernel_routes
from gpuoutlet_jupyter.ssh import SSHConfigWriter

_REASON = sshd_unavailable_reason()
pytestmark = [
    pytest.mark.skipif(_REASON is not None, reason=_REASON or ""),
    pytest.mark.usefixtures("no_gpuoutlet_env"),
]

RENTAL = "r-rest"
NOTEBOOK = "work/train.ipynb"
# Quick to notice a dead connection (the defaults take 30 s), as in test_kernel_remote.py.
FAST = {
    "heartbeat_interval": 0.5,
    "heartbeat_timeout": 3.0,
    "keepalive_interval": 1,
    "keepalive_count_max": 2,
    "connect_timeout": 5,
    "launch_timeout": 30.0,
}


@pytest.fixture(scope="module")
def sshd_server(
    tmp_path_factory: pytest.TempPathFactory, ssh_keypair: SSHKeypair
) -> Iterator[SSHD]:
    server = start_sshd(tmp_path_factory.mktemp("sshd"), ssh_keypair.public_key)
    yield server
    server.stop()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "gpuoutlet-state"


@pytest.fixture
def jp_server_config(tmp_path: Path) -> dict[str, Any]:
    # No sid: the rentals are not needed here, the kernel endpoints work all the same.
    return server_config(tmp_path)


@pytest.fixture
def kernel_name(
    jp_data_dir: Path, tmp_path: Path, sshd_server: SSHD, ssh_keypair: SSHKeypair, state_dir: Path
) -> str:
    """The rental's kernelspec, as the server writes it (its state dir is the server's)."""
    entry = SSHConfigWriter(tmp_path / "ssh", identity_file=ssh_keypair.private_key).write(
        RENTAL, "127.0.0.1", sshd_server.port
    )
    specs = KernelSpecWriter(
        jp_data_dir / "kernels", python=sys.executable, provisioner_config=FAST, state_dir=state_dir
    )
    rental = Rental.model_validate(
        {
            "id": RENTAL,
            "status": "running",
            "host": "127.0.0.1",
            "port": sshd_server.port,
            "pricePerHourCents": 65,
            "startedAt": "2026-01-01T00:00:00Z",
        }
    )
    return specs.install(rental, entry)


@pytest.fixture
def notebook(jp_root_dir: Path) -> str:
    path = jp_root_dir / NOTEBOOK
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.v4.new_notebook(), str(path))
    return NOTEBOOK


@pytest.fixture
def leftovers(state_dir: Path, sshd_server: SSHD) -> Iterator[None]:
    """A test that failed half-way may leave a kernel detached: end it (no orphans)."""
    yield
    from gpuoutlet_jupyter.kernel.link import end_detached_kernel

    records = KernelRecords(state_dir)
    for record in records.all():
        try:
            asyncio.run(asyncio.wait_for(end_detached_kernel(record, records=records), 30))
        except Exception:  # noqa: S112  # best effort, the next one still gets its try
            continue


async def listing(rest: Rest, **params: str) -> dict[str, Any]:
    response = await rest.api("GET", "remote-kernels", params=params or None)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def start_session(jp_fetch: Any, kernel_name: str, path: str) -> tuple[str, str]:
    """What JupyterLab does when a notebook is opened: a session on the path; (session, kernel)."""
    body = {"path": path, "name": os.path.basename(path), "type": "notebook"}
    reply = await jp_fetch(
        "api", "sessions", method="POST", body=json.dumps({**body, "kernel": {"name": kernel_name}})
    )
    model = json.loads(reply.body)
    return model["id"], model["kernel"]["id"]


async def run_in(jp_ws_fetch: Any, kernel_id: str, code: str) -> str:
    ws = await jp_ws_fetch("api", "kernels", kernel_id, "channels")
    try:
        stdout, reply = await ws_execute(ws, code)
    finally:
        ws.close()
    assert reply["content"]["status"] == "ok", reply["content"]
    return stdout


async def leave_detached(server: Any, kernel_id: str) -> None:
    """As a stopping Jupyter does: detach, then shut the kernel down (it stays on its machine)."""
    assert await detach_all() == 1
    await server.kernel_manager.shutdown_kernel(kernel_id)
    for session in await server.session_manager.list_sessions():
        if session["kernel"]["id"] == kernel_id:
            await server.session_manager.delete_session(session["id"])


@pytest.mark.usefixtures("leftovers")
async def test_a_detached_kernel_is_reattached_to_its_notebook_with_its_variables(
    server: Any, jp_fetch: Any, jp_ws_fetch: Any, kernel_name: str, notebook: str, state_dir: Path
) -> None:
    rest = await start_extension(server)
    assert (await listing(rest))["kernels"] == []
    _, kernel_id = await start_session(jp_fetch, kernel_name, notebook)
    await run_in(jp_ws_fetch, kernel_id, "x = 41 + 1")
    prov = server.kernel_manager.get_kernel(kernel_id).provisioner
    pid, wrapper = prov.remote_pid, prov.wrapper_id

    attached = await listing(rest)
    (view,) = attached["kernels"]
    assert view["wrapper"] == wrapper and view["rentalId"] == RENTAL
    assert view["state"] == "connected" and view["drivenHere"] and view["kernelId"] == kernel_id
    assert view["notebook"].endswith(NOTEBOOK) and view["kernelName"] == kernel_name
    assert view["notice"] == f"kernel on {RENTAL} is connected"
    (one,) = (await rest.api("GET", f"rentals/{RENTAL}/kernels")).json()["kernels"]
    assert one == view
    assert (await rest.api("GET", "rentals/rent_other/kernels")).json()["kernels"] == []
    # The connection key stays in the 0600 record: no reply shows it.
    record = KernelRecords(state_dir).read(wrapper)
    assert record is not None and record.key and record.key not in "\n".join(rest.bodies)

    await leave_detached(server, kernel_id)
    assert process_alive(pid)
    detached = await listing(rest, wait="5", since=str(attached["version"]))
    (view,) = detached["kernels"]
    assert detached["version"] > attached["version"]
    assert view["state"] == "detached" and view["detached"] and not view["drivenHere"]
    assert view["kernelId"] is None and view["detachTimeoutSeconds"] is None
    assert "is detached" in view["notice"] and "until its rental stops" in view["notice"]

    reattached = await rest.api("POST", f"remote-kernels/{wrapper}/reattach")
    assert reattached.status_code == 200, reattached.text
    reply = reattached.json()
    assert reply["path"] == NOTEBOOK and reply["adopted"] is True
    assert reply["kernelName"] == kernel_name and reply["kernel"]["wrapper"] == wrapper
    assert "Reattached" in reply["message"] and NOTEBOOK in reply["message"]
    new_id = reply["kernelId"]
    # JupyterLab opening the notebook finds the session on it (POST answers the existing one).
    session_id, found = await start_session(jp_fetch, kernel_name, notebook)
    assert found == new_id
    assert (await run_in(jp_ws_fetch, new_id, "print(x)")).strip() == "42"
    assert server.kernel_manager.get_kernel(new_id).provisioner.remote_pid == pid

    (view,) = (await listing(rest))["kernels"]
    assert view["state"] == "connected" and view["kernelId"] == new_id
    await jp_fetch("api", "sessions", session_id, method="DELETE")
    await until(lambda: _async(not process_alive(pid)), timeout=15)
    assert (await listing(rest))["kernels"] == []


@pytest.mark.usefixtures("leftovers")
async def test_shut_down_ends_a_detached_kernel_and_refuses_what_it_cannot(
    server: Any, jp_fetch: Any, kernel_name: str
) -> None:
    rest = await start_extension(server)
    kernel_id = await server.kernel_manager.start_kernel(kernel_name=kernel_name)
    prov = server.kernel_manager.get_kernel(kernel_id).provisioner
    pid, wrapper, folder = prov.remote_pid, prov.wrapper_id, prov.remote_folder

    refused = await rest.api("POST", f"remote-kernels/{wrapper}/shutdown")
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "kernel_attached" and error["rentalId"] == RENTAL
    assert "Kernel → Shut Down" in error["message"]
    assert (await rest.api("POST", f"remote-kernels/{wrapper}/reattach")).status_code == 409
    assert process_alive(pid)

    await leave_detached(server, kernel_id)
    done = await rest.api("POST", f"remote-kernels/{wrapper}/shutdown")
    assert done.status_code == 200, done.text
    assert done.json()["wrapper"] == wrapper and done.json()["rentalId"] == RENTAL
    assert await until(lambda: _async(not process_alive(pid)), timeout=15)
    assert not _exists(folder)
    assert (await listing(rest))["kernels"] == []

    for path in (f"remote-kernels/{wrapper}/shutdown", "remote-kernels/abc123/reattach"):
        missing = await rest.api("POST", path)
        assert missing.status_code == 404, missing.text
        assert missing.json()["error"]["code"] == "kernel_not_found"
        assert "%gpu_kernels lists" in missing.json()["error"]["message"]
    odd = await rest.api("POST", "remote-kernels/..%2Fetc/shutdown")
    assert odd.status_code == 404 and odd.json()["error"]["code"] in (
        "kernel_not_found",
        "not_found",
    )


@pytest.mark.usefixtures("leftovers")
async def test_a_dropped_connection_shows_reconnecting_with_its_attempt(
    server: Any, kernel_name: str, sshd_server: SSHD, state_dir: Path
) -> None:
    rest = await start_extension(server)
    kernel_id = await server.kernel_manager.start_kernel(kernel_name=kernel_name)
    prov = server.kernel_manager.get_kernel(kernel_id).provisioner
    try:
        before = await listing(rest)
        record = KernelRecords(state_dir).read(prov.wrapper_id)
        assert record is not None and record.ssh_pid == prov.ssh_pid  # what galata kills
        waiting = asyncio.ensure_future(listing(rest, wait="10", since=str(before["version"])))
        os.kill(sshd_server.pid, signal.SIGSTOP)  # the machine out of reach...
        try:
            os.kill(prov.ssh_pid, signal.SIGKILL)  # ...and the connection dropped
            (view,) = (await waiting)["kernels"]
            assert view["state"] == "reconnecting" and view["attempt"] >= 1
            assert view["notice"].startswith(
                f"kernel on {RENTAL} lost its connection, reconnecting, attempt {view['attempt']}"
            )
            assert not view["detached"] and view["drivenHere"]
        finally:
            os.kill(sshd_server.pid, signal.SIGCONT)

        async def connected() -> bool:
            (view,) = (await listing(rest))["kernels"]
            return bool(view["state"] == "connected")

        await until(connected, timeout=30)
    finally:
        await server.kernel_manager.shutdown_kernel(kernel_id, now=True)


@pytest.mark.usefixtures("leftovers")
async def test_many_viewers_share_one_read_per_change(
    server: Any, kernel_name: str, state_dir: Path
) -> None:
    rest = await start_extension(server)
    board = gpuoutlet_app(server).kernels.board
    version = (await listing(rest))["version"]
    reads = board.reads
    # Twenty sidebars long-poll at once; then a kernel starts (its record is written and
    # changed a few times: connecting, then connected).
    polls = [listing(rest, wait="10", since=str(version)) for _ in range(20)]
    waiting = asyncio.gather(*polls)
    await asyncio.sleep(0.5)
    kernel_id = await server.kernel_manager.start_kernel(kernel_name=kernel_name)
    try:
        answers = await waiting
        assert all(a["version"] > version and len(a["kernels"]) == 1 for a in answers)
        for _ in range(20):
            assert len((await listing(rest))["kernels"]) == 1
        # A read per change (and a second look at a change younger than the folder's clock),
        # not per viewer: 40 requests, a handful of reads.
        assert board.reads - reads <= 8, board.reads - reads
    finally:
        await server.kernel_manager.shutdown_kernel(kernel_id, now=True)


@pytest.mark.usefixtures("leftovers")
async def test_gpu_kernels_in_a_notebook_lists_reattaches_and_shuts_down(
    server: Any, jp_fetch: Any, jp_ws_fetch: Any, kernel_name: str, notebook: str
) -> None:
    """%gpu_kernels in a kernel of the server (its REST API), with real remote kernels."""
    await start_extension(server)
    manager = server.kernel_manager
    local_id = await manager.start_kernel(kernel_name="python3")
    kc = await ready_client(manager.get_kernel(local_id))
    try:
        await run_ok(kc, "%load_ext gpuoutlet_jupyter")
        help_text = (await run_ok(kc, "%gpu_kernels -h")).text
        assert help_text.startswith("usage: %gpu_kernels [-h]") and "--reattach KERNEL" in help_text
        empty = (await run_ok(kc, "%gpu_kernels")).text
        assert "No remote kernel" in empty

        _, first = await start_session(jp_fetch, kernel_name, notebook)
        second = await manager.start_kernel(kernel_name=kernel_name)
        await run_in(jp_ws_fetch, first, "y = 'kept'")
        wrappers = {k: manager.get_kernel(k).provisioner.wrapper_id for k in (first, second)}
        pids = {k: manager.get_kernel(k).provisioner.remote_pid for k in (first, second)}
        listed = (await run_ok(kc, f"t = %gpu_kernels {RENTAL}\nprint(t.to_text())")).text
        assert listed.count("connected") == 2 and RENTAL in listed
        assert all(w in listed for w in wrappers.values())

        assert await detach_all() == 2
        for kernel_id in (first, second):
            await manager.shutdown_kernel(kernel_id)
        for session in await server.session_manager.list_sessions():
            await server.session_manager.delete_session(session["id"])
        listed = (await run_ok(kc, "t = %gpu_kernels\nprint(t.to_text())")).text
        assert all(f"--reattach {w}" in listed for w in wrappers.values())
        assert "2 detached" in listed

        assert "not a kernel id" in await refused(kc, "%gpu_kernels --reattach ../x")
        both = f"%gpu_kernels --reattach {wrappers[first]} --shutdown x"
        assert "cannot go together" in await refused(kc, both)

        back = (await run_ok(kc, f"%gpu_kernels --reattach {wrappers[first]}")).text
        assert "Reattached" in back and NOTEBOOK in back, back
        gone = (await run_ok(kc, f"%gpu_kernels --shutdown {wrappers[second]}")).text
        assert "Shut down" in gone, gone
        assert await until(lambda: _async(not process_alive(pids[second])), timeout=15)
        again = await refused(kc, f"%gpu_kernels --shutdown {wrappers[second]}")
        assert again.startswith("%gpu_kernels: There is no remote kernel"), again

        (session,) = await server.session_manager.list_sessions()
        assert session["path"] == NOTEBOOK
        adopted = session["kernel"]["id"]
        assert (await run_in(jp_ws_fetch, adopted, "print(y)")).strip() == "kept"
        await manager.shutdown_kernel(adopted, now=True)
    finally:
        kc.stop_channels()
        await manager.shutdown_kernel(local_id, now=True)


#: How tools that watch Jupyter's own kernels find its kernels API: galata's request mock (it
#: parses every matching GET as a list of Jupyter kernels), and proxies or activity trackers
#: written the same way. No path of ours may match it.
JUPYTER_KERNELS_API = re.compile(r".*/api/kernels(?!pecs)(?P<id>/[@:\-\w]+)?")


def test_no_endpoint_looks_like_jupyters_kernels_api() -> None:
    routes = [r[0] for r in (*routes_of(None, None), *kernel_routes(None, None, None))]  # type: ignore[arg-type]
    assert any("kernels" in route for route in routes)
    for route in routes:
        example = re.sub(r"\(\?P<\w+>[^)]*\)", "rent_01X", route)
        assert not JUPYTER_KERNELS_API.match(f"/base/{example}?wait=5&since=1"), route


def test_the_board_reads_again_only_when_the_folder_changes(tmp_path: Path) -> None:
    """No server: the board's own bookkeeping, with a hand-written record."""
    board = KernelBoard(tmp_path, interval=0.0)
    version, views = board.snapshot()
    assert views == [] and board.reads == 1
    for _ in range(5):
        board.snapshot()
    # The folder does not exist: nothing to read again (interval 0: every look looks).
    assert board.reads == 1
    records = KernelRecords(tmp_path)
    records.write(a_record("abc123", "rent_x", owner_pid=0))
    version2, views = board.snapshot()
    assert version2 > version and [v["wrapper"] for v in views] == ["abc123"]
    assert views[0]["state"] == "detached" and "key" not in json.dumps(views)


async def _async(value: bool) -> bool:
    return value


async def refused(kc: Any, line: str) -> str:
    """The one paragraph a magic's refusal shows (no traceback)."""
    run = await execute(kc, line)
    assert not run.ok, run.text
    assert "Traceback" not in run.error and "\n" not in run.error.strip(), run.error
    return run.error.strip()


def _exists(path: str) -> bool:
    return os.path.lexists(path)
