"""SSH keys as the vendor checks them: a real parser, RSA of 2048 bits or more, no DSA,
fingerprints as `ssh-keygen -lf` prints them, duplicates refused per account."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from helpers.sandbox import error, ok

from gpuoutlet_jupyter.sandbox.testing import SandboxProcess

pytestmark = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")


def keygen(folder: Path, kind: str, bits: int | None = None) -> Path:
    path = folder / f"{kind}-{bits or 0}"
    argv = ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", f"{kind}@laptop", "-f", str(path)]
    if bits:
        argv += ["-b", str(bits)]
    subprocess.run(argv, check=True, capture_output=True, timeout=120)
    return path.with_name(path.name + ".pub")


def add(http: httpx.Client, public_key: str, name: str = "laptop") -> httpx.Response:
    return http.post("/v1/ssh-keys", json={"name": name, "publicKey": public_key})


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("keys")
    return {
        "ed25519": keygen(folder, "ed25519"),
        "rsa2048": keygen(folder, "rsa", 2048),
        "rsa1024": keygen(folder, "rsa", 1024),
        "ecdsa256": keygen(folder, "ecdsa", 256),
        "ecdsa521": keygen(folder, "ecdsa", 521),
    }


@pytest.mark.parametrize(
    ("which", "algorithm"),
    [
        ("ed25519", "ssh-ed25519"),
        ("rsa2048", "ssh-rsa"),
        ("ecdsa256", "ecdsa-sha2-nistp256"),
        ("ecdsa521", "ecdsa-sha2-nistp521"),
    ],
)
def test_accepted_keys_and_their_fingerprints(
    sandbox: SandboxProcess, keys: dict[str, Path], which: str, algorithm: str
) -> None:
    account = sandbox.create_account()
    printed = subprocess.run(
        ["ssh-keygen", "-lf", str(keys[which])], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    with sandbox.client(account.sid) as http:
        added = ok(add(http, keys[which].read_text()))
    assert added["algorithm"] == algorithm
    assert added["fingerprint"] == printed and printed.startswith("SHA256:")


def test_weak_keys_are_refused(sandbox: SandboxProcess, keys: dict[str, Path]) -> None:
    account = sandbox.create_account()
    with sandbox.client(account.sid) as http:
        body = error(add(http, keys["rsa1024"].read_text()), 400, "weak_key")
        assert "1024" in body["message"] and "Ed25519" in body["message"]
        dsa = "ssh-dss AAAAB3NzaC1kc3MAAACBAPY8ZOHY2yFSJA6XYC9HRwNHxaehvx5wOJ0rzZdzoSOXxbET me@old"
        error(add(http, dsa), 400, "weak_key")
        assert ok(http.get("/v1/ssh-keys")) == {"keys": []}


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not a key",
        "ssh-ed25519 AAAAnot-base64!!",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
    ],
    ids=["empty", "words", "garbled", "private"],
)
def test_unparseable_keys_are_validation_failed(sandbox: SandboxProcess, text: str) -> None:
    account = sandbox.create_account()
    with sandbox.client(account.sid) as http:
        body = error(add(http, text), 400, "validation_failed")
    assert "publicKey" in body["details"]


def test_two_keys_in_one_field_are_refused(sandbox: SandboxProcess, keys: dict[str, Path]) -> None:
    account = sandbox.create_account()
    both = keys["ed25519"].read_text() + keys["rsa2048"].read_text()
    with sandbox.client(account.sid) as http:
        error(add(http, both), 400, "validation_failed")


def test_the_same_key_twice_is_duplicate_key_per_account(
    sandbox: SandboxProcess, keys: dict[str, Path]
) -> None:
    line = keys["ed25519"].read_text()
    mine, theirs = sandbox.create_account(), sandbox.create_account()
    with sandbox.client(mine.sid) as http:
        ok(add(http, line))
        # Same key, another comment: the same fingerprint.
        other_comment = " ".join(line.split()[:2]) + " renamed@desktop"
        body = error(add(http, other_comment, name="desktop"), 400, "duplicate_key")
        assert body["details"]["fingerprint"].startswith("SHA256:")
    with sandbox.client(theirs.sid) as http:
        ok(add(http, line))  # another account may hold it too


def test_key_names(sandbox: SandboxProcess, keys: dict[str, Path]) -> None:
    account = sandbox.create_account()
    line = keys["ed25519"].read_text()
    with sandbox.client(account.sid) as http:
        error(add(http, line, name=""), 400, "validation_failed")
        error(add(http, line, name="x" * 65), 400, "validation_failed")
        error(http.post("/v1/ssh-keys", json={"publicKey": line}), 400, "validation_failed")
        assert ok(add(http, line, name="x" * 64))["name"] == "x" * 64


def test_create_account_registers_its_keys(sandbox: SandboxProcess, keys: dict[str, Path]) -> None:
    text = "# two keys\n" + keys["ed25519"].read_text() + "\n" + keys["ecdsa256"].read_text()
    account = sandbox.create_account(authorized_keys=text)
    with sandbox.client(account.sid) as http:
        listed = ok(http.get("/v1/ssh-keys"))["keys"]
    assert [k["algorithm"] for k in listed] == ["ecdsa-sha2-nistp256", "ssh-ed25519"]
    refused = sandbox.admin.post(
        "/sandbox/accounts", json={"balanceCents": 0, "authorizedKeys": "not a key"}
    )
    error(refused, 400, "validation_failed")
