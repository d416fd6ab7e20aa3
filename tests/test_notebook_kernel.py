"""The magics in real kernels: started by a Jupyter server with the extension (its environment),
found through the server's runtime file (JPY_PARENT_PID), and with no server at all (in-process);
and end to end, from ``%gpu_rent`` to a cell run on the pod in the rental's own kernel.

The server runs in this process (pytest-jupyter) on the test's event loop, so every wait here
is awaited: a blocking call would stall the server the kernel is talking to.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from helpers.kernels import (
    RENTAL_ID,
    execute,
    kernel_env,
    ready_client,
    run_ok,
    widget_states,
)
from helpers.server import Rest, sandbox_server_config, start_extension, ws_execute
from helpers.sshd import process_alive
from jupyter_client.manager import AsyncKernelManager

from gpuoutlet_jupyter.kernel.specs import kernel_name_for
from gpuoutlet_jupyter.server import ENV_SERVER_URL

# Nothing from the developer's own environment or credentials file leaks into these tests.
pytestmark = pytest.mark.usefixtures("no_gpuoutlet_env")


@pytest.fixture
def jp_server_config(
    tmp_path: Path, sandbox: Any, account: Any, ssh_keypair: Any
) -> dict[str, Any]:
    return sandbox_server_config(tmp_path, sandbox, account, ssh_keypair)


def _ids(text: str) -> list[str]:
    return list(dict.fromkeys(RENTAL_ID.findall(text)))


async def _gone(pid: int | None, timeout: float = 30.0) -> bool:
    """Whether ``pid`` exits within ``timeout`` (a bounded wait, checked by the caller)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while process_alive(pid):
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def test_server_kernel_widget_progress_and_interrupt(
    server: Any, sandbox: Any, account: Any, tmp_path: Path
) -> None:
    rest: Rest = await start_extension(server)
    kernels = server.kernel_manager
    kernel_id = await kernels.start_kernel(kernel_name="python3")
    kc = await ready_client(kernels.get_kernel(kernel_id))
    try:
        await run_ok(kc, "%load_ext gpuoutlet_jupyter")
        status = await run_ok(kc, "%gpu_status")
        assert f"Jupyter server at {rest.url}" in status.text
        assert ENV_SERVER_URL in status.text and "configured          yes" in status.text

        # The widget: comm messages from the kernel, driven by the server's long-poll.
        run = await run_ok(
            kc, "r = %gpu_rent rtx-4090 --name widget-test\nprint(r.id, r.status, r.kernel)"
        )
        models = {s.get("_model_name") for s in widget_states(run.messages).values()}
        assert {"VBoxModel", "IntProgressModel", "HTMLModel", "TextModel"} <= models
        states = list(widget_states(run.messages).values())
        rental_id = _ids(run.text)[0]
        ssh = [s["value"] for s in states if s.get("_model_name") == "TextModel"]
        assert ssh == [f"ssh -F {tmp_path / 'ssh' / 'config'} gpuoutlet-{rental_id}"]
        html = " ".join(str(s.get("value")) for s in states if s.get("_model_name") == "HTMLModel")
        assert "running" in html and "navigator.clipboard.writeText" in html
        assert "$0.65/h" in html
        # The bar moves with time against gpuoutlet's estimate, and is full once it runs.
        bar = next(s for s in states if s.get("_model_name") == "IntProgressModel")
        assert bar["description"] == "time" and bar["value"] == bar["max"] >= 1
        assert f"running {kernel_name_for(rental_id)}" in run.text

        # Ctrl-C while waiting stops the waiting only.
        sandbox.set_faults(neverReady=True)
        interrupted = False

        async def interrupt_once_polling(msg: dict[str, Any]) -> None:
            nonlocal interrupted
            state = msg["content"].get("data", {}).get("state", {})
            label = state.get("value")
            # Past gpuoutlet's estimate (about a second in the test sandbox): it has been
            # polled a few times, and the bar's label says it takes longer than expected.
            if (
                not interrupted
                and msg["msg_type"] == "comm_msg"
                and isinstance(label, str)
                and "longer than the ~" in label
            ):
                interrupted = True
                await kernels.interrupt_kernel(kernel_id)

        run = await execute(
            kc, "r2 = %gpu_rent rtx-4090 --name interrupt-test", on_message=interrupt_once_polling
        )
        assert interrupted and run.ok, run.error
        second = next(i for i in _ids(run.text) if i != rental_id)
        assert "Stopped waiting for" in run.text and "The rental goes on" in run.text
        assert f"%gpu_wait {second}" in run.text and f"%gpu_stop {second}" in run.text
        # Still there, still provisioning, and the server still polls it.
        seen = (await rest.api("GET", f"rentals/{second}", auth="kernel")).json()
        assert seen["status"] == "provisioning" and not seen["gone"]
        later = await rest.api(
            "GET",
            f"rentals/{second}",
            auth="kernel",
            params={"wait": "10", "since": str(seen["version"])},
        )
        assert later.json()["polls"] > seen["polls"]
        run = await run_ok(kc, "print(r2.id, r2.status)")
        assert f"{second} provisioning" in run.text

        sandbox.set_faults({})
        run = await run_ok(kc, "%gpu_stop --all --yes")
        assert "Stopped 2 rental(s)" in run.text
        listed = (await rest.api("GET", "rentals", auth="kernel")).json()["rentals"]
        assert {r["id"]: r["status"] for r in listed} == {rental_id: "stopped", second: "stopped"}
    finally:
        kc.stop_channels()
        await kernels.shutdown_kernel(kernel_id, now=True)


async def test_gpu_rent_to_a_cell_on_the_pod_through_the_server(
    server: Any, jp_fetch: Any, jp_ws_fetch: Any, jp_data_dir: Path, account: Any
) -> None:
    """%gpu_rent in a kernel of the server, then the rental's kernelspec started by that same
    server (POST /api/kernels) and a cell run on the pod through the websocket; the pod's
    environment (GPUOUTLET_POD_ID, the rental id) proves where it ran. %gpu_stop removes the
    kernelspec. The server's SSH entries use ssh_keypair, which the account's pods accept."""
    await start_extension(server)
    kernels = server.kernel_manager
    kernel_id = await kernels.start_kernel(kernel_name="python3")
    kc = await ready_client(kernels.get_kernel(kernel_id))
    remote_id: str | None = None
    outputs: list[str] = []
    try:
        await run_ok(kc, "%load_ext gpuoutlet_jupyter")
        run = await run_ok(
            kc,
            "rental = %gpu_rent rtx-4090 --name e2e\n"
            "print('rented', rental.id, rental.status, rental.kernel)",
        )
        outputs.append(run.text)
        rented = re.search(r"rented (\S+) (\S+) (\S+)", run.text)
        assert rented, run.text
        rental_id, status, name = rented.groups()
        assert status == "running" and name == kernel_name_for(rental_id)
        spec_dir = jp_data_dir / "kernels" / name
        assert (spec_dir / "kernel.json").is_file()

        # The server lists the kernelspec the extension wrote, and starts it.
        listed = json.loads((await jp_fetch("api", "kernelspecs")).body)["kernelspecs"]
        assert listed[name]["spec"]["display_name"] == "Python 3 · rtx-4090 ×1 · e2e"
        started = await jp_fetch("api", "kernels", method="POST", body=json.dumps({"name": name}))
        remote_id = json.loads(started.body)["id"]
        provisioner = kernels.get_kernel(remote_id).provisioner
        remote_pid = provisioner.remote_pid
        assert provisioner.rental_id == rental_id and process_alive(remote_pid)

        ws = await jp_ws_fetch("api", "kernels", remote_id, "channels")
        try:
            stdout, reply = await ws_execute(
                ws, "import os\nprint(os.environ.get('GPUOUTLET_POD_ID'), os.getpid())"
            )
        finally:
            ws.close()
        outputs.append(stdout)
        assert reply["content"]["status"] == "ok", reply["content"]
        assert stdout.split() == [rental_id, str(remote_pid)]

        deleted = await jp_fetch("api", "kernels", remote_id, method="DELETE")
        assert deleted.code == 204
        remote_id = None
        assert await _gone(remote_pid), f"remote kernel {remote_pid} still runs"

        run = await run_ok(kc, f"%gpu_stop {rental_id}")
        outputs.append(run.text)
        assert re.search(r"status\s+stopped", run.text), run.text
        assert not spec_dir.exists()
        listed = json.loads((await jp_fetch("api", "kernelspecs")).body)["kernelspecs"]
        assert name not in listed
        assert account.sid not in "\n".join(outputs)
    finally:
        if remote_id is not None:
            await kernels.shutdown_kernel(remote_id, now=True)
        kc.stop_channels()
        await kernels.shutdown_kernel(kernel_id, now=True)


async def test_runtime_file_discovery_uses_the_server_token(server: Any, account: Any) -> None:
    await start_extension(server)
    server.write_server_info_file()
    km = AsyncKernelManager(kernel_name="python3")
    # No GPUOUTLET_SERVER_* here: only JPY_PARENT_PID (this process: the server) and the file.
    await km.start_kernel(env=kernel_env())
    kc = await ready_client(km)
    try:
        await run_ok(kc, "%load_ext gpuoutlet_jupyter")
        run = await run_ok(
            kc,
            "import os; print(sorted(k for k in os.environ if k.startswith('GPUOUTLET')))\n%gpu_status",
        )
        assert "[]" in run.text
        assert f"runtime file {server.info_file}" in run.text
        assert "configured          yes" in run.text
        run = await run_ok(kc, "%gpu_wallet")
        assert "$100.00 available" in run.text
        assert server.identity_provider.token not in run.text
    finally:
        kc.stop_channels()
        await km.shutdown_kernel(now=True)
        server.remove_server_info_file()


@pytest_asyncio.fixture
async def bare_kernel(
    sandbox: Any, account: Any, ssh_keypair: Any, tmp_path: Path
) -> AsyncIterator[Any]:
    """A kernel with no Jupyter server: no runtime file, the API settings in its environment."""
    env = kernel_env(
        {
            "GPUOUTLET_API_URL": sandbox.url,
            "GPUOUTLET_SID": account.sid,
            "GPUOUTLET_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
            "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
            "JUPYTER_DATA_DIR": str(tmp_path / "data"),
        }
    )
    km = AsyncKernelManager(kernel_name="python3")
    await km.start_kernel(env=env)
    kc = await ready_client(km)
    try:
        yield km, kc
    finally:
        kc.stop_channels()
        await km.shutdown_kernel(now=True)


@pytest.mark.asyncio
async def test_in_process_fallback_with_text_progress(
    bare_kernel: Any, sandbox: Any, account: Any, ssh_keypair: Any, tmp_path: Path
) -> None:
    km, kc = bare_kernel
    outputs: list[str] = []
    setup = "\n".join(
        [
            "%load_ext gpuoutlet_jupyter",
            # The settings' former name, as a user's old notebook has it: still applied.
            "%config GpuOutletMagics.progress = 'text'",
            f"%config GpuOutletMagics.ssh_dir = {str(tmp_path / 'ssh')!r}",
            f"%config GpuOutletMagics.identity_file = {str(ssh_keypair.private_key)!r}",
            "%config GpuOutletMagics.poll_interval = 0.1",
            "%config GpuOutletMagics.running_poll_interval = 0.2",
            "%config GpuOutletMagics.reconcile_interval = 0",
        ]
    )
    await run_ok(kc, setup)
    run = await run_ok(kc, "%gpu_status")
    outputs.append(run.text)
    assert "this kernel (in-process, rentals API at " + sandbox.url in run.text

    run = await run_ok(kc, "r = %gpu_rent rtx-4090 --name in-process\nr")
    outputs.append(run.text)
    rental_id = _ids(run.text)[0]
    # One text line, updated in place through its display id: no widget at all.
    assert not widget_states(run.messages)
    # The line is displayed at the first state, then updated through its display id.
    shown = [m for m in run.messages if m["msg_type"] in ("display_data", "update_display_data")]
    assert shown[0]["msg_type"] == "display_data"
    assert {m["msg_type"] for m in shown[1:]} == {"update_display_data"}
    display_ids = {m["content"]["transient"]["display_id"] for m in shown}
    assert len(display_ids) == 1
    lines = [m["content"]["data"]["text/plain"] for m in shown]
    # Progress in time against gpuoutlet's estimate.
    assert any(
        "provisioning" in line and re.search(r"left of ~|longer than the ~", line) for line in lines
    ), lines
    assert "running" in lines[-1] and f"gpuoutlet-{rental_id}" in lines[-1]
    assert "\n" not in lines[-1]
    assert (tmp_path / "ssh" / "gpuoutlet" / f"{rental_id}.conf").is_file()
    assert (tmp_path / "data" / "kernels" / kernel_name_for(rental_id) / "kernel.json").is_file()

    # Ctrl-C in-process: the long-poll is cancelled, the service's watcher goes on.
    sandbox.set_faults(neverReady=True)
    interrupted = False

    async def interrupt_once_polling(msg: dict[str, Any]) -> None:
        nonlocal interrupted
        text = str(msg["content"].get("data", {}).get("text/plain", ""))
        if not interrupted and "longer than the ~" in text:
            interrupted = True
            await km.interrupt_kernel()

    run = await execute(kc, "r2 = %gpu_rent rtx-4090", on_message=interrupt_once_polling)
    outputs.append(run.text)
    assert interrupted and run.ok, run.error
    second = next(i for i in _ids(run.text) if i != rental_id)
    assert f"%gpu_wait {second}" in run.text and f"%gpu_stop {second}" in run.text
    run = await run_ok(
        kc,
        "from gpuoutlet_jupyter.notebook.session import NotebookSession\n"
        "print('watching:', sorted(NotebookSession.current().core.backend.watching()))",
    )
    assert second in run.text and rental_id in run.text
    sandbox.set_faults({})

    run = await run_ok(kc, f"%gpu_stop {second}\n%gpu_stop {rental_id}")
    outputs.append(run.text)
    assert "stopped" in run.text
    assert not (tmp_path / "ssh" / "gpuoutlet" / f"{rental_id}.conf").exists()
    joined = "\n".join(outputs)
    assert account.sid not in joined
