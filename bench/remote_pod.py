"""A benchmark pod: a real OpenSSH sshd on loopback with its own HOME, PATH and SFTP, and the
SSH alias the project's writer makes for it."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers.sshd import SSHD, start_sshd  # noqa: E402

from gpuoutlet_jupyter.remote import SSHTarget  # noqa: E402
from gpuoutlet_jupyter.sandbox.testing import make_keypair  # noqa: E402
from gpuoutlet_jupyter.ssh import SSHConfigWriter, SSHEntry  # noqa: E402

STANDARD_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"


@dataclass
class BenchPod:
    sshd: SSHD
    entry: SSHEntry
    home: Path  #: ``~`` on the pod
    control_dir: Path  #: short, for the shared connection's socket

    @property
    def target(self) -> SSHTarget:
        return SSHTarget.from_entry(self.entry)

    @property
    def ssh(self) -> list[str]:
        """Plain ``ssh -F <config>``: what a user (or a baseline) runs, one login each time."""
        return ["ssh", "-F", str(self.entry.config_file)]


@contextmanager
def bench_pod(workdir: Path, *, path_prefix: str = "") -> Iterator[BenchPod]:
    """Start the pod; ``path_prefix`` goes in front of its PATH (a folder of stand-in tools).

    Its HOME is its own folder, so no rc file of this machine runs on each command (a real
    pod's root has a near-empty .bashrc), and it serves SFTP, as real pods do, so plain
    ``scp`` (SFTP since OpenSSH 9) works.
    """
    keypair = make_keypair(workdir / "key")
    home = workdir / "home"
    home.mkdir(parents=True)
    path = f"{path_prefix}:{STANDARD_PATH}" if path_prefix else STANDARD_PATH
    server = start_sshd(
        workdir / "sshd",
        keypair.public_key,
        options={"SetEnv": f"PATH={path} HOME={home}", "Subsystem": "sftp internal-sftp"},
    )
    control_dir = Path(tempfile.mkdtemp(prefix="gob-", dir="/tmp"))
    try:
        entry = SSHConfigWriter(workdir / "ssh", identity_file=keypair.private_key).write(
            "r-bench", server.host, server.port
        )
        yield BenchPod(server, entry, home, control_dir)
    finally:
        server.stop()
        shutil.rmtree(control_dir, ignore_errors=True)
