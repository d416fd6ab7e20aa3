"""%gpu_sync, %gpu_rent --save and %gpu_stop [--no-save] in an IPython shell, on sandbox pods.

The shell's session hosts the rentals service itself (in-process), so every byte goes the real
way: the sandbox's pods are SSH servers whose disk is a local folder, deleted at the stop, and
the transfers run over the OpenSSH client's shared connection.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.testing import globalipapp

from gpuoutlet_jupyter.notebook.magics import GpuMagicError
from gpuoutlet_jupyter.notebook.session import NotebookSession
from gpuoutlet_jupyter.notebook.views import RentalInfo

Run = Callable[[str], tuple[Any, str]]


@pytest.fixture
def ip() -> Iterator[Any]:
    globalipapp.start_ipython()
    shell = globalipapp.get_ipython()
    shell.run_line_magic("load_ext", "gpuoutlet_jupyter")
    try:
        yield shell
    finally:
        NotebookSession.current().close()
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
def saves_dir(tmp_path: Path) -> Path:
    return tmp_path / "saves"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The notebook's folder (the kernel's working folder), with a git folder to leave out."""
    folder = tmp_path / "project"
    (folder / ".git").mkdir(parents=True)
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (folder / "data.csv").write_text("x,y\n1,2\n")
    (folder / "src").mkdir()
    (folder / "src" / "train.py").write_text("print('training')\n")
    monkeypatch.chdir(folder)
    return folder


@pytest.fixture
def in_process(
    ip: Any,
    sandbox: Any,
    ssh_keypair: Any,
    tmp_path: Path,
    saves_dir: Path,
    control_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    account = sandbox.create_account(balance_cents=100_00, authorized_keys=ssh_keypair.public_key)
    for name in ("GPUOUTLET_SERVER_URL", "GPUOUTLET_SERVER_TOKEN", "JPY_PARENT_PID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GPUOUTLET_API_URL", sandbox.url)
    monkeypatch.setenv("GPUOUTLET_SID", account.sid)
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "400")  # the progress line is cut to the terminal's width
    for trait, value in {
        "ssh_dir": str(tmp_path / "ssh"),
        "identity_file": str(ssh_keypair.private_key),
        "reconcile_interval": 0,
        "saves_dir": str(saves_dir),
        "control_dir": str(control_dir),
        "progress": "text",
    }.items():
        ip.run_line_magic("config", f"NotebookSession.{trait} = {value!r}")
    yield account
    sandbox.set_faults({})


def _home(sandbox: Any, rental_id: str) -> Path:
    return Path(sandbox.pod_info(rental_id)["home"])


def _gone(sandbox: Any, rental_id: str) -> bool:
    for _ in range(200):
        if not sandbox.pod_info(rental_id)["homeExists"]:
            return True
        time.sleep(0.05)
    return False


def test_sync_up_and_down_then_a_stop_that_saves_first(
    in_process: Any, sandbox: Any, project: Path, saves_dir: Path, run: Run
) -> None:
    value, printed = run("%gpu_rent rtx-4090 --name nb --save ~/work --save ~/outputs")
    assert isinstance(value, RentalInfo) and value.status == "running", printed
    rental_id = value.id
    home = _home(sandbox, rental_id)

    value, printed = run("%gpu_sync up")  # the one running rental, this folder, ~/work
    assert not isinstance(value, Exception), printed
    assert value["state"] == "done" and value["kind"] == "upload"
    assert (home / "work" / "data.csv").read_text() == "x,y\n1,2\n"
    assert (home / "work" / "src" / "train.py").exists()
    assert not (home / "work" / ".git").exists()  # excluded by default
    assert f"{project} → pod:~/work" in printed and "Uploading" in printed

    # The remote kernel's results, on the pod only.
    (home / "work" / "results.csv").write_text("epoch,loss\n1,0.5\n")
    (home / "outputs").mkdir()
    (home / "outputs" / "model.bin").write_bytes(b"\0" * 4096)
    value, printed = run(f"%gpu_sync down {rental_id}")
    assert not isinstance(value, Exception), printed
    assert (project / "results.csv").read_text() == "epoch,loss\n1,0.5\n"

    value, printed = run("%gpu_rentals")
    assert "saved" in printed and "download" in printed.lower()

    value, printed = run(f"%gpu_stop {rental_id}")
    assert isinstance(value, RentalInfo) and value.status == "stopped", printed
    assert "Its work is saved first" in printed
    assert printed.index("saved first") < printed.index("it cost")
    assert (saves_dir / "nb" / "work" / "results.csv").read_text() == "epoch,loss\n1,0.5\n"
    assert (saves_dir / "nb" / "outputs" / "model.bin").stat().st_size == 4096
    assert value.saves and value.saves[0]["reason"] == "user"
    assert _gone(sandbox, rental_id)  # without the save, the results would be lost
    # One RemoteManager in this host, the service's: the saver used it, and the rental's
    # connection ended with the rental.
    host = NotebookSession.current().core.backend._host  # type: ignore[attr-defined]
    service = host.running
    assert host._saver.remotes is service.remotes
    assert service.remotes.get(rental_id) is None


def test_stop_without_saving_and_sync_mistakes(
    in_process: Any, sandbox: Any, project: Path, saves_dir: Path, run: Run
) -> None:
    value, printed = run("%gpu_sync up")
    assert isinstance(value, GpuMagicError) and "no rental is running" in printed

    value, printed = run("%gpu_rent rtx-4090 --name quick")
    assert isinstance(value, RentalInfo) and value.status == "running", printed
    rental_id = value.id
    (_home(sandbox, rental_id) / "work" / "scratch.txt").write_text("throwaway")

    value, printed = run(f"%gpu_sync up {rental_id} a b c")
    assert isinstance(value, GpuMagicError) and "at most a rental ID" in printed
    value, printed = run(f"%gpu_sync up {rental_id} {project / 'missing'}")
    assert isinstance(value, GpuMagicError), printed
    assert "is not a folder on this machine" in printed and "LOCAL" in printed
    value, printed = run(f"%gpu_sync status {rental_id}")
    assert "has had no transfer yet" in printed

    value, printed = run(f"%gpu_stop {rental_id} --no-save")
    assert isinstance(value, RentalInfo) and value.status == "stopped", printed
    assert "Not saving its work (--no-save)" in printed
    assert not value.saves and not (saves_dir / "quick").exists()
    assert _gone(sandbox, rental_id)


def test_rent_pushes_the_notebooks_folder_and_runs_the_setup_before_it_returns(
    in_process: Any, sandbox: Any, project: Path, run: Run
) -> None:
    setup = "echo installing; cat data.csv > seen.csv"
    value, printed = run(f"%gpu_rent rtx-4090 --name wd --sync-workdir --setup {setup!r}")
    assert isinstance(value, RentalInfo) and value.status == "running", printed
    # %gpu_rent follows it until its folder is pushed and the setup ran (its kernel waits too).
    workdir = value.data["workdir"]
    assert workdir["state"] == "done" and workdir["exitStatus"] == 0, workdir
    assert workdir["localDir"] == str(project)
    assert "installing" in workdir["output"]
    assert "working folder: " in printed  # the push and the setup were shown as they ran
    home = _home(sandbox, value.id)
    # The setup ran in the remote work folder, after the push: relative paths work there.
    assert (home / "work" / "seen.csv").read_text() == "x,y\n1,2\n"
    assert not (home / "work" / ".git").exists()
    value, printed = run(f"%gpu_stop {value.id} --no-save")
    assert isinstance(value, RentalInfo) and value.status == "stopped", printed
