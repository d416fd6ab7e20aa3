"""%gpu_kernels with the in-process service (a kernel renting by itself: no Jupyter server to
start a kernel for Reattach, so it marks one), its help, and its refusals.

The server's side (a real remote kernel reattached to its notebook, shut down) is in
test_kernel_rest.py; here the records are written by hand under the session's state dir.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.kernel_records import a_record
from IPython.testing import globalipapp

from gpuoutlet_jupyter.kernel.records import KernelRecords
from gpuoutlet_jupyter.notebook.magics import GpuMagicError
from gpuoutlet_jupyter.notebook.views.kernels import KernelAction, KernelsTable

Run = Callable[[str], tuple[Any, str]]


@pytest.fixture
def ip() -> Iterator[Any]:
    globalipapp.start_ipython()
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
def records(
    ip: Any, sandbox: Any, ssh_keypair: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> KernelRecords:
    """The in-process service on a sandbox account, and its state dir's kernel records."""
    account = sandbox.create_account(balance_cents=100, authorized_keys=ssh_keypair.public_key)
    for name in ("GPUOUTLET_SERVER_URL", "GPUOUTLET_SERVER_TOKEN", "JPY_PARENT_PID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GPUOUTLET_API_URL", sandbox.url)
    monkeypatch.setenv("GPUOUTLET_SID", account.sid)
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    ip.run_line_magic("config", f"NotebookSession.ssh_dir = {str(tmp_path / 'ssh')!r}")
    ip.run_line_magic("config", "NotebookSession.reconcile_interval = 0")
    return KernelRecords(tmp_path / "data" / "gpuoutlet" / "in-process")


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_is_a_cli_s(ip: Any, run: Run, flag: str) -> None:
    value, printed = run(f"%gpu_kernels {flag}")
    assert value is None and printed.startswith("usage: %gpu_kernels [-h]")
    for option in ("--reattach KERNEL", "--shutdown KERNEL", "ID", "detached"):
        assert option in printed, option
    doc = ip.find_line_magic("gpu_kernels").__doc__
    assert doc.lstrip().startswith("::") and "%gpu_kernels" in doc


def test_listing_marking_for_reattach_and_an_unreachable_machine(
    records: KernelRecords, run: Run
) -> None:
    value, printed = run("%gpu_kernels")
    assert isinstance(value, KernelsTable) and len(value) == 0
    assert "No remote kernel" in value.to_text()

    records.write(
        a_record("det1", "rent_a", owner_pid=0, session_name="/home/me/train.ipynb", started_at=1)
    )
    records.write(
        a_record("rec2", "rent_a", state="reconnecting", attempt=3, error="timed out", started_at=2)
    )
    records.write(a_record("con3", "rent_b"))
    value, _ = run("%gpu_kernels")
    text = value.to_text()
    assert [k["wrapper"] for k in value] == ["rec2", "det1", "con3"]  # by rental, newest first
    assert "reconnecting (attempt 3)" in text and "train.ipynb" in text
    assert "kernel on rent_a lost its connection, reconnecting, attempt 3" in text
    assert "--reattach det1 · --shutdown det1" in text and "1 detached" in text
    assert "secret-key" not in text and "secret-key" not in value._repr_html_()
    only_b, _ = run("%gpu_kernels rent_b")
    assert [k["wrapper"] for k in only_b] == ["con3"]

    marked, _ = run("%gpu_kernels --reattach det1")
    assert isinstance(marked, KernelAction), marked
    assert "marked for reattaching" in marked.message and "next start" in marked.message
    record = records.read("det1")
    assert record is not None and record.adopt_next
    value, _ = run("%gpu_kernels")
    assert "detached (reattach asked for)" in value.to_text()

    # Its machine cannot be reached (its SSH config is gone): said, and it stays listed.
    error, printed = run("%gpu_kernels --shutdown det1")
    assert isinstance(error, GpuMagicError), printed
    assert "could not be reached to shut it down" in printed and "still listed" in printed
    assert records.read("det1") is not None

    for line, words in (
        ("%gpu_kernels --shutdown con3", "is attached"),
        ("%gpu_kernels --reattach nope9", "There is no remote kernel 'nope9'"),
        ("%gpu_kernels rent_a --shutdown det1", "not both"),
    ):
        error, printed = run(line)
        assert isinstance(error, GpuMagicError) and words in printed, (line, printed)
        assert "Traceback" not in printed
