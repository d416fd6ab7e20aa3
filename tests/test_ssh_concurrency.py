"""Fifty real processes writing and removing entries at once."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gpuoutlet_jupyter.ssh import SSHConfigWriter

REPO = Path(__file__).resolve().parents[1]
PROCESSES = 50
SSH = shutil.which("ssh")

USER_CONFIG = b"# mine\nHost *\n    ServerAliveInterval 99\n\nMatch user nobody\n    Port 7"

CHILD = """
import sys, time
from pathlib import Path
from gpuoutlet_jupyter.ssh import SSHConfigWriter

ssh_dir, go, i = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
writer = SSHConfigWriter(ssh_dir)
for _ in range(120_000):  # wait for the start signal so all children race
    if go.exists():
        break
    time.sleep(0.001)
else:
    sys.exit(3)
writer.write(f"keep{i}", f"10.{i}.0.1", 1000 + i)
writer.write(f"gone{i}", f"h{i}.example.com", 2000 + i)
assert writer.ensure_include() is None
writer.remove(f"gone{i}")
writer.remove(f"gone{i}")
if i % 2 == 0:
    writer.write(f"even{i}", f"gpu{i}.example.org", 3000 + i)
writer.remove(f"keep{(i + 1) % 50}x")
"""


def test_fifty_processes(tmp_path: Path) -> None:
    ssh_dir = tmp_path / "home" / ".ssh"
    ssh_dir.mkdir(parents=True, mode=0o700)
    (ssh_dir / "id_ed25519").write_text("not a real key\n")
    (ssh_dir / "config").write_bytes(USER_CONFIG)
    go = tmp_path / "go"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, os.fspath(ssh_dir), os.fspath(go), str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(PROCESSES)
    ]
    go.touch()
    outputs = [child.communicate(timeout=300) for child in children]
    assert [child.returncode for child in children] == [0] * PROCESSES, outputs

    writer = SSHConfigWriter(ssh_dir)
    expected = sorted(
        [f"keep{i}" for i in range(PROCESSES)] + [f"even{i}" for i in range(0, PROCESSES, 2)]
    )
    assert writer.entries() == expected
    config = (ssh_dir / "config").read_bytes()
    assert config == writer.include_line.encode() + b"\n" + USER_CONFIG
    assert config.count(b"Include") == 1

    managed = sorted(p.name for p in writer.managed_dir.iterdir())
    assert managed == sorted(
        [".lock"] + [f"{rid}.conf" for rid in expected] + [f"{rid}.known_hosts" for rid in expected]
    )
    for rid in expected:
        text = (writer.managed_dir / f"{rid}.conf").read_text()
        assert text.count("Host gpuoutlet-") == 1
        assert text.endswith("ServerAliveInterval 30\n")

    if SSH is not None:  # OpenSSH reads every survivor through the one Include line
        for i in range(PROCESSES):
            result = subprocess.run(
                [SSH, "-G", "-F", os.fspath(writer.config_file), f"gpuoutlet-keep{i}"],
                capture_output=True,
                text=True,
                check=True,
                stdin=subprocess.DEVNULL,
                timeout=60,
            )
            assert f"\nhostname 10.{i}.0.1\n" in result.stdout
            assert f"\nport {1000 + i}\n" in result.stdout
            assert "\nserveraliveinterval 30\n" in result.stdout
        gone = subprocess.run(
            [SSH, "-G", "-F", os.fspath(writer.config_file), "gpuoutlet-gone7"],
            capture_output=True,
            text=True,
            check=True,
            stdin=subprocess.DEVNULL,
            timeout=60,
        )
        assert "\nhostname gpuoutlet-gone7\n" in gone.stdout


@pytest.mark.parametrize("threads", [16])
def test_threads_in_one_process(tmp_path: Path, threads: int) -> None:
    """The lock also serializes threads of one process (a server hosts many rentals)."""
    from concurrent.futures import ThreadPoolExecutor

    ssh_dir = tmp_path / ".ssh"
    writer = SSHConfigWriter(ssh_dir, identity_file=tmp_path / "key")

    def work(i: int) -> None:
        writer.write(f"t{i}", f"10.0.0.{i + 1}", 22)
        writer.write(f"u{i}", f"10.0.1.{i + 1}", 22)
        writer.remove(f"u{i}")

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(threads)))
    assert writer.entries() == sorted(f"t{i}" for i in range(threads))
    assert (ssh_dir / "config").read_text() == writer.include_line + "\n"
