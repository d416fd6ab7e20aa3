"""%gpu_sync and %gpu_stop in a real kernel of a real Jupyter server, on a sandbox pod.

The kernel reaches the rentals service through the server's REST API (the magics' server
backend), so the upload runs in the server and the kernel follows it with long-polls: its
progress is a widget (comm messages), and the stop blocks until the server saved the pod's work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers.kernels import RENTAL_ID, ready_client, run_ok, widget_states
from helpers.server import sandbox_server_config, start_extension

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
) -> dict[str, Any]:
    return sandbox_server_config(
        tmp_path,
        sandbox,
        account,
        ssh_keypair,
        saves_dir=str(saves_dir),
        control_dir=str(control_dir),
    )


async def test_sync_with_a_progress_widget_then_a_stop_that_saves_through_the_server(
    server: Any, sandbox: Any, account: Any, tmp_path: Path, saves_dir: Path
) -> None:
    await start_extension(server)
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "data" / "train.csv").write_text("x,y\n" + "1,2\n" * 50_000)
    (project / "__pycache__").mkdir()
    (project / "__pycache__" / "m.pyc").write_bytes(b"\0" * 10)
    kernels = server.kernel_manager
    kernel_id = await kernels.start_kernel(kernel_name="python3")
    kc = await ready_client(kernels.get_kernel(kernel_id))
    try:
        await run_ok(kc, "%load_ext gpuoutlet_jupyter")
        run = await run_ok(kc, "r = %gpu_rent rtx-4090 --name srv-sync\nprint(r.id, r.status)")
        rental_id = RENTAL_ID.findall(run.text)[0]
        assert f"{rental_id} running" in run.text
        home = Path(sandbox.pod_info(rental_id)["home"])

        run = await run_ok(kc, f"t = %gpu_sync up {rental_id} {project}\nprint(t['state'])")
        assert run.text.strip().endswith("done"), run.text
        assert (home / "work" / "data" / "train.csv").read_text().startswith("x,y\n1,2\n")
        assert not (home / "work" / "__pycache__").exists()  # excluded by default
        # The progress widget: a bar of bytes, full at the end, and the line under it.
        states = list(widget_states(run.messages).values())
        bar = next(s for s in states if s.get("_model_name") == "FloatProgressModel")
        label = " ".join(str(s.get("value")) for s in states if s.get("_model_name") == "HTMLModel")
        assert bar["bar_style"] == "success" and bar["value"] == bar["max"] > 200_000, (bar, label)
        assert f"{project} → pod:~/work" in label

        (home / "work" / "model.pt").write_bytes(b"\1" * 2048)  # what the remote kernel made
        run = await run_ok(kc, f"s = %gpu_stop {rental_id}\nprint(s.status)")
        assert run.text.strip().endswith("stopped"), run.text
        assert "Its work is saved first" in run.text
        assert "before the stop you asked for" in run.text  # the save's own summary
        assert (saves_dir / "srv-sync" / "work" / "model.pt").read_bytes() == b"\1" * 2048
        assert (saves_dir / "srv-sync" / "work" / "data" / "train.csv").is_file()
        assert account.sid not in run.text
    finally:
        kc.stop_channels()
        await kernels.shutdown_kernel(kernel_id, now=True)
