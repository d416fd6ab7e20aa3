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
from helpers.sshd import process_alive
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.provisioning import KernelProvisionerFactory

from gpuoutlet_jupyter.api import Rental
from gpuoutlet_jupyter.kernel import wrapper
from gpuoutlet_jupyter.kernel.records import (
    KernelRecord,
    KernelRecords,
    State,
    detached_kernels,
    forget_rental,
    kernel_states,
    process_start,
    request_adoption,
)
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
            "wrapper": f"w{len(started)}",
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
    # A keeper left detached (its connection closed without "end") is ended by a new one.
    for n in range(len(started)):
        folder = tmp_path / f"gpuoutlet-kernel-{n}"
        if folder.exists():
            ender = Wrapper({"mode": "end", "folder": str(folder), "wrapper": f"w{n}"})
            ender.event("closed")
            ender.close()
            assert not folder.exists()


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
    assert name == kernel_name_for("r-Abc123")
    assert name.startswith("gpuoutlet-r-abc123-") and name == name.lower()
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


def test_two_ids_differing_only_in_case_get_two_kernelspecs(tmp_path: Path, identity: Path) -> None:
    """Jupyter lowercases kernelspec names when it lists them: the exact id's hash keeps them apart."""
    specs = KernelSpecWriter(tmp_path / "kernels")
    upper, lower = (
        make_rental(id="r-Abc123", name="upper"),
        make_rental(id="r-abc123", name="lower"),
    )
    names = [specs.install(r, entry_for(tmp_path, r, identity)) for r in (upper, lower)]
    assert names[0] != names[1]
    assert all(name == name.lower() and name.startswith("gpuoutlet-r-abc123-") for name in names)
    assert specs.installed() == {names[0]: "r-Abc123", names[1]: "r-abc123"}
    ksm = KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")])
    assert ksm.get_kernel_spec(names[0]).display_name.endswith("upper")
    assert ksm.get_kernel_spec(names[1]).display_name.endswith("lower")
    specs.remove("r-Abc123")
    assert specs.installed() == {names[1]: "r-abc123"}


def test_a_spec_under_the_old_lowercased_name_is_removed_with_its_rental(
    tmp_path: Path, identity: Path
) -> None:
    """Specs written by an earlier version (``gpuoutlet-<id lowercased>``) go with their rental."""
    specs = KernelSpecWriter(tmp_path / "kernels")
    rental = make_rental()
    name = specs.install(rental, entry_for(tmp_path, rental, identity))
    old = tmp_path / "kernels" / "gpuoutlet-r-abc123"
    (tmp_path / "kernels" / name).rename(old)
    other = tmp_path / "kernels" / "gpuoutlet-r-abc123-other"
    other.mkdir()  # not a spec of that rental: left alone
    assert specs.installed() == {"gpuoutlet-r-abc123": "r-Abc123"}
    specs.remove("r-abc123")  # another rental (its id differs in case): not removed
    assert old.exists()
    specs.remove("r-Abc123")
    assert not old.exists() and other.exists()


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


# Detaching (issue 17): the keeper outlives its connection, and a new one finds it.


def test_a_detached_kernel_is_found_again_and_ended(run_wrapper: Any) -> None:
    first, folder = run_wrapper(fake_kernel(), detach_timeout=None)
    keeper = first.event("attached")["pid"]
    pid = first.event("started")["pid"]
    pids = pids_of(folder)
    assert first.proc.stdin is not None
    first.proc.stdin.close()  # the connection drops: no "end"
    assert first.proc.wait(10) == 0
    time.sleep(0.5)
    assert all(process_alive(p) for p in (*pids, keeper)) and folder.is_dir()

    # Another connection for another kernel is refused; the right one gets it back.
    stranger, _ = run_wrapper([], mode="attach", folder=str(folder), wrapper="w9")
    with pytest.raises(AssertionError, match="stdout closed"):
        stranger.event("attached", timeout=5)
    again, _ = run_wrapper([], mode="attach", folder=str(folder), wrapper="w0")
    attached = again.event("attached")
    assert (attached["pid"], attached["kernel"], attached["code"]) == (keeper, pid, None)
    assert attached["detached"] > 0.4
    again.send("ping")
    again.event("pong")

    # "end" from a third connection: it takes over, and ends it all.
    ender, _ = run_wrapper([], mode="end", folder=str(folder), wrapper="w0")
    ender.event("closed")
    assert wait_gone([*pids, keeper])
    assert not folder.exists()
    # Ending what is gone is fine; attaching to it says it is gone.
    run_wrapper([], mode="end", folder=str(folder), wrapper="w0")[0].event("closed")
    gone, _ = run_wrapper([], mode="attach", folder=str(folder), wrapper="w0")
    assert gone.event("error")["kind"] == "not_found"


def test_the_detach_timeout_ends_the_kernel_and_its_folder(run_wrapper: Any) -> None:
    proc, folder = run_wrapper(fake_kernel(), detach_timeout=1.0)
    keeper = proc.event("attached")["pid"]
    proc.event("started")
    pids = pids_of(folder)
    assert proc.proc.stdin is not None
    proc.proc.stdin.close()
    time.sleep(0.3)
    assert all(process_alive(p) for p in pids)
    assert wait_gone([*pids, keeper], timeout=10)
    assert not folder.exists()


PUBLISHER = """
import json, os, sys, time, zmq
info = json.load(open(sys.argv[1]))
pub = zmq.Context().socket(zmq.PUB)
pub.bind(f"ipc://{info['ip']}-{info['iopub_port']}")
n = 0
while True:
    n += 1
    pub.send_multipart([b"<IDS|MSG>", b"sig", json.dumps({"n": n}).encode(), b"x" * 1000])
    time.sleep(0.005)
"""


def test_the_replay_resumes_in_order_and_says_what_the_buffer_dropped(
    run_wrapper: Any,
) -> None:
    zmq = pytest.importorskip("zmq")
    first, folder = run_wrapper(
        [sys.executable, "-c", PUBLISHER, "{connection_file}"],
        detach_timeout=None,
        replay_buffer_mb=0.1,  # about 100 of these messages
    )
    first.event("started")
    context = zmq.Context()

    def read(resume: list[bytes], count: int) -> list[list[bytes]]:
        dealer = context.socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.setsockopt(zmq.RCVTIMEO, 10_000)
        dealer.connect(f"ipc://{folder}/f-2")
        dealer.send_multipart(resume)
        frames = [dealer.recv_multipart() for _ in range(count)]
        dealer.close()
        return frames

    def number(value: int) -> bytes:
        return value.to_bytes(8, "big")

    def seq_and_n(frames: list[bytes]) -> tuple[int, int]:
        assert frames[0] == b"m"
        return int.from_bytes(frames[1], "big"), json.loads(frames[5])["n"]

    try:
        got = [seq_and_n(f) for f in read([b"resume", number(0), number(0)], 50)]
        seqs = [seq for seq, _ in got]
        assert seqs == list(range(1, 51))  # from the first, in order
        ns = [n for _, n in got]
        assert ns == list(range(ns[0], ns[0] + 50))
        # Not acknowledged: the same again, as after a reconnect that lost them in flight.
        again = [seq_and_n(f) for f in read([b"resume", number(20), number(0)], 5)]
        assert again == got[20:25]

        # Gone for a while (detached): more than the buffer holds is published meanwhile.
        assert first.proc.stdin is not None
        first.proc.stdin.close()
        time.sleep(1.5)
        last_seq, last_n = got[-1]
        cum = sum(len(b"<IDS|MSG>sig") + len(json.dumps({"n": n})) + 1000 for _, n in got)
        frames = read([b"resume", number(last_seq), number(cum)], 40)
        assert frames[0][0] == b"dropped"
        dropped = int.from_bytes(frames[0][1], "big")
        dropped_bytes = int.from_bytes(frames[0][2], "big")
        assert dropped > 50 and dropped_bytes >= dropped * 1000
        after = [seq_and_n(f) for f in frames[1:]]
        # Exactly what follows the gap: no message twice, none out of order.
        assert after[0] == (last_seq + 1 + dropped, last_n + 1 + dropped)
        assert [s for s, _ in after] == list(range(after[0][0], after[0][0] + 39))
    finally:
        context.destroy(linger=0)


# The records kept with the rental: what the server reads, what a new Jupyter adopts.


def record(wrapper: str, **fields: Any) -> KernelRecord:
    data: dict[str, Any] = {
        "wrapper": wrapper,
        "rental_id": "r-1",
        "kernel_name": "gpuoutlet-r-1",
        "ssh_alias": "gpuoutlet-r-1",
        "ssh_config_file": "/x/config",
        "known_hosts_file": "/x/known",
        "folder": f"/tmp/gpuoutlet-kernel-{wrapper}",
        "transport": "ipc",
        "remote_ports": {},
        "key": "secret-key",
        "signature_scheme": "hmac-sha256",
        "owner_pid": os.getpid(),
        "owner_start": process_start(os.getpid()),
        "started_at": time.time(),
        "since": time.time(),
    }
    data.update(fields)
    return KernelRecord(**data)


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_records_are_private_and_list_what_no_jupyter_drives(tmp_path: Path) -> None:
    records = KernelRecords(tmp_path / "state")
    records.write(record("a1"))  # this process drives it
    records.write(record("b2", owner_pid=dead_pid(), started_at=1.0))  # its Jupyter is gone
    records.write(record("c3", state=State.DETACHED, started_at=2.0, rental_id="r-2"))
    records.write(record("d4", state=State.DETACHED, detach_timeout=5, since=time.time() - 60))
    folder = tmp_path / "state" / "kernels"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "a1.json").stat().st_mode) == 0o600

    listed = detached_kernels(tmp_path / "state")
    assert {rental: [r.wrapper for r in found] for rental, found in listed.items()} == {
        "r-1": ["b2"],
        "r-2": ["c3"],
    }  # d4: its detach timeout ran out, so the machine ended it
    states = {r.wrapper: r.state for r in kernel_states(tmp_path / "state")}
    assert states == {"a1": "connecting", "b2": "connecting", "c3": "detached"}
    assert "key" not in records.read("a1").public()  # type: ignore[union-attr]

    with pytest.raises(LookupError):
        request_adoption("a1", tmp_path / "state")  # attached: not to be taken
    forget_rental("r-1", tmp_path / "state")
    assert [r.wrapper for r in records.all()] == ["c3"]


def test_a_start_adopts_the_marked_then_the_same_notebook_then_the_newest(tmp_path: Path) -> None:
    records = KernelRecords(tmp_path)
    old = dead_pid()
    records.write(record("n1", owner_pid=old, started_at=1.0, session_name="a.ipynb"))
    records.write(record("n2", owner_pid=old, started_at=2.0, session_name="b.ipynb"))
    records.write(record("n3", owner_pid=old, started_at=3.0))
    assert records.claim("r-9") is None  # another rental
    assert records.claim("r-1", "c.ipynb") is None  # a notebook with none of its own
    request_adoption("n1", tmp_path)
    claimed = records.claim("r-1", "b.ipynb")
    assert claimed is not None and claimed.wrapper == "n1" and not claimed.detached
    assert records.read("n1").owner_pid == os.getpid()  # type: ignore[union-attr]
    assert records.claim("r-1", "b.ipynb").wrapper == "n2"  # type: ignore[union-attr]
    assert records.claim("r-1").wrapper == "n3"  # type: ignore[union-attr]
    assert records.claim("r-1") is None  # all taken


def test_a_rental_stop_forgets_its_kernels_with_its_kernelspec(
    tmp_path: Path, identity: Path
) -> None:
    rental = make_rental()
    specs = KernelSpecWriter(tmp_path / "kernels", state_dir=tmp_path / "state")
    name = specs.install(rental, entry_for(tmp_path, rental, identity))
    spec = json.loads((tmp_path / "kernels" / name / KERNEL_FILE).read_text())
    config = spec["metadata"]["kernel_provisioner"]["config"]
    assert config["state_dir"] == str(tmp_path / "state")
    KernelRecords(tmp_path / "state").write(record("z1", rental_id=rental.id))
    KernelRecords(tmp_path / "state").write(record("z2", rental_id="r-other"))
    specs.remove(rental.id)
    assert [r.wrapper for r in KernelRecords(tmp_path / "state").all()] == ["z2"]


@pytest.mark.parametrize("trait", ["detach_timeout", "replay_buffer_mb", "reconnect_delay_max"])
def test_negative_settings_are_refused(trait: str) -> None:
    from traitlets import TraitError

    from gpuoutlet_jupyter.kernel.provisioner import GpuOutletSSHProvisioner

    with pytest.raises(TraitError, match=f"{trait} must be 0 or more"):
        GpuOutletSSHProvisioner(**{trait: -1})
    assert GpuOutletSSHProvisioner().detach_timeout is None  # until the rental stops
