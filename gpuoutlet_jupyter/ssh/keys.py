"""Which private key the SSH entries use, and the public key to send with a rental."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import SSHKeyError
from .fsutil import PRIVATE_FILE_MODE, fsync_dir, locked, make_dir

MANAGED_DIR_NAME = "gpuoutlet"
#: The user's own keys, in order of preference.
USER_KEY_NAMES = ("id_ed25519", "id_rsa")
#: The key generated once for the extension when the user has none, in the managed folder.
GENERATED_KEY_NAME = "id_ed25519"
GENERATED_KEY_COMMENT = "gpuoutlet-jupyter"
_PUBLIC_KEY_PREFIXES = ("ssh-", "ecdsa-", "sk-")
_KEYGEN_TIMEOUT_SECONDS = 120


def find_user_identity(ssh_dir: Path) -> Path | None:
    """The user's ``id_ed25519``, else ``id_rsa``, in ``ssh_dir``; ``None`` if neither exists."""
    for name in USER_KEY_NAMES:
        candidate = ssh_dir / name
        if candidate.is_file():
            return candidate
    return None


def generated_identity_path(ssh_dir: Path) -> Path:
    """Where the extension's own key lives (``<ssh_dir>/gpuoutlet/id_ed25519``)."""
    return ssh_dir / MANAGED_DIR_NAME / GENERATED_KEY_NAME


def resolve_identity(ssh_dir: Path) -> Path:
    """Return the private key to use: the user's ed25519 or rsa key, else the extension's own.

    The extension's key is generated with ``ssh-keygen`` the first time it is needed, under the
    managed folder's lock: however many processes ask at once, exactly one key is generated.
    """
    found = find_user_identity(ssh_dir)
    if found is not None:
        return found
    key = generated_identity_path(ssh_dir)
    if key.is_file():
        return key
    make_dir(ssh_dir, enforce_private=False)
    make_dir(key.parent, enforce_private=True)
    with locked(key.parent):
        if not key.is_file():
            _generate(key)
    return key


def _generate(key: Path) -> None:
    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        raise SSHKeyError(
            "ssh-keygen was not found on PATH: install the OpenSSH client, or create a key "
            f"with `ssh-keygen -t ed25519` (the extension looks for {key.parent.parent}/id_ed25519)"
        )
    workdir = Path(tempfile.mkdtemp(prefix=".keygen-", dir=key.parent))
    try:
        scratch = workdir / key.name
        argv = [keygen, "-q", "-t", "ed25519", "-N", "", "-C", GENERATED_KEY_COMMENT]
        try:
            result = subprocess.run(
                [*argv, "-f", os.fspath(scratch)],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                check=False,
                timeout=_KEYGEN_TIMEOUT_SECONDS,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SSHKeyError(f"ssh-keygen could not run: {exc}") from exc
        scratch_pub = scratch.with_name(scratch.name + ".pub")
        if result.returncode != 0 or not scratch.is_file() or not scratch_pub.is_file():
            detail = (result.stderr or result.stdout).strip() or f"exit status {result.returncode}"
            raise SSHKeyError(f"ssh-keygen failed to generate {key}: {detail}")
        os.chmod(scratch, PRIVATE_FILE_MODE)
        os.chmod(scratch_pub, 0o644)
        # The public half first: whoever sees the private key can rely on its .pub being there.
        os.replace(scratch_pub, key.with_name(key.name + ".pub"))
        os.replace(scratch, key)
        fsync_dir(key.parent)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def public_key_for(identity: Path) -> str:
    """The one-line public key of ``identity``: its ``.pub`` file, else ``ssh-keygen -y``."""
    pub = identity.with_name(identity.name + ".pub")
    try:
        text = pub.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = _derive_public_key(identity)
    except (OSError, UnicodeDecodeError) as exc:
        raise SSHKeyError(f"cannot read the public key {pub}: {exc}") from exc
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) != 1 or not lines[0].startswith(_PUBLIC_KEY_PREFIXES):
        raise SSHKeyError(f"{pub} does not hold exactly one OpenSSH public key")
    return lines[0]


def _derive_public_key(identity: Path) -> str:
    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        raise SSHKeyError(f"{identity}.pub is missing and ssh-keygen is not on PATH to derive it")
    try:
        result = subprocess.run(
            [keygen, "-y", "-P", "", "-f", os.fspath(identity)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            timeout=_KEYGEN_TIMEOUT_SECONDS,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SSHKeyError(f"ssh-keygen could not run: {exc}") from exc
    if result.returncode != 0:
        raise SSHKeyError(
            f"{identity}.pub is missing and the public key cannot be derived from {identity} "
            f"(is it passphrase-protected?): {result.stderr.strip()}"
        )
    return result.stdout


@dataclass(frozen=True)
class LocalKey:
    """The public half of the identity the SSH entries use, and its fingerprint."""

    identity: Path
    public_key_file: Path
    #: The one-line OpenSSH public key (``ssh-ed25519 AAAA… comment``).
    public_key: str
    algorithm: str
    #: ``SHA256:…``, as ``ssh-keygen -lf`` prints it and gpuoutlet lists it.
    fingerprint: str
    comment: str


def fingerprint(public_key: str) -> str:
    """The SHA256 fingerprint of a one-line OpenSSH public key: base64 of the blob's digest."""
    parts = public_key.split()
    if len(parts) < 2:
        raise SSHKeyError("a public key line is `<type> <base64 key> [comment]`")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SSHKeyError(f"the public key is not valid base64: {exc}") from None
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")
    return f"SHA256:{digest}"


def local_key(identity: Path) -> LocalKey:
    """The public key and fingerprint of ``identity`` (its ``.pub``, else derived)."""
    line = public_key_for(identity)
    parts = line.split(None, 2)
    return LocalKey(
        identity=identity,
        public_key_file=identity.with_name(identity.name + ".pub"),
        public_key=line,
        algorithm=parts[0],
        fingerprint=fingerprint(line),
        comment=parts[2] if len(parts) > 2 else "",
    )
