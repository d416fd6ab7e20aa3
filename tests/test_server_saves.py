"""Saving before every stop, through a real Jupyter server and real sandbox pods.

The pods are the sandbox's: each has its own disk folder, deleted when the rental stops, so
every test here can show that without the save the data would be gone. Transfers go over the
real OpenSSH client (a shared connection per rental); a remote kernel really runs on the pod.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers.server import Rest, sandbox_server_config, start_extension, ws_execute

from gpuoutlet_jupyter.sandbox.testing import SandboxProcess

#: 3 s idle, warned for the last 1.2 s; the server looks at its kernels every 0.05 s.
IDLE = 0.05
WARN = 0.02

pytestmark = pytest.mark.usefixtures("no_gpuoutlet_env")


@pytest.fixture
def saves_dir(tmp_path: Path) -> Path:
    return tmp_path / "saves"


@pytest.fixture
def jp_server_config(
    tmp_path: Path,
    sandbox: Any,
    account: Any,
    ssh_keypair: Any,
    saves_dir: Path,
    control_dir: Path,
    request: pytest.FixtureRequest,
) -> dict[str, Any]:
    traits = getattr(request, "param", {})
    return sandbox_server_config(
        tmp_path,
        sandbox,
        account,
        ssh_keypair,
        idle_warning_minutes=WARN,
        idle_check_interval=0.05,
        saves_dir=str(saves_dir),
        control_dir=str(control_dir),
        save_check_interval=0.2,
        **traits,
    )


async def _json(rest: Rest, method: str, path: str, **kwargs: Any) -> Any:
    response = await rest.api(method, path, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


async def _until(
    rest: Rest, rental_id: str, done: Callable[[dict[str, Any]], bool], timeout: float = 60
) -> dict[str, Any]:
    """The rental once `done` holds, following the REST long-poll (bounded)."""
    view = await _json(rest, "GET", f"rentals/{rental_id}")
    deadline = time.monotonic() + timeout
    while not done(view):
        assert time.monotonic() < deadline, f"not done within {timeout} s: {view}"
        view = await _json(rest, "GET", f"rentals/{rental_id}?since={view['version']}&wait=2")
    return view


def _running(view: dict[str, Any]) -> bool:
    return bool(view["status"] == "running" and view["kernel"])


def _final(view: dict[str, Any]) -> bool:
    return bool(view["status"] in ("stopped", "failed"))


async def _rent(rest: Rest, **body: Any) -> dict[str, Any]:
    created = await _json(
        rest, "POST", "rentals", json={"familyId": "rtx-4090", "gpuCount": 1, **body}
    )
    return await _until(rest, created["id"], _running)


def _pod_home(sandbox: SandboxProcess, rental_id: str) -> Path:
    return Path(sandbox.pod_info(rental_id)["home"])


async def _pod_gone(sandbox: SandboxProcess, rental_id: str) -> None:
    """The pod's disk folder is deleted (a stop destroys it; bounded wait)."""
    for _ in range(200):
        if not sandbox.pod_info(rental_id)["homeExists"]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the pod of {rental_id} still has its disk")


async def test_a_file_the_remote_kernel_wrote_survives_an_idle_stop(
    server: Any, jp_fetch: Any, jp_ws_fetch: Any, sandbox: Any, saves_dir: Path
) -> None:
    rest = await start_extension(server)
    running = await _rent(rest, idleStopMinutes=IDLE, name="exp/42")
    rental_id = running["id"]
    assert running["savePaths"] == ["~/work"] and running["savePathsDefault"] is True
    started = await jp_fetch(
        "api", "kernels", method="POST", body=json.dumps({"name": running["kernel"]})
    )
    kernel_id = json.loads(started.body)["id"]
    ws = await jp_ws_fetch("api", "kernels", kernel_id, "channels")
    try:
        # A relative path: the remote kernel works in the remote workdir (~/work).
        code = (
            "import os\nopen('results.csv', 'w').write('epoch,loss\\n1,0.5\\n')\nprint(os.getcwd())"
        )
        stdout, reply = await ws_execute(ws, code)
        assert reply["content"]["status"] == "ok", reply
    finally:
        ws.close()
    home = _pod_home(sandbox, rental_id)
    assert stdout.strip() == str(home / "work")
    assert (home / "work" / "results.csv").is_file()

    stopped = await _until(rest, rental_id, _final)
    await server.kernel_manager.shutdown_kernel(kernel_id, now=True)
    assert stopped["stopReason"] == "idle"
    await _pod_gone(sandbox, rental_id)
    saved = saves_dir / "exp-42" / "work" / "results.csv"
    assert saved.read_text() == "epoch,loss\n1,0.5\n"
    (save,) = stopped["saves"]
    assert save["reason"] == "idle" and save["complete"] and save["files"] == 1
    assert save["localDir"] == str(saves_dir / "exp-42") and save["error"] is None
    assert "before the idle auto-stop" in save["summary"]
    assert stopped["transfer"]["kind"] == "save" and stopped["transfer"]["state"] == "done"


async def test_stop_saves_first_and_size_says_what_it_would_copy(
    server: Any, sandbox: Any, saves_dir: Path
) -> None:
    rest = await start_extension(server)
    running = await _rent(rest, idleStopMinutes=0, savePaths=["~/work", "outputs", "~/nowhere"])
    rental_id = running["id"]
    assert running["savePaths"] == ["~/work", "~/outputs", "~/nowhere"]
    home = _pod_home(sandbox, rental_id)
    (home / "work" / "model.pt").write_bytes(b"w" * 3000)
    (home / "outputs").mkdir()
    (home / "outputs" / "log.txt").write_text("done\n")
    (home / "work" / ".git").mkdir()
    (home / "work" / ".git" / "HEAD").write_text("x" * 10_000)  # not counted, not saved

    size = await _json(rest, "GET", f"rentals/{rental_id}/save-size")
    assert [(p["path"], p["exists"], p["bytes"]) for p in size["paths"]] == [
        ("~/work", True, 3000 + _dir_bytes(home / "work")),
        ("~/outputs", True, 5 + _dir_bytes(home / "outputs")),
        ("~/nowhere", False, None),
    ]
    assert size["fits"] is True and size["maxSaveBytes"] == 20_000_000_000
    assert size["text"].startswith("~/work (") and "~/nowhere (not on the pod)" in size["text"]

    stopped = await _json(rest, "POST", f"rentals/{rental_id}/stop", json={"save": True})
    (save,) = stopped["saves"]
    assert save["reason"] == "user" and save["files"] == 2 and save["bytes"] == 3005
    assert save["missing"] == ["~/nowhere"] and save["error"] is None
    # <saves_dir>/<the rental's name (automatic here) or id>
    local = Path(save["localDir"])
    assert local.parent == saves_dir
    assert (local / "work" / "model.pt").stat().st_size == 3000
    assert (local / "outputs" / "log.txt").read_text() == "done\n"
    assert not (local / "work" / ".git").exists()
    await _pod_gone(sandbox, rental_id)


def _dir_bytes(folder: Path) -> int:
    """What ``du --apparent-size`` counts for the folders themselves (their entries)."""
    total = 0
    for root, dirs, _files in os.walk(folder):
        dirs[:] = [d for d in dirs if d != ".git"]
        total += os.lstat(root).st_size
    return total


async def test_stop_without_saving_copies_nothing(
    server: Any, sandbox: Any, saves_dir: Path
) -> None:
    rest = await start_extension(server)
    running = await _rent(rest, idleStopMinutes=0)
    (_pod_home(sandbox, running["id"]) / "work" / "a.txt").write_text("a")
    stopped = await _json(rest, "POST", f"rentals/{running['id']}/stop", json={"save": False})
    assert stopped["saves"] == [] and _empty(saves_dir)
    bad = await rest.api("POST", f"rentals/{running['id']}/stop", json={"save": "no"})
    assert bad.status_code == 400 and bad.json()["error"]["problems"][0]["field"] == "save"


def _empty(folder: Path) -> bool:
    return not folder.exists() or not any(folder.iterdir())


@pytest.mark.parametrize("jp_server_config", [{"max_save_bytes": 2500}], indirect=True)
async def test_a_save_over_the_cap_saves_what_fits_and_names_the_rest(
    server: Any, sandbox: Any, saves_dir: Path
) -> None:
    rest = await start_extension(server)
    running = await _rent(rest, idleStopMinutes=0, name="capped")
    work = _pod_home(sandbox, running["id"]) / "work"
    for name, size in (("small.bin", 1000), ("mid.bin", 1400), ("big.bin", 2000)):
        (work / name).write_bytes(b"x" * size)
    size = await _json(rest, "GET", f"rentals/{running['id']}/save-size")
    assert size["fits"] is False and size["maxSaveBytes"] == 2500

    stopped = await _json(rest, "POST", f"rentals/{running['id']}/stop")
    (save,) = stopped["saves"]
    # The smallest first: 1000 + 1400 fit under 2500; big.bin is named as left out.
    assert sorted(p.name for p in (saves_dir / "capped" / "work").iterdir()) == [
        "mid.bin",
        "small.bin",
    ]
    assert save["complete"] is False and save["leftOutFiles"] == 1
    assert save["leftOutBytes"] == 2000 and save["bytes"] == 2400
    assert "left out over the byte cap" in save["summary"] and "2.5 KB" in save["summary"]
    await _pod_gone(sandbox, running["id"])


async def test_a_failing_save_before_a_user_stop_is_shown_and_the_stop_happens(
    server: Any, sandbox: Any, account: Any, tmp_path: Path
) -> None:
    rest = await start_extension(server)
    running = await _rent(rest, idleStopMinutes=0)
    rental_id = running["id"]
    # The rental's SSH entry now points at a port nobody listens on: the save cannot connect.
    entry = tmp_path / "ssh" / "gpuoutlet" / f"{rental_id}.conf"
    text = entry.read_text()
    entry.write_text(text.replace(f"Port {running['port']}", "Port 1"))

    stopped = await _json(rest, "POST", f"rentals/{rental_id}/stop")
    assert stopped["status"] in ("stopping", "stopped")
    (save,) = stopped["saves"]
    assert save["error"] and save["files"] == 0 and not save["complete"]
    assert "Could not" in save["summary"] or "failed" in save["summary"]
    final = await _until(rest, rental_id, _final)
    assert final["saves"][0]["error"] == save["error"]
    with sandbox.client(account.sid) as http:
        assert http.get(f"/v1/rentals/{rental_id}").json()["status"] == "stopped"


async def test_a_save_ahead_of_gpuoutlets_auto_stop(
    server: Any, sandbox: Any, saves_dir: Path
) -> None:
    rest = await start_extension(server)
    # Auto-stopped after 6 minutes: within the 10 minutes of warning from the start.
    running = await _rent(rest, idleStopMinutes=0, autoStopAfterHours=0.1, name="auto")
    assert running["autoStopAt"] is not None
    (_pod_home(sandbox, running["id"]) / "work" / "w.txt").write_text("weights")

    def saved(view: dict[str, Any]) -> bool:
        return any(s["reason"] == "auto_stop" for s in view["saves"])

    view = await _until(rest, running["id"], saved)
    assert view["status"] == "running"  # saved ahead, while it still runs
    assert (saves_dir / "auto" / "work" / "w.txt").read_text() == "weights"
    sandbox.advance(7 * 60)  # gpuoutlet's own stop, which asks nobody
    stopped = await _until(rest, running["id"], _final)
    await _pod_gone(sandbox, running["id"])
    assert [s["reason"] for s in stopped["saves"]] == ["auto_stop"]
    assert (saves_dir / "auto" / "work" / "w.txt").read_text() == "weights"


# Running rentals refreshed every 2 s (not the fixture's 0.2 s, which alone would spend the
# whole request budget and leave none for the balance's background reads).
@pytest.mark.parametrize(
    "jp_server_config",
    [{"wallet_check_interval": 0.2, "running_poll_interval": 2.0}],
    indirect=True,
)
async def test_a_save_ahead_of_the_wallet_reaching_zero(
    server: Any, sandbox: Any, saves_dir: Path
) -> None:
    rest = await start_extension(server)
    running = await _rent(rest, idleStopMinutes=0, name="wallet")
    (_pod_home(sandbox, running["id"]) / "work" / "w.txt").write_text("late results")
    wallet = await _json(rest, "GET", "wallet")
    hours = wallet["totalCents"] / wallet["burnCentsPerHour"]
    # Leave about ten minutes of burn in the wallet: gpuoutlet will stop the pod at $0.
    sandbox.advance(int((hours - 10 / 60) * 3600))

    def saved(view: dict[str, Any]) -> bool:
        return any(s["reason"] == "wallet" for s in view["saves"])

    view = await _until(rest, running["id"], saved, timeout=90)
    assert view["status"] == "running"
    assert (saves_dir / "wallet" / "work" / "w.txt").read_text() == "late results"
    sandbox.advance(15 * 60)  # $0: gpuoutlet stops every pod
    stopped = await _until(rest, running["id"], _final)
    await _pod_gone(sandbox, running["id"])
    assert [s["reason"] for s in stopped["saves"]] == ["wallet"]
    assert "ahead of the wallet reaching $0" in stopped["saves"][0]["summary"]
