"""Uploads, downloads and the working folder through the server's REST API, on sandbox pods.

A transfer is a job with its progress on the rental; the pods are the sandbox's own (their
disk is a local folder, so both ends are compared file by file). Big files are sparse, and
``bwlimit`` makes a transfer last long enough for its progress to be seen.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers.server import Rest, sandbox_server_config, start_extension, ws_execute

from gpuoutlet_jupyter.remote.ignore import PARTIAL_DIR
from gpuoutlet_jupyter.sandbox.testing import SandboxProcess

pytestmark = pytest.mark.usefixtures("no_gpuoutlet_env")
MB = 1_000_000


@pytest.fixture
def jp_server_config(
    tmp_path: Path, sandbox: Any, account: Any, ssh_keypair: Any, control_dir: Path
) -> dict[str, Any]:
    return sandbox_server_config(
        tmp_path,
        sandbox,
        account,
        ssh_keypair,
        saves_dir=str(tmp_path / "saves"),
        control_dir=str(control_dir),
        save_check_interval=0.2,
    )


async def _json(rest: Rest, method: str, path: str, **kwargs: Any) -> Any:
    response = await rest.api(method, path, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


async def _rental_until(
    rest: Rest, rental_id: str, done: Callable[[dict[str, Any]], bool], timeout: float = 60
) -> dict[str, Any]:
    view = await _json(rest, "GET", f"rentals/{rental_id}")
    deadline = time.monotonic() + timeout
    while not done(view):
        assert time.monotonic() < deadline, f"not done within {timeout} s: {view}"
        view = await _json(rest, "GET", f"rentals/{rental_id}?since={view['version']}&wait=2")
    return view


async def _transfer_until_done(
    rest: Rest, rental_id: str, timeout: float = 60
) -> list[dict[str, Any]]:
    """Every state of the rental's transfer that the long-poll reports, until it ended."""
    reply = await _json(rest, "GET", f"rentals/{rental_id}/transfer")
    seen = [reply["transfer"]]
    deadline = time.monotonic() + timeout
    while seen[-1] is None or seen[-1]["state"] == "running":
        assert time.monotonic() < deadline, f"not done within {timeout} s: {seen[-1]}"
        reply = await _json(
            rest, "GET", f"rentals/{rental_id}/transfer?since={reply['version']}&wait=2"
        )
        seen.append(reply["transfer"])
    return seen


async def _rent(rest: Rest, **body: Any) -> dict[str, Any]:
    created = await _json(
        rest, "POST", "rentals", json={"familyId": "rtx-4090", "gpuCount": 1, **body}
    )
    return await _rental_until(rest, created["id"], lambda v: bool(v["kernel"]))


def _home(sandbox: SandboxProcess, rental_id: str) -> Path:
    return Path(sandbox.pod_info(rental_id)["home"])


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_a_200_mb_upload_and_download_with_progress(
    server: Any, sandbox: Any, tmp_path: Path
) -> None:
    rest = await start_extension(server)
    running = await _rent(rest)
    rental_id = running["id"]
    local = tmp_path / "project"
    local.mkdir()
    (local / "data.bin").touch()
    os.truncate(local / "data.bin", 200 * MB)  # sparse: made at once, 200 MB long
    (local / "notes.txt").write_text("hello")
    started = await _json(
        rest,
        "POST",
        f"rentals/{rental_id}/transfer",
        json={"direction": "up", "localDir": str(local), "bwlimit": 80 * MB},
    )
    assert started["transfer"]["kind"] == "upload" and started["transfer"]["state"] == "running"
    busy = await rest.api(
        "POST", f"rentals/{rental_id}/transfer", json={"direction": "up", "localDir": str(local)}
    )
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "transfer_running"

    seen = await _transfer_until_done(rest, rental_id)
    last = seen[-1]
    assert last["state"] == "done" and last["bytesDone"] == 200 * MB + 5
    assert last["method"] == "rsync" and last["remoteDirs"] == ["~/work"]
    moving = [t for t in seen[:-1] if t and 0 < t["bytesDone"] < 200 * MB]
    assert moving, seen  # progress between the start and the end
    assert moving[-1]["rate"] > 0 and moving[-1]["bytesTotal"] == 200 * MB + 5
    done = [t["bytesDone"] for t in seen if t]
    assert done == sorted(done)
    pod = _home(sandbox, rental_id) / "work"
    assert (pod / "data.bin").stat().st_size == 200 * MB
    assert (pod / "notes.txt").read_text() == "hello"

    # Results made on the pod come back; what is newer here is kept.
    (pod / "results.txt").write_text("loss 0.1")
    back = tmp_path / "back"
    await _json(
        rest,
        "POST",
        f"rentals/{rental_id}/transfer",
        json={"direction": "down", "localDir": str(back)},
    )
    down = (await _transfer_until_done(rest, rental_id))[-1]
    assert down["state"] == "done" and down["kind"] == "download"
    assert (back / "results.txt").read_text() == "loss 0.1"
    assert (back / "data.bin").stat().st_size == 200 * MB
    assert "Downloaded 3 file(s)" in down["summary"]


async def test_a_pod_without_rsync_uses_a_tar_stream(
    server: Any, sandbox: Any, tmp_path: Path
) -> None:
    sandbox.set_faults(podHiddenCommands=["rsync"])
    rest = await start_extension(server)
    running = await _rent(rest, name="no rsync")
    rental_id = running["id"]
    local = tmp_path / "src"
    (local / "sub").mkdir(parents=True)
    (local / "a.py").write_text("print(1)\n")
    (local / "sub" / "b.bin").write_bytes(os.urandom(300_000))
    await _json(
        rest,
        "POST",
        f"rentals/{rental_id}/transfer",
        json={"direction": "up", "localDir": str(local), "remoteDir": "~/work/src"},
    )
    up = (await _transfer_until_done(rest, rental_id))[-1]
    assert up["state"] == "done" and up["method"] == "tar", up
    pod = _home(sandbox, rental_id) / "work" / "src"
    assert _digest(pod / "sub" / "b.bin") == _digest(local / "sub" / "b.bin")

    stopped = await _json(rest, "POST", f"rentals/{rental_id}/stop")
    (save,) = stopped["saves"]
    assert save["complete"] and save["files"] == 2 and stopped["transfer"]["method"] == "tar"
    saved = tmp_path / "saves" / "no-rsync" / "work" / "src" / "sub" / "b.bin"
    assert _digest(saved) == _digest(local / "sub" / "b.bin")


async def test_an_interrupted_upload_resumes_from_what_arrived(
    server: Any, sandbox: Any, tmp_path: Path
) -> None:
    rest = await start_extension(server)
    rental_id = (await _rent(rest))["id"]
    local = tmp_path / "ckpt"
    local.mkdir()
    size = 16 * MB
    (local / "checkpoint.pt").write_bytes(os.urandom(size))
    body = {"direction": "up", "localDir": str(local), "bwlimit": 2 * MB}
    await _json(rest, "POST", f"rentals/{rental_id}/transfer", json=body)

    async def some_arrived() -> dict[str, Any] | None:
        reply = await _json(rest, "GET", f"rentals/{rental_id}/transfer")
        return reply if reply["transfer"]["bytesDone"] >= 3 * MB else None

    from helpers.server import until

    await until(some_arrived, timeout=30)
    cancelled = await _json(rest, "DELETE", f"rentals/{rental_id}/transfer")
    assert cancelled["transfer"]["state"] == "cancelled"
    pod = _home(sandbox, rental_id) / "work"
    partial = pod / PARTIAL_DIR / "checkpoint.pt"

    async def kept() -> int:
        return partial.stat().st_size if partial.exists() else 0

    kept_bytes = await until(kept, timeout=10)
    assert 0 < kept_bytes < size and not (pod / "checkpoint.pt").exists()
    nothing = await rest.api("DELETE", f"rentals/{rental_id}/transfer")
    assert nothing.status_code == 404 and nothing.json()["error"]["code"] == "no_transfer"

    await _json(rest, "POST", f"rentals/{rental_id}/transfer", json={**body, "bwlimit": None})
    resumed = (await _transfer_until_done(rest, rental_id))[-1]
    assert resumed["state"] == "done" and resumed["wireBytes"] is not None
    assert resumed["wireBytes"] < size - kept_bytes + MB  # only the rest was sent
    assert _digest(pod / "checkpoint.pt") == _digest(local / "checkpoint.pt")


async def test_transfer_requests_are_checked(server: Any, tmp_path: Path) -> None:
    rest = await start_extension(server)
    rental_id = (await _rent(rest))["id"]
    bad = await rest.api(
        "POST", f"rentals/{rental_id}/transfer", json={"direction": "sideways", "bwlimit": -1}
    )
    assert bad.status_code == 400
    fields = {p["field"] for p in bad.json()["error"]["problems"]}
    assert fields == {"direction", "localDir", "bwlimit"}
    missing = await rest.api(
        "POST",
        f"rentals/{rental_id}/transfer",
        json={"direction": "up", "localDir": str(tmp_path / "nope")},
    )
    assert missing.status_code == 400 and "not a folder" in missing.text
    paths = await rest.api(
        "PUT", f"rentals/{rental_id}/save-paths", json={"paths": ["~bob/x", "ok"]}
    )
    assert paths.status_code == 400 and "another user's home" in paths.text
    fine = await _json(
        rest, "PUT", f"rentals/{rental_id}/save-paths", json={"paths": ["out/", "/data"]}
    )
    assert fine["savePaths"] == ["~/out", "/data"] and fine["savePathsDefault"] is False
    reset = await _json(rest, "PUT", f"rentals/{rental_id}/save-paths", json={"paths": []})
    assert reset["savePaths"] == ["~/work"] and reset["savePathsDefault"] is True

    await _json(rest, "POST", f"rentals/{rental_id}/stop", json={"save": False})
    gone = await rest.api(
        "POST", f"rentals/{rental_id}/transfer", json={"direction": "up", "localDir": "."}
    )
    assert gone.status_code == 409 and gone.json()["error"]["code"] == "not_reachable"


async def test_the_working_folder_is_pushed_and_set_up_before_the_kernel_is_offered(
    server: Any, sandbox: Any, tmp_path: Path, jp_fetch: Any, jp_ws_fetch: Any
) -> None:
    rest = await start_extension(server)
    notebook_dir = tmp_path / "analysis"
    notebook_dir.mkdir()
    (notebook_dir / "data.csv").write_text("a,b\n1,2\n")
    setup = "echo installing; sleep 0.5; echo >&2 a warning; test -f data.csv && echo ready"
    created = await _json(
        rest,
        "POST",
        "rentals",
        json={
            "familyId": "rtx-4090",
            "gpuCount": 1,
            "syncWorkdir": str(notebook_dir),
            "setup": setup,
        },
    )
    assert created["workdir"]["state"] == "pending" and created["workdir"]["setup"] == setup
    views: list[dict[str, Any]] = []

    def ready(view: dict[str, Any]) -> bool:
        views.append(view)
        return view["workdir"]["state"] in ("done", "failed")

    done = await _rental_until(rest, created["id"], ready)
    assert done["workdir"]["state"] == "done", done["workdir"]
    assert done["kernel"], "the kernel is offered once the folder is ready"
    # While the folder was pushed or set up, the rental ran without a kernel to pick.
    held = [v for v in views if v["status"] == "running" and v["workdir"]["state"] != "done"]
    assert held and all(v["kernel"] is None for v in held)
    assert [line for line in done["workdir"]["output"] if line in ("installing", "ready")] == [
        "installing",
        "ready",
    ]
    assert "a warning" in done["workdir"]["output"]
    assert done["workdir"]["output"][-1] == "[exit status 0]"

    started = await jp_fetch(
        "api", "kernels", method="POST", body=json.dumps({"name": done["kernel"]})
    )
    kernel_id = json.loads(started.body)["id"]
    ws = await jp_ws_fetch("api", "kernels", kernel_id, "channels")
    try:
        stdout, reply = await ws_execute(ws, "print(open('data.csv').read().split()[1])")
        assert reply["content"]["status"] == "ok" and stdout.strip() == "1,2"
    finally:
        ws.close()
        await server.kernel_manager.shutdown_kernel(kernel_id, now=True)


async def test_a_failing_setup_is_shown_and_the_kernel_offered_anyway(
    server: Any, tmp_path: Path
) -> None:
    rest = await start_extension(server)
    created = await _json(
        rest,
        "POST",
        "rentals",
        json={"familyId": "rtx-4090", "gpuCount": 1, "setup": "echo oops; exit 3"},
    )
    done = await _rental_until(
        rest, created["id"], lambda v: v["workdir"]["state"] in ("done", "failed")
    )
    assert done["workdir"]["state"] == "failed" and done["workdir"]["exitStatus"] == 3
    assert (
        "exited with status 3" in done["workdir"]["error"] and "oops" in done["workdir"]["output"]
    )
    done = await _rental_until(rest, created["id"], lambda v: bool(v["kernel"]))
    missing = await rest.api(
        "POST",
        "rentals",
        json={"familyId": "rtx-4090", "gpuCount": 1, "syncWorkdir": str(tmp_path / "nope")},
    )
    assert missing.status_code == 400
    assert missing.json()["error"]["problems"][0]["field"] == "syncWorkdir"
