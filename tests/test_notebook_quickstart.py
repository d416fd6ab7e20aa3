"""The main job: notebooks/quickstart.ipynb, executed by nbclient against the sandbox, in a kernel
that a real Jupyter server (with the extension) started, and headless (no server: the kernel
rents by itself), by `jupyter nbconvert --execute` itself and by nbclient with a failing cell. Its outputs must show the rental
ran, ssh answered through the alias, the kernelspec appeared, a cell ran on the pod in that
kernel, and the rental stopped; and no rental is left running, even when a cell fails."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from helpers.kernels import RENTAL_ID
from helpers.server import server_config, start_extension
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from gpuoutlet_jupyter.kernel.specs import kernel_name_for

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "quickstart.ipynb"


# Nothing from the developer's own environment or credentials file leaks into these tests.
pytestmark = pytest.mark.usefixtures("no_gpuoutlet_env")


@pytest.fixture
def jp_server_config(
    tmp_path: Path, sandbox: Any, account: Any, ssh_keypair: Any, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    # As scripts/demo does it: the session reaches the server through its environment.
    monkeypatch.setenv("GPUOUTLET_API_URL", sandbox.url)
    monkeypatch.setenv("GPUOUTLET_SID", account.sid)
    # Polls at a pace the request budget carries (the fixture's 0.1 s would spend it all and
    # leave the wallet's reads held), as a real server's 2 s and 30 s do.
    return server_config(
        tmp_path,
        identity_file=str(ssh_keypair.private_key),
        poll_interval=0.5,
        running_poll_interval=5.0,
    )


def _text(cell: Any) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            parts.append(output["text"])
        elif output["output_type"] in ("execute_result", "display_data"):
            parts.append(str(output["data"].get("text/plain", "")))
            parts.append(str(output["data"].get("text/html", "")))
        elif output["output_type"] == "error":
            parts.extend(output["traceback"])
    return "\n".join(parts)


async def test_quickstart_runs_end_to_end(
    jp_serverapp: Any, http_server: Any, sandbox: Any, account: Any, tmp_path: Path
) -> None:
    rest = await start_extension(jp_serverapp)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    kernels = jp_serverapp.kernel_manager
    kernel_id = await kernels.start_kernel(kernel_name="python3")
    client = NotebookClient(nb, km=kernels.get_kernel(kernel_id), timeout=120)
    try:
        await client.async_execute()
    finally:
        if client.kc is not None:
            client.kc.stop_channels()
        await kernels.shutdown_kernel(kernel_id, now=True)

    out = {cell["id"]: _text(cell) for cell in nb.cells if cell["cell_type"] == "code"}
    assert "Jupyter server at" in out["status"] and "configured" in out["status"]
    assert "rtx-4090" in out["families"] and "$0.65" in out["families"]
    assert "$100.00 available" in out["wallet"]
    # This machine's key is on the account (the sandbox account was made with it).
    assert "→ this machine's key" in out["keys"] and "new pods let it in" in out["keys"]

    # The rental ran: host, port, the ssh alias, its price and the kernel to pick.
    rental_id = RENTAL_ID.findall(out["rent"])[0]
    assert "gpuoutlet expects it running in about" in out["rent"]  # the quote's line
    assert re.search(r"status\s+running", out["rent"])
    assert f"gpuoutlet-{rental_id}" in out["rent"] and "$0.65/h" in out["rent"]
    assert kernel_name_for(rental_id) in out["rent"]
    rent_outputs = next(c for c in nb.cells if c["id"] == "rent")["outputs"]
    assert any(
        "application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in rent_outputs
    )

    # ssh answered through the alias the extension wrote.
    assert "hello from" in out["ssh"], out["ssh"]
    assert (
        f"kernel {kernel_name_for(rental_id)}: 'Python 3 · rtx-4090 ×1 · quickstart'"
        in out["kernel"]
    )
    # A cell ran on the pod through that kernel, from the notebook's own kernel.
    assert f"remote kernel on {rental_id}" in out["remote"], out["remote"]
    assert rental_id in out["rentals"]

    # It stopped (said to be permanent first), and the API agrees.
    assert re.search(r"status\s+stopped", out["stop"])
    assert out["stop"].index("permanent") < out["stop"].index("in all")
    rental = (await rest.api("GET", f"rentals/{rental_id}")).json()
    assert rental["status"] == "stopped" and rental["kernel"] is None
    # Settled: what it cost is gone from the wallet, the rest of the reserved hour is back
    # (a pod that ran under a minute is refunded in full).
    charged = rental["costCents"]
    left = f"${(100_00 - charged) // 100}.{(100_00 - charged) % 100:02d} available"
    assert left in out["wallet-after"], out["wallet-after"]

    assert account.sid not in json.dumps(nb)


# -- headless: no Jupyter server, as `jupyter nbconvert --execute` runs it (issue 15) ----------


@pytest.fixture
def headless(
    sandbox: Any, ssh_keypair: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """A funded account of its own, and what a kernel renting by itself reads: the session in
    its environment, its SSH settings in ipython_config.py (never the developer's ~/.ssh)."""
    account = sandbox.create_account(balance_cents=100_00, authorized_keys=ssh_keypair.public_key)
    profile = tmp_path / "ipython" / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_config.py").write_text(
        f"c.NotebookSession.ssh_dir = {str(tmp_path / 'ssh')!r}\n"
        f"c.NotebookSession.identity_file = {str(ssh_keypair.private_key)!r}\n"
        "c.NotebookSession.poll_interval = 0.2\n"
        "c.NotebookSession.running_poll_interval = 0.5\n"
        "c.NotebookSession.reconcile_interval = 0\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("GPUOUTLET_API_URL", sandbox.url)
    monkeypatch.setenv("GPUOUTLET_SID", account.sid)
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    return account


def _account_rentals(sandbox: Any, account: Any) -> list[dict[str, Any]]:
    with sandbox.client(account.sid) as http:
        listed: list[dict[str, Any]] = http.get("/v1/rentals").json()["rentals"]
    return listed


async def test_quickstart_runs_headless_and_leaves_no_rental(
    headless: Any, sandbox: Any, tmp_path: Path
) -> None:
    """The command the notebook's introduction gives, as CI runs it: no Jupyter server."""
    executed = tmp_path / "executed.ipynb"
    done = await asyncio.to_thread(
        subprocess.run,
        [
            str(Path(sys.executable).with_name("jupyter")),
            "nbconvert",
            "--to",
            "notebook",
            "--execute",
            "--ExecutePreprocessor.timeout=180",
            "--output-dir",
            str(tmp_path),
            "--output",
            "executed",
            str(NOTEBOOK),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert headless.sid not in done.stdout + done.stderr
    nb = nbformat.read(executed, as_version=4)

    out = {cell["id"]: _text(cell) for cell in nb.cells if cell["cell_type"] == "code"}
    assert "this kernel (in-process, rentals API at " + sandbox.url in out["status"]
    assert re.search(r"configured\s+yes", out["status"]), out["status"]
    rental_id = RENTAL_ID.findall(out["rent"])[0]
    assert re.search(r"status\s+running", out["rent"]), out["rent"]
    assert "hello from" in out["ssh"], out["ssh"]
    assert f"remote kernel on {rental_id}" in out["remote"], out["remote"]
    assert re.search(r"status\s+stopped", out["stop"]), out["stop"]
    # Nothing of the account runs any more: the list of the API itself says so.
    listed = _account_rentals(sandbox, headless)
    assert [r["id"] for r in listed] == [rental_id]
    assert listed[0]["status"] == "stopped"
    assert headless.sid not in json.dumps(nb)
    # Nothing written to this machine's own ~/.ssh: the settings came from ipython_config.py.
    assert (tmp_path / "ssh" / "config").is_file()


async def test_a_failing_cell_leaves_no_rental_behind(
    headless: Any, sandbox: Any, tmp_path: Path
) -> None:
    """A cell after the rent fails: the run stops there (as nbconvert does), the kernel is shut
    down, and the rental is stopped with it; the stop cell never ran."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if c.get("id") == "rent")
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell("raise RuntimeError('a cell fails')"))
    client = NotebookClient(nb, kernel_name="python3", timeout=180)
    with pytest.raises(CellExecutionError, match="a cell fails"):
        await client.async_execute()
    rental_id = RENTAL_ID.findall(_text(nb.cells[at]))[0]
    listed = {r["id"]: r["status"] for r in _account_rentals(sandbox, headless)}
    # Stopped as the kernel exited: the stop was asked for (it may still be stopping).
    assert listed == {rental_id: listed[rental_id]} and listed[rental_id] in ("stopping", "stopped")
    await until_stopped(sandbox, headless, rental_id)


async def until_stopped(sandbox: Any, account: Any, rental_id: str) -> None:
    for _ in range(300):
        if {r["id"]: r["status"] for r in _account_rentals(sandbox, account)}[
            rental_id
        ] == "stopped":
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{rental_id} is not stopped")
