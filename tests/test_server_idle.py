"""Idle auto-stop through a real Jupyter server: its own kernel manager is the evidence.

A rental's remote kernel really runs on the sandbox's pod (through the `gpuoutlet-ssh`
provisioner); a `time.sleep` cell keeps the rental alive, an idle rental is warned and then
stopped with its SSH entry and kernelspec, and "keep it" (REST) restarts the timer. Idle times
are fractions of a minute and the sandbox's clock runs 60× fast; nothing is timed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers.server import (
    Rest,
    sandbox_server_config,
    start_extension,
    until,
    ws_execute,
)

from gpuoutlet_jupyter.kernel.specs import kernel_name_for
from gpuoutlet_jupyter.sandbox.testing import SandboxProcess

#: 3 s idle, the last 1.2 s of it warned; the server looks at its kernels every 0.05 s.
IDLE = 0.05
WARN = 0.02
#: The server's default for rentals that do not say (minutes).
DEFAULT = 30.0

# Nothing from the developer's own environment or credentials file leaks into these tests.
pytestmark = pytest.mark.usefixtures("no_gpuoutlet_env")


@pytest.fixture(scope="module")
def sandbox(fast_sandbox: SandboxProcess) -> SandboxProcess:
    return fast_sandbox


@pytest.fixture
def ssh_dir(tmp_path: Path) -> Path:
    return tmp_path / "ssh"


@pytest.fixture
def jp_server_config(
    tmp_path: Path, sandbox: Any, account: Any, ssh_keypair: Any
) -> dict[str, Any]:
    return sandbox_server_config(
        tmp_path,
        sandbox,
        account,
        ssh_keypair,
        idle_stop_minutes=DEFAULT,
        idle_warning_minutes=WARN,
        idle_check_interval=0.05,
    )


async def _json(rest: Rest, method: str, path: str, **kwargs: Any) -> Any:
    response = await rest.api(method, path, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


async def _history(
    rest: Rest, rental_id: str, done: Callable[[dict[str, Any]], bool], timeout: float = 60
) -> list[dict[str, Any]]:
    """Every state the REST long-poll reports until `done` (bounded: an assertion)."""
    seen = [await _json(rest, "GET", f"rentals/{rental_id}")]
    deadline = time.monotonic() + timeout
    while not done(seen[-1]):
        assert time.monotonic() < deadline, f"not done within {timeout} s: {seen[-1]}"
        since = seen[-1]["version"]
        seen.append(await _json(rest, "GET", f"rentals/{rental_id}?since={since}&wait=2"))
    return seen


def _warned(view: dict[str, Any]) -> bool:
    return bool(view["idleStop"] and view["idleStop"]["warning"])


def _running(view: dict[str, Any]) -> bool:
    return bool(view["status"] == "running" and view["kernel"])


def _final(view: dict[str, Any]) -> bool:
    return bool(view["status"] in ("stopped", "failed"))


async def _create(rest: Rest, **body: Any) -> dict[str, Any]:
    return await _json(
        rest, "POST", "rentals", json={"familyId": "rtx-4090", "gpuCount": 1, **body}
    )


async def test_an_idle_rental_is_warned_then_stopped_with_its_ssh_entry_and_kernel(
    server: Any, ssh_dir: Path, jp_data_dir: Path, sandbox: Any, account: Any
) -> None:
    rest = await start_extension(server)
    created = await _create(rest, idleStopMinutes=IDLE, name="idle")
    assert created["idleStop"]["minutes"] == IDLE
    running = (await _history(rest, created["id"], _running))[-1]
    entry = ssh_dir / "gpuoutlet" / f"{created['id']}.conf"
    spec = jp_data_dir / "kernels" / running["kernel"]
    assert entry.is_file() and spec.is_dir()

    seen = await _history(rest, created["id"], _final)
    statuses = [(v["status"], _warned(v)) for v in seen]
    assert ("running", True) in statuses, statuses
    assert statuses.index(("running", True)) < next(
        i for i, (status, _) in enumerate(statuses) if status in ("stopping", "stopped")
    ), statuses
    assert seen[-1]["stopReason"] == "idle" and "idle auto-stop" in seen[-1]["phase"]
    assert not entry.exists() and not spec.exists()
    with sandbox.client(account.sid) as http:
        assert http.get(f"/v1/rentals/{created['id']}").json()["status"] == "stopped"
    assert account.sid not in "\n".join(rest.bodies)


async def test_a_cell_sleeping_on_the_remote_kernel_keeps_the_rental(
    server: Any, jp_fetch: Any, jp_ws_fetch: Any
) -> None:
    rest = await start_extension(server)
    created = await _create(rest, idleStopMinutes=IDLE)
    running = (await _history(rest, created["id"], _running))[-1]
    assert running["kernel"] == kernel_name_for(created["id"])
    started = await jp_fetch(
        "api", "kernels", method="POST", body=json.dumps({"name": running["kernel"]})
    )
    kernel_id = json.loads(started.body)["id"]
    ws = await jp_ws_fetch("api", "kernels", kernel_id, "channels")
    try:
        sleep = 4 * IDLE * 60
        cell = asyncio.ensure_future(
            ws_execute(ws, f"import time\ntime.sleep({sleep})\nprint('slept')", timeout=60)
        )

        async def busy() -> Any:
            view = await _json(rest, "GET", f"rentals/{created['id']}")
            return view if view["idleStop"]["busyKernels"] == 1 else None

        during = await until(busy, timeout=30)
        assert during["idleStop"]["kernels"] == 1
        # The cell runs for four idle times: no warning, no stop while it does.
        while not cell.done():
            view = await _json(rest, "GET", f"rentals/{created['id']}")
            assert view["status"] == "running" and not _warned(view), view["idleStop"]
            await asyncio.sleep(0.2)
        stdout, reply = await cell
        assert reply["content"]["status"] == "ok" and stdout.strip() == "slept"
        after = await _json(rest, "GET", f"rentals/{created['id']}")
        assert after["status"] == "running" and after["idleStop"]["busyKernels"] == 0

        # Then nothing runs: warned, and stopped, the kernel on it notwithstanding.
        seen = await _history(rest, created["id"], _final)
        assert any(_warned(v) for v in seen) and seen[-1]["stopReason"] == "idle"
    finally:
        ws.close()
        await server.kernel_manager.shutdown_kernel(kernel_id, now=True)


async def test_keep_it_restarts_the_timer_over_rest(server: Any) -> None:
    rest = await start_extension(server)
    created = await _create(rest, idleStopMinutes=IDLE)
    warning = (await _history(rest, created["id"], _warned))[-1]
    kept = await _json(rest, "POST", f"rentals/{created['id']}/keep", auth="kernel")
    assert kept["status"] == "running" and kept["idleStop"]["warning"] is False
    assert kept["idleStop"]["stopAt"] > warning["idleStop"]["stopAt"]
    assert kept["idleStop"]["secondsLeft"] > WARN * 60

    # Warned again later: this time keep it for longer, through the body.
    await _history(rest, created["id"], _warned)
    longer = await _json(
        rest, "POST", f"rentals/{created['id']}/keep", json={"idleStopMinutes": 10}
    )
    assert longer["idleStop"]["minutes"] == 10 and longer["idleStop"]["secondsLeft"] > 500
    await _json(rest, "POST", f"rentals/{created['id']}/stop")
    await _history(rest, created["id"], _final)

    refused = await rest.api("POST", f"rentals/{created['id']}/keep")
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "not_active" and error["state"] == "stopped"
    assert "nothing more" in error["message"]


async def test_idle_settings_in_the_rest_api(server: Any, sandbox: Any, account: Any) -> None:
    rest = await start_extension(server)
    status = await _json(rest, "GET", "status")
    assert status["idleStopMinutes"] == DEFAULT and status["idleWarnMinutes"] == WARN

    default = await _create(rest)
    assert default["idleStop"]["minutes"] == DEFAULT
    off = await _create(rest, idleStopMinutes=0)
    assert off["idleStop"] is None

    with sandbox.client(account.sid) as http:
        before = len(http.get("/v1/rentals").json()["rentals"])
    bad = await rest.api(
        "POST", "rentals", json={"familyId": "rtx-4090", "gpuCount": 3, "idleStopMinutes": "x"}
    )
    assert bad.status_code == 400, bad.text
    fields = {p["field"] for p in bad.json()["error"]["problems"]}
    assert fields == {"gpuCount", "idleStopMinutes"}
    with sandbox.client(account.sid) as http:
        assert len(http.get("/v1/rentals").json()["rentals"]) == before  # nothing was sent

    unknown = await rest.api("POST", f"rentals/{off['id']}/keep", json={"minutes": 5})
    assert unknown.status_code == 400 and "minutes" in unknown.text
    negative = await rest.api("POST", f"rentals/{off['id']}/keep", json={"idleStopMinutes": -1})
    assert negative.status_code == 400 and "idleStopMinutes" in negative.text
    not_json = await rest.api("POST", f"rentals/{off['id']}/keep", content=b"[1]")
    assert not_json.status_code == 400
    anonymous = await rest.api("POST", f"rentals/{off['id']}/keep", auth=None)
    assert anonymous.status_code == 403
    for rental in (default, off):
        await _json(rest, "POST", f"rentals/{rental['id']}/stop")


def test_kernel_activity_is_read_per_rental_from_the_kernel_manager() -> None:
    """Kernels are matched to rentals by kernelspec name; local kernels and odd ids are ignored."""
    from datetime import datetime, timedelta, timezone

    from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager

    from gpuoutlet_jupyter.server.activity import KernelManagerActivity

    km = AsyncMappingKernelManager()
    then = datetime(2026, 11, 26, 8, 0, tzinfo=timezone.utc)
    for kernel_id, name, state, when in (
        ("a", kernel_name_for("rent_A1"), "idle", then),
        ("b", kernel_name_for("rent_A1"), "busy", then + timedelta(seconds=30)),
        ("c", "python3", "busy", then + timedelta(hours=1)),
        (
            "d",
            kernel_name_for("rent_B2"),
            "idle",
            (then + timedelta(seconds=5)).replace(tzinfo=None),
        ),
    ):
        kernel = km.kernel_manager_factory(kernel_name=name)
        kernel.execution_state, kernel.last_activity = state, when
        km._kernels[kernel_id] = kernel
    looked = KernelManagerActivity(km)(["rent_A1", "rent_B2", "rent_C3", "../bad"])
    assert looked["rent_A1"].kernels == 2 and looked["rent_A1"].busy == 1
    assert looked["rent_A1"].last_activity == (then + timedelta(seconds=30)).timestamp()
    # A naive time from an older jupyter_server is UTC.
    assert looked["rent_B2"].last_activity == (then + timedelta(seconds=5)).timestamp()
    assert looked["rent_C3"].kernels == 0 and looked["rent_C3"].last_activity is None
    assert looked["../bad"].kernels == 0
