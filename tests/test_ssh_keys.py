"""Which key the SSH entries use: the user's ed25519, then rsa, else one generated once."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from gpuoutlet_jupyter.ssh import (
    SSHConfigWriter,
    SSHKeyError,
    generated_identity_path,
    public_key_for,
    resolve_identity,
)

KEYGEN = shutil.which("ssh-keygen")
needs_keygen = pytest.mark.skipif(KEYGEN is None, reason="needs ssh-keygen")
REPO = Path(__file__).resolve().parents[1]

CHILD = """
import sys, time
from pathlib import Path
from gpuoutlet_jupyter.ssh import public_key_for, resolve_identity

ssh_dir, go = Path(sys.argv[1]), Path(sys.argv[2])
for _ in range(120_000):  # wait for the start signal so all children race
    if go.exists():
        break
    time.sleep(0.001)
else:
    sys.exit(3)
print(public_key_for(resolve_identity(ssh_dir)))
"""


@pytest.fixture
def counting_keygen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put an ssh-keygen first on PATH that logs each run, then runs the real one."""
    assert KEYGEN is not None
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "keygen.log"
    wrapper = bin_dir / "ssh-keygen"
    wrapper.write_text(f'#!/bin/sh\necho "$$ $*" >> "{log}"\nexec "{KEYGEN}" "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def keygen_runs(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_prefers_ed25519_then_rsa(tmp_path: Path) -> None:
    ssh_dir = tmp_path / ".ssh"
    ssh_dir.mkdir()
    (ssh_dir / "id_rsa").write_text("rsa\n")
    assert resolve_identity(ssh_dir) == ssh_dir / "id_rsa"
    (ssh_dir / "id_ed25519").write_text("ed\n")
    assert resolve_identity(ssh_dir) == ssh_dir / "id_ed25519"
    assert not (ssh_dir / "gpuoutlet").exists()


def test_a_directory_named_like_a_key_is_not_a_key(tmp_path: Path, counting_keygen: Path) -> None:
    ssh_dir = tmp_path / ".ssh"
    (ssh_dir / "id_ed25519").mkdir(parents=True)
    (ssh_dir / "id_rsa").write_text("rsa\n")
    assert resolve_identity(ssh_dir) == ssh_dir / "id_rsa"
    assert keygen_runs(counting_keygen) == 0


@needs_keygen
def test_generates_once(tmp_path: Path, counting_keygen: Path) -> None:
    ssh_dir = tmp_path / ".ssh"
    old = os.umask(0)
    try:
        key = resolve_identity(ssh_dir)
    finally:
        os.umask(old)
    assert key == generated_identity_path(ssh_dir) == ssh_dir / "gpuoutlet" / "id_ed25519"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(ssh_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    public = public_key_for(key)
    assert public.startswith("ssh-ed25519 ")
    assert public.endswith(" gpuoutlet-jupyter")
    private = key.read_bytes()
    assert resolve_identity(ssh_dir) == key
    assert key.read_bytes() == private
    assert keygen_runs(counting_keygen) == 1
    assert [p.name for p in key.parent.iterdir() if p.name.startswith(".")] in ([], [".lock"])
    # A writer without an explicit identity uses the same key.
    assert SSHConfigWriter(ssh_dir).write("r1", "10.0.0.1", 22).identity_file == key
    assert keygen_runs(counting_keygen) == 1


@needs_keygen
def test_concurrent_generation_yields_one_key(tmp_path: Path, counting_keygen: Path) -> None:
    ssh_dir = tmp_path / ".ssh"
    go = tmp_path / "go"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, os.fspath(ssh_dir), os.fspath(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(12)
    ]
    go.touch()
    outputs = [child.communicate(timeout=120) for child in children]
    assert [child.returncode for child in children] == [0] * 12, outputs
    keys = {stdout.strip() for stdout, _ in outputs}
    assert len(keys) == 1
    assert keys == {public_key_for(generated_identity_path(ssh_dir))}
    assert keygen_runs(counting_keygen) == 1


@needs_keygen
def test_public_key_is_derived_when_pub_is_missing(tmp_path: Path) -> None:
    key = resolve_identity(tmp_path / ".ssh")
    expected = public_key_for(key)
    own = tmp_path / "id_ed25519"
    shutil.copy(key, own)
    own.chmod(0o600)
    assert public_key_for(own) == expected


def test_bad_public_keys(tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    key.write_text("private\n")
    (tmp_path / "id_ed25519.pub").write_text("ssh-ed25519 AAAA a\nssh-ed25519 BBBB b\n")
    with pytest.raises(SSHKeyError):
        public_key_for(key)
    (tmp_path / "id_ed25519.pub").write_text("not a key\n")
    with pytest.raises(SSHKeyError):
        public_key_for(key)
    (tmp_path / "id_ed25519.pub").write_text("ssh-ed25519 AAAA me@host\n")
    assert public_key_for(key) == "ssh-ed25519 AAAA me@host"


def test_missing_ssh_keygen_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", os.fspath(empty))
    ssh_dir = tmp_path / ".ssh"
    with pytest.raises(SSHKeyError, match="ssh-keygen"):
        resolve_identity(ssh_dir)
    with pytest.raises(SSHKeyError, match="ssh-keygen"):
        SSHConfigWriter(ssh_dir).write("r1", "10.0.0.1", 22)
    assert [p.name for p in (ssh_dir / "gpuoutlet").iterdir()] in ([], [".lock"])


def test_failing_ssh_keygen_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "ssh-keygen"
    fake.write_text('#!/bin/sh\necho "boom" >&2\nexit 1\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", os.fspath(bin_dir))
    ssh_dir = tmp_path / ".ssh"
    with pytest.raises(SSHKeyError, match="boom"):
        resolve_identity(ssh_dir)
    assert [p.name for p in (ssh_dir / "gpuoutlet").iterdir()] in ([], [".lock"])
