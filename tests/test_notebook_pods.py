"""%gpu_top and %gpu_forward in a terminal IPython, over the in-process service, against the
sandbox's pods (real SSH servers whose nvidia-smi follows the CPU load of their processes).
The notebook's live widget of ``%gpu_top`` is tested over a real Jupyter server in
test_server_pods.py; here, the terminal's plain tables and the forward's URL.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers.pod_commands import free_port, on_pod, web_server
from IPython.testing import globalipapp

from gpuoutlet_jupyter.notebook.magics import GpuMagicError
from gpuoutlet_jupyter.notebook.session import NotebookSession
from gpuoutlet_jupyter.notebook.views.telemetry import ForwardInfo, GpuTable, PortsTable

Run = Callable[[str], tuple[Any, str]]


@pytest.fixture
def ip() -> Iterator[Any]:
    globalipapp.start_ipython()  # once per process; later calls do nothing
    shell = globalipapp.get_ipython()
    shell.run_line_magic("load_ext", "gpuoutlet_jupyter")
    try:
        yield shell
    finally:
        shell.run_line_magic("unload_ext", "gpuoutlet_jupyter")
        shell.config.pop("NotebookSession", None)


@pytest.fixture
def run(ip: Any, capsys: pytest.CaptureFixture[str]) -> Run:
    def go(cell: str) -> tuple[Any, str]:
        capsys.readouterr()
        result = ip.run_cell(cell)
        captured = capsys.readouterr()
        return (result.error_in_exec or result.result), captured.out + captured.err

    return go


@pytest.fixture
def in_process(
    ip: Any, sandbox: Any, ssh_keypair: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    account = sandbox.create_account(balance_cents=100_00, authorized_keys=ssh_keypair.public_key)
    for name in ("GPUOUTLET_SERVER_URL", "GPUOUTLET_SERVER_TOKEN", "JPY_PARENT_PID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GPUOUTLET_API_URL", sandbox.url)
    monkeypatch.setenv("GPUOUTLET_SID", account.sid)
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "300")
    control = tempfile.mkdtemp(prefix="gon-", dir="/tmp")
    for setting in (
        f"ssh_dir = {str(tmp_path / 'ssh')!r}",
        f"identity_file = {str(ssh_keypair.private_key)!r}",
        f"control_dir = {control!r}",
        "reconcile_interval = 0",
        "telemetry_interval = 0.3",
        "kernelspecs = False",
        "progress = 'text'",
    ):
        ip.run_line_magic("config", f"NotebookSession.{setting}")
    yield account
    NotebookSession.current().close()
    shutil.rmtree(control, ignore_errors=True)


def _rent(run: Run, *flags: str) -> dict[str, Any]:
    value, printed = run(f"%gpu_rent rtx-4090 {' '.join(flags)}")
    assert not isinstance(value, BaseException), printed
    assert value.status == "running", printed
    data: dict[str, Any] = value.data
    return data


def test_gpu_top_prints_a_table_per_sample_in_a_terminal(
    in_process: Any, sandbox: Any, run: Run
) -> None:
    value, printed = run("%gpu_top")
    assert isinstance(value, GpuMagicError) and "No rental is running" in printed
    rental = _rent(run, "--name", "top")

    value, printed = run("%gpu_top --samples 2")  # the only running rental
    assert value is None
    tables = [t for t in printed.split("\n\n") if t.strip()]
    assert len(tables) == 2, printed
    for table in tables:
        assert f"{rental['id']} · 1× NVIDIA GeForce RTX 4090" in table
        assert re.search(r"^0\s+\d+ %\s+[\d.]+ / 24\.0\s+\d+ °C\s+\d+ W", table, re.M), table

    value, printed = run(f"%gpu_top {rental['id']} --once")
    assert isinstance(value, GpuTable) and value.state == "sampling"
    assert "UTIL" in value.to_text() and "mathjax_ignore" in value._repr_html_()

    second = _rent(run, "--name", "top-2")
    value, printed = run("%gpu_top")
    assert isinstance(value, GpuMagicError)
    assert "2 rentals are running" in printed and second["id"] in printed
    run(f"%gpu_stop {second['id']}")
    run(f"%gpu_stop {rental['id']}")
    value, printed = run(f"%gpu_top {rental['id']} --once")
    assert isinstance(value, GpuMagicError) and "only a running rental's pod" in printed


def test_no_nvidia_smi_is_said_once(in_process: Any, sandbox: Any, run: Run) -> None:
    sandbox.set_faults({"podHiddenCommands": ["nvidia-smi"]})
    try:
        rental = _rent(run, "--name", "no-smi")
    finally:
        sandbox.set_faults({})
    value, printed = run(f"%gpu_top {rental['id']}")  # would run until Ctrl-C otherwise
    assert value is None
    assert printed.count("no nvidia-smi") == 1, printed
    value, printed = run(f"%gpu_top {rental['id']} --once")
    assert isinstance(value, GpuTable) and value.state == "unavailable"
    run(f"%gpu_stop {rental['id']}")


def test_gpu_forward_prints_the_url_of_a_pod_web_server(
    in_process: Any, sandbox: Any, run: Run
) -> None:
    rental = _rent(run, "--template", "ollama", "--name", "web")
    rid = rental["id"]
    value, printed = run(f"%gpu_forward {rid}")
    assert isinstance(value, PortsTable)
    assert re.search(r"^11434\s+Ollama API\s+not listening", value.to_text(), re.M), printed

    port = free_port()

    async def scenario() -> None:
        async with on_pod(rental["ssh"], web_server(port, "forwarded")):
            for _ in range(100):
                listed = (await asyncio.to_thread(run, f"%gpu_forward {rid}"))[0]
                if str(port) in listed.to_text():
                    break
                await asyncio.sleep(0.2)
            value, printed = await asyncio.to_thread(run, f"%gpu_forward {rid} {port}")
            assert isinstance(value, ForwardInfo), printed
            url = printed.strip().splitlines()[0]
            assert url == value.local_url and url.startswith("http://127.0.0.1:")
            async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
                assert (await http.get(url + "hello.txt")).text.strip() == "forwarded"
            value, printed = await asyncio.to_thread(run, f"%gpu_forward {rid} {port} --close")
            assert "no longer forwarded" in printed
            with pytest.raises(httpx.ConnectError):
                async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
                    await http.get(url)

    asyncio.run(scenario())
    value, printed = run(f"%gpu_forward {rid} 0")
    assert isinstance(value, GpuMagicError) and "port" in printed
    run(f"%gpu_stop {rid}")


def test_gpu_rent_checks_the_gpu_threshold_and_in_process_needs_the_server(
    in_process: Any, sandbox: Any, run: Run
) -> None:
    value, printed = run("%gpu_rent rtx-4090 --idle-stop 30 --idle-gpu-util 150")
    assert isinstance(value, GpuMagicError)
    assert "--idle-gpu-util must be a GPU utilisation from 0 (off) to 100 percent" in printed
    assert "Nothing was sent" in printed
    # This kernel rents by itself: nothing here sees its kernels, so no idle stop of any kind.
    value, printed = run("%gpu_rent rtx-4090 --idle-stop 30 --idle-gpu-util 20")
    assert isinstance(value, GpuMagicError) and "needs the Jupyter server" in printed
    value, printed = run("%gpu_rent rtx-4090 --idle-gpu-util 20")
    assert isinstance(value, GpuMagicError) and "--idle-gpu-util" in printed
    listed, _ = run("%gpu_rentals")
    assert len(listed) == 0  # nothing was rented
