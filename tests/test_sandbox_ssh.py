"""A sandbox rental is a real machine to OpenSSH: it runs commands for the right key only."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from gpuoutlet_jupyter.sandbox.testing import (
    SandboxProcess,
    SSHKeypair,
    make_keypair,
    wait_for_status,
)

pytestmark = pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the OpenSSH client")


def ssh(key: Path, port: int, known_hosts: Path, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "ssh",
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=accept-new",
            "-o",
            f"UserKnownHostsFile={known_hosts}",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "ConnectTimeout=10",
            "-i",
            str(key),
            "-p",
            str(port),
            "root@127.0.0.1",
            *command,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_port_closed(port: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not port_open(port):
            return True
        time.sleep(0.05)
    return False


def test_running_rental_runs_python_over_openssh_then_stops(
    sandbox: SandboxProcess, ssh_keypair: SSHKeypair, tmp_path: Path
) -> None:
    account = sandbox.create_account(balance_cents=10_000, authorized_keys=ssh_keypair.public_key)
    with sandbox.client(account.sid) as http:
        created = http.post("/v1/rentals", json={"familyId": "rtx-4090", "gpuCount": 1}).json()
        running = wait_for_status(http, created["id"], {"running", "failed"})
        assert running["status"] == "running", running
        assert running["host"] == "127.0.0.1"
        port = running["port"]
        assert isinstance(port, int) and 0 < port < 65536

        known_hosts = tmp_path / "known_hosts"
        result = ssh(ssh_keypair.private_key, port, known_hosts, "python3", "-c", "'print(42)'")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "42"
        assert "127.0.0.1" in known_hosts.read_text()

        stranger = make_keypair(tmp_path / "stranger")
        refused = ssh(stranger.private_key, port, known_hosts, "true")
        assert refused.returncode == 255
        assert "Permission denied" in refused.stderr

        assert http.post(f"/v1/rentals/{created['id']}/stop").json()["status"] == "stopping"
        stopped = wait_for_status(http, created["id"], {"stopped"})
        assert stopped["stoppedAt"] is not None
    assert wait_port_closed(port), "the pod still listens after its rental stopped"


def test_account_without_a_key_boots_but_nobody_logs_in(
    sandbox: SandboxProcess, ssh_keypair: SSHKeypair, tmp_path: Path
) -> None:
    account = sandbox.create_account(balance_cents=10_000)
    with sandbox.client(account.sid) as http:
        created = http.post("/v1/rentals", json={"familyId": "rtx-4090", "gpuCount": 1}).json()
        running = wait_for_status(http, created["id"], {"running", "failed"})
        assert running["status"] == "running", running
        refused = ssh(ssh_keypair.private_key, running["port"], tmp_path / "kh", "true")
        assert refused.returncode == 255
        http.post(f"/v1/rentals/{created['id']}/stop")


def test_sandbox_refuses_an_unusable_key(sandbox: SandboxProcess) -> None:
    response = sandbox.admin.post(
        "/sandbox/accounts", json={"balanceCents": 0, "authorizedKeys": "not a key"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "authorizedKeys"
