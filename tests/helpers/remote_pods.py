"""Test pods for the remote layer: real OpenSSH sshds whose sessions see a chosen PATH.

* ``gpu_pod``: a normal pod (rsync, ss, tar, find) plus a stand-in ``nvidia-smi`` that prints
  what the test wrote into its folder (``smi.set(...)``) and records its arguments.
* ``bare_pod``: the same machine with rsync, ss and nvidia-smi hidden from the PATH (a folder of
  symlinks to everything else): the tar fallback, the /proc/net/tcp fallback, no telemetry.

sshd's ``SetEnv`` sets the PATH of every session, and HOME to the pod's own folder: ``~`` on
the pod is ``<pod>/home`` (like a real pod's disk, not this machine's /root), and the login
shell finds no .bashrc there (root's here costs ~0.2 s per command and edits PATH). Loaded as a
pytest plugin from conftest.py.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gpuoutlet_jupyter.remote import SharedConnection, SSHTarget
from gpuoutlet_jupyter.sandbox.testing import SSHKeypair
from gpuoutlet_jupyter.ssh import SSHConfigWriter, SSHEntry
from helpers.sshd import SSHD, process_alive, sshd_unavailable_reason, start_sshd

SSHD_REASON = sshd_unavailable_reason()
needs_sshd = pytest.mark.skipif(SSHD_REASON is not None, reason=SSHD_REASON or "")
needs_rsync = pytest.mark.skipif(
    shutil.which("rsync") is None, reason="rsync is not installed (scripts/setup installs it)"
)
STANDARD_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
HIDDEN_ON_BARE = frozenset({"rsync", "ss", "nvidia-smi"})
FAKE_SMI = """#!/bin/sh
# Stand-in for nvidia-smi on a test pod: prints what the test wrote, exits as it says.
dir={dir}
printf '%s\\n' "$@" > "$dir/args"
cat "$dir/out"
exit "$(cat "$dir/exit" 2>/dev/null || echo 0)"
"""
TWO_GPUS = (
    "0, NVIDIA GeForce RTX 4090, 37, 1234, 24564, 45, 120.53\n"
    "1, NVIDIA GeForce RTX 4090, 100, 24000, 24564, 81, 449.10\n"
)


@dataclass
class FakeSmi:
    """The stand-in nvidia-smi of ``gpu_pod``: what it prints, how it exits, what it was asked."""

    folder: Path

    def set(self, out: str, exit_status: int = 0) -> None:
        (self.folder / "out").write_text(out)
        (self.folder / "exit").write_text(str(exit_status))

    def args(self) -> list[str]:
        return (self.folder / "args").read_text().split("\n")[:-1]


@dataclass
class TestPod:
    """An sshd standing for a pod, with its SSH alias written by the real SSH writer."""

    __test__ = False  # not a test class, whatever its name

    name: str
    sshd: SSHD
    entry: SSHEntry
    smi: FakeSmi | None
    home: Path  #: ``~`` on the pod

    @property
    def target(self) -> SSHTarget:
        return SSHTarget.from_entry(self.entry)

    def logins(self) -> int:
        """How many SSH logins the sshd accepted so far (one per real connection)."""
        return self.sshd.log().count("Accepted publickey")

    def connection(self, control_dir: Path, **kwargs: Any) -> SharedConnection:
        return SharedConnection(self.target, control_dir=control_dir, **kwargs)


def _bare_bin(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for source in ("/usr/bin", "/usr/sbin"):
        for name in os.listdir(source):
            link = folder / name
            if name in HIDDEN_ON_BARE or link.exists() or link.is_symlink():
                continue
            link.symlink_to(os.path.join(source, name))
    return folder


def _start_pod(name: str, base: Path, keypair: SSHKeypair, *, bare: bool) -> tuple[TestPod, SSHD]:
    smi = None
    if bare:
        path = str(_bare_bin(base / "bin"))
    else:
        fake = base / "fakebin"
        fake.mkdir(parents=True)
        smi = FakeSmi(base / "smi")
        smi.folder.mkdir()
        smi.set(TWO_GPUS)
        script = fake / "nvidia-smi"
        script.write_text(FAKE_SMI.format(dir=smi.folder))
        script.chmod(0o755)
        path = f"{fake}:{STANDARD_PATH}"
    home = base / "home"
    home.mkdir()
    server = start_sshd(
        base / "sshd", keypair.public_key, options={"SetEnv": f"PATH={path} HOME={home}"}
    )
    writer = SSHConfigWriter(base / "ssh", identity_file=keypair.private_key)
    entry = writer.write(f"r-{name}", server.host, server.port)
    return TestPod(name, server, entry, smi, home), server


@pytest.fixture(scope="session")
def gpu_pod(tmp_path_factory: pytest.TempPathFactory, ssh_keypair: SSHKeypair) -> Iterator[TestPod]:
    if SSHD_REASON is not None:
        pytest.skip(SSHD_REASON)
    pod, server = _start_pod("gpu", tmp_path_factory.mktemp("gpu-pod"), ssh_keypair, bare=False)
    yield pod
    server.stop()


@pytest.fixture(scope="session")
def bare_pod(
    tmp_path_factory: pytest.TempPathFactory, ssh_keypair: SSHKeypair
) -> Iterator[TestPod]:
    if SSHD_REASON is not None:
        pytest.skip(SSHD_REASON)
    pod, server = _start_pod("bare", tmp_path_factory.mktemp("bare-pod"), ssh_keypair, bare=True)
    yield pod
    server.stop()


@pytest.fixture
def control_dir() -> Iterator[Path]:
    """A short private folder for control sockets (test temp folders are too long for them)."""
    folder = Path(tempfile.mkdtemp(prefix="gor-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@contextlib.asynccontextmanager
async def connected(
    pod: TestPod, control_dir: Path, **kwargs: Any
) -> AsyncIterator[SharedConnection]:
    """A shared connection to ``pod``, closed (and its master checked gone) afterwards."""
    connection = pod.connection(control_dir, **kwargs)
    try:
        yield connection
    finally:
        pid = connection.master_pid
        await connection.close()
        if pid is not None and process_alive(pid):  # belt and braces: never leak a master
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
