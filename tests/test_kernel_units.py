"""The remote-kernel pieces without an sshd: the wrapper's protocol, the ssh argv, kernelspecs."""

from __future__ import annotations

import ast
import contextlib
import json
import os
import select
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.provisioning import KernelProvisionerFactory
from sshd import process_alive

from gpuoutlet_jupyter.api import Rental
from gpuoutlet_jupyter.kernel import wrapper
from gpuoutlet_jupyter.kernel.specs import (
    KERNEL_FILE,
    KernelSpecWriter,
    display_name_for,
    kernel_name_for,
)
from gpuoutlet_jupyter.kernel.ssh_command import (
    BOOTSTRAP,
    Forward,
    SSHCommandError,
    build_ssh_argv,
    remote_command,
    wrapper_line,
)
from gpuoutlet_jupyter.ssh import InvalidSSHValue, SSHConfigWriter, SSHEntry

WRAPPER_SOURCE = Path(wrapper.__file__).read_bytes()


def make_rental(**fields: Any) -> Rental:
    data = {
        "id": "r-Abc123",
        "status": "running",
        "host": "127.0.0.1",
        "port": 2222,
        "pricePerHourCents": 65,
        "startedAt": "2026-01-01T00:00:00Z",
        "familyId": "rtx-4090",
        "gpuCount": 1,
    }
    data.update(fields)
    return Rental.model_validate(data)


# The wrapper: it must run on any python3 >= 3.8 that a rented machine may have.


def test_wrapper_is_python38_syntax_and_stdlib_only() -> None:
    tree = ast.parse(WRAPPER_SOURCE, feature_version=(3, 8))
    stdlib = set(sys.stdlib_module_names)
    # pyzmq (which ipykernel brings) only in the keeper, once ipykernel was checked.
    lazy = {
        id(node)
        for function in ast.walk(tree)
        if isinstance(function, ast.FunctionDef) and function.name == "setup_channels"
        for node in ast.walk(function)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        allowed = stdlib | {"__future__"} | ({"zmq"} if id(node) in lazy else set())
        for name in names:
            assert name.split(".")[0] in allowed, name
    text = WRAPPER_SOURCE.decode()
    for newer in ("removeprefix", "removesuffix", "match ", "ExceptionGroup", "tomllib"):
        assert newer not in text
    assert "'" not in BOOTSTRAP  # it travels inside single quotes


class Wrapper:
    """The wrapper run locally the way ssh runs it: bootstrap argv, the source on stdin."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", BOOTSTRAP],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        assert self.proc.stdin is not None
        self.proc.stdin.write(wrapper_line(WRAPPER_SOURCE) + json.dumps(config).encode() + b"\n")
        self.proc.stdin.flush()
        self._buffer = b""
        self.output = ""  # what the keeper and the kernel wrote (output events)

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def event(self, kind: str, timeout: float = 20.0) -> dict[str, Any]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self._buffer:
                line, self._buffer = self._buffer.split(b"\n", 1)
                event = json.loads(line)
                if event["event"] == "output":
                    self.output += event["text"]
                if event["event"] == kind:
                    return event
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {kind!r} event; stderr: {self.stderr()}"
            ready, _, _ = select.select([self.proc.stdout], [], [], remaining)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                assert chunk, f"stdout closed before {kind!r}; stderr: {self.stderr()}"
                self._buffer += chunk

    def stderr(self) -> str:
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            return "(still running)"
        assert self.proc.stderr is not None
        return self.proc.stderr.read().decode(errors="replace")

    def close(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            with contextlib.suppress(OSError):
                self.send("end")  # a detached kernel would outlive the test
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def run_wrapper(tmp_path: Path) -> Iterator[Any]:
    started: list[Wrapper] = []

    def start(argv: list[str], **config: Any) -> tuple[Wrapper, Path]:
        folder = tmp_path / f"gpuoutlet-kernel-{len(started)}"
        full = {
            "folder": str(folder),
            "transport": "ipc",
            "key": "not-a-real-key",
            "argv": argv,
            "python": "python3",
            "lease": 60,
            **config,
        }
        started.append(Wrapper(full))
        return started[-1], folder

    yield start
    for proc in started:
        proc.close()


def fake_kernel(folder_marker: str = "") -> list[str]:
    # A "kernel" that starts a grandchild in its group and records both pids.
    return ["/bin/sh", "-c", 'sleep 300 & echo "$$ $!" > "$0.pids"; wait', "{connection_file}"]


def pids_of(folder: Path) -> list[int]:
    path = folder / "kernel.json.pids"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        text = path.read_text() if path.exists() else ""
        if len(text.split()) == 2:
            return [int(p) for p in text.split()]
        time.sleep(0.01)
    raise AssertionError("the fake kernel did not start")


def wait_gone(pids: list[int], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(process_alive(pid) for pid in pids):
            return True
        time.sleep(0.01)
    return False


def test_stdin_eof_kills_the_whole_group_and_removes_the_folder(run_wrapper: Any) -> None:
    proc, folder = run_wrapper(fake_kernel())
    hello = proc.event("hello")
    assert hello["pid"] == proc.proc.pid
    started = proc.event("started")
    pids = pids_of(folder)
    assert pids[0] == started["pid"]
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    connection = folder / "kernel.json"
    assert stat.S_IMODE(connection.stat().st_mode) == 0o600
    assert json.loads(connection.read_text())["key"] == "not-a-real-key"
    assert json.loads(connection.read_text())["ip"] == f"{folder}/k"

    assert proc.proc.stdin is not None
    proc.proc.stdin.close()
    proc.event("closed")
    assert wait_gone(pids)
    assert proc.proc.wait(10) == 0
    assert not folder.exists()


def test_a_missed_heartbeat_ends_the_kernel(run_wrapper: Any) -> None:
    proc, folder = run_wrapper(fake_kernel(), lease=0.5)
    proc.event("started")
    pids = pids_of(folder)
    proc.event("closed", timeout=15)
    assert wait_gone(pids)
    assert "no heartbeat for 0.5 s: stopping the kernel" in proc.output


def test_pings_keep_the_lease_and_signals_reach_the_group(run_wrapper: Any) -> None:
    proc, folder = run_wrapper(fake_kernel(), lease=1.0)
    proc.event("started")
    pids = pids_of(folder)
    for _ in range(8):  # 2 s of pings against a 1 s lease
        proc.send("ping")
        time.sleep(0.25)
    assert all(process_alive(pid) for pid in pids)
    proc.send(f"signal {int(signal.SIGTERM)}")
    exited = proc.event("exit")
    assert exited["code"] == -signal.SIGTERM
    assert wait_gone(pids)
    assert folder.is_dir()  # kept for a restart, until stdin closes


@pytest.mark.parametrize("target", ["front", "keeper"])
def test_sigterm_to_the_wrapper_takes_the_kernel_down(run_wrapper: Any, target: str) -> None:
    proc, folder = run_wrapper(fake_kernel())
    keeper = proc.event("attached")["pid"]
    proc.event("started")
    pids = pids_of(folder)
    # The front (ssh's process) stands for the connection: with detach_timeout 0 (the
    # default here) its end is the kernel's; the keeper's end always is.
    os.kill(proc.proc.pid if target == "front" else keeper, signal.SIGTERM)
    proc.event("closed")
    assert wait_gone(pids)
    assert not folder.exists()


def test_a_restart_starts_a_new_kernel_in_the_same_folder(run_wrapper: Any) -> None:
    proc, _ = run_wrapper(["/bin/sh", "-c", "exit 7"])
    assert proc.event("exit")["code"] == 7
    proc.send("start " + json.dumps({"argv": ["/bin/sh", "-c", "exit 5"]}))
    assert proc.event("exit")["code"] == 5
    proc.send("ports 5")
    ports = proc.event("ports")["ports"]
    assert len(set(ports)) == 5 and all(0 < p < 65536 for p in ports)


def test_folders_of_killed_wrappers_are_swept(run_wrapper: Any, tmp_path: Path) -> None:
    first, first_folder = run_wrapper(fake_kernel())
    keeper = first.event("attached")["pid"]
    first.event("started")
    pids = pids_of(first_folder)
    os.kill(keeper, signal.SIGKILL)  # no chance to clean up
    first.proc.wait(10)
    for pid in pids:  # (ipykernel would notice its parent is gone; sh does not)
        os.kill(pid, signal.SIGKILL)
    assert first_folder.is_dir()
    other = tmp_path / "gpuoutlet-kernel-foreign"
    other.mkdir()  # no pid file: not ours to judge, left alone
    second, second_folder = run_wrapper(fake_kernel())
    second.event("started")
    assert not first_folder.exists() and other.is_dir() and second_folder.is_dir()


def test_the_python_placeholder_is_the_wrappers_own_interpreter(run_wrapper: Any) -> None:
    proc, folder = run_wrapper(
        ["{python}", "-c", "import time; time.sleep(300)", "{connection_file}"], python="python3"
    )
    pid = proc.event("started")["pid"]
    deadline = time.monotonic() + 10
    while b"time.sleep" not in (cmdline := Path(f"/proc/{pid}/cmdline").read_bytes()):
        assert time.monotonic() < deadline, "the kernel command never ran"
        time.sleep(0.01)  # "started" comes right after the fork, maybe before the exec
    argv = cmdline.split(b"\0")[:-1]
    assert argv[0].decode() == sys.executable  # the interpreter that checked for ipykernel
    assert argv[-1].decode() == str(folder / "kernel.json")


# The ssh command.


def test_ssh_argv_has_the_safety_options_and_five_forwards(tmp_path: Path) -> None:
    forwards = [
        Forward(40000 + n, remote_path=f"/tmp/gpuoutlet-kernel-ab/k-{n}") for n in range(1, 6)
    ]
    argv = build_ssh_argv(
        "gpuoutlet-r1",
        python="/opt/conda/bin/python",
        forwards=forwards,
        config_file=tmp_path / "config",
        known_hosts_file=tmp_path / "r1.known_hosts",
    )
    assert argv[:3] == ["ssh", "-F", str(tmp_path / "config")]
    options = {argv[i + 1] for i, arg in enumerate(argv) if arg == "-o"}
    for expected in (
        "BatchMode=yes",
        "ExitOnForwardFailure=yes",
        "ControlPath=none",
        "ControlMaster=no",
        "ForwardAgent=no",
        "ForwardX11=no",
        f"UserKnownHostsFile={tmp_path / 'r1.known_hosts'}",
    ):
        assert expected in options
    assert "-T" in argv
    specs = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-L"]
    assert specs == [f"127.0.0.1:{40000 + n}:/tmp/gpuoutlet-kernel-ab/k-{n}" for n in range(1, 6)]
    assert argv[-3:-1] == ["--", "gpuoutlet-r1"]
    assert argv[-1] == remote_command("/opt/conda/bin/python")
    assert argv[-1].startswith("exec /opt/conda/bin/python -c 'import sys")
    tcp = Forward(40001, remote_port=51234).spec()
    assert tcp == "127.0.0.1:40001:127.0.0.1:51234"


@pytest.mark.parametrize(
    ("forward", "problem"),
    [
        (Forward(0, remote_path="/tmp/x"), "local port"),
        (Forward(1234, remote_path="relative/k-1"), "absolute path"),
        (Forward(1234, remote_path="/tmp/a b"), "absolute path"),
        (Forward(1234, remote_path="/tmp/../etc/k"), "absolute path"),
        (Forward(1234, remote_path="/" + "d" * 120), "too long"),
        (Forward(1234, remote_port=70000), "remote port"),
    ],
)
def test_bad_forwards_are_refused(forward: Forward, problem: str) -> None:
    with pytest.raises(SSHCommandError, match=problem):
        forward.spec()


def test_bad_aliases_and_pythons_are_refused() -> None:
    with pytest.raises(InvalidSSHValue):
        build_ssh_argv("-oProxyCommand=x", python="python3", forwards=[])
    with pytest.raises(SSHCommandError, match="one line"):
        build_ssh_argv("gpuoutlet-r1", python="python3\nrm -rf ~", forwards=[])
    # A python path with spaces is quoted for the remote shell, never split.
    assert remote_command("/opt/my python/bin/python3").startswith(
        "exec '/opt/my python/bin/python3' -c "
    )


# Kernelspecs.


def entry_for(tmp_path: Path, rental: Rental, key: Path) -> SSHEntry:
    return SSHConfigWriter(tmp_path / "ssh", identity_file=key).write(rental.id, rental.host, 2222)


@pytest.fixture
def identity(tmp_path: Path) -> Path:
    key = tmp_path / "id_ed25519"
    key.write_text("not used\n")
    return key


def test_kernelspec_shape_and_lifecycle(tmp_path: Path, identity: Path) -> None:
    rental = make_rental(name="my run")
    entry = entry_for(tmp_path, rental, identity)
    specs = KernelSpecWriter(tmp_path / "kernels", provisioner_config={"heartbeat_timeout": 120})
    name = specs.install(rental, entry)
    assert name == "gpuoutlet-r-abc123" == kernel_name_for("r-Abc123")
    spec_file = tmp_path / "kernels" / name / KERNEL_FILE
    assert stat.S_IMODE(spec_file.stat().st_mode) == 0o644
    spec = json.loads(spec_file.read_text())
    assert spec == {
        "argv": ["{python}", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 · rtx-4090 ×1 · my run",
        "language": "python",
        "interrupt_mode": "signal",
        "env": {},
        "metadata": {
            "kernel_provisioner": {
                "provisioner_name": "gpuoutlet-ssh",
                "config": {
                    "ssh_alias": "gpuoutlet-r-Abc123",
                    "ssh_config_file": str(entry.config_file),
                    "known_hosts_file": str(entry.known_hosts_file),
                    "python": "python3",
                    "rental_id": "r-Abc123",
                    "heartbeat_timeout": 120,
                },
            },
            "gpuoutlet": {
                "rental_id": "r-Abc123",
                "family_id": "rtx-4090",
                "gpu_count": 1,
                "name": "my run",
                "ssh_alias": "gpuoutlet-r-Abc123",
            },
        },
    }
    assert specs.installed() == {name: "r-Abc123"}

    ksm = KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")])
    found = ksm.get_kernel_spec(name)
    assert found.display_name == "Python 3 · rtx-4090 ×1 · my run"
    assert KernelProvisionerFactory.instance().is_provisioner_available(found)
    assert specs.install(rental, entry) == name  # rewriting is fine

    specs.remove("r-Abc123")
    specs.remove("r-Abc123")  # idempotent
    assert specs.installed() == {}
    assert not (tmp_path / "kernels" / name).exists()


def test_display_names() -> None:
    assert display_name_for(make_rental()) == "Python 3 · rtx-4090 ×1 · r-Abc123"
    assert (
        display_name_for(make_rental(name="  ", gpuCount=8)) == "Python 3 · rtx-4090 ×8 · r-Abc123"
    )
    assert display_name_for(make_rental(familyId=None, gpuCount=None, name="x")) == "Python 3 · x"


def test_a_hostile_rental_id_writes_nothing(tmp_path: Path) -> None:
    specs = KernelSpecWriter(tmp_path / "kernels")
    with pytest.raises(InvalidSSHValue):
        specs.remove("../../etc")
    with pytest.raises(InvalidSSHValue):
        kernel_name_for("a/b")
    assert not (tmp_path / "kernels").exists()


def test_the_default_folder_follows_jupyter_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    assert KernelSpecWriter().kernels_dir == tmp_path / "data" / "kernels"


def test_importing_the_kernel_package_stays_light() -> None:
    code = (
        "import sys, gpuoutlet_jupyter.kernel, gpuoutlet_jupyter.kernel.specs, "
        "gpuoutlet_jupyter.kernel.wrapper\n"
        "heavy = [m for m in ('jupyter_server', 'tornado', 'zmq', 'jupyter_client') "
        "if m in sys.modules]\nprint(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
