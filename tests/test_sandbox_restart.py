"""A restart on the same data dir keeps the sid, the money, and running rentals' pods with
their disks."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from gpuoutlet_jupyter.sandbox.testing import (
    SandboxProcess,
    SSHKeypair,
    start_sandbox,
    wait_for_status,
)

pytestmark = pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the OpenSSH client")


def python_over_ssh(key: Path, port: int, known_hosts: Path, checking: str) -> str:
    result = subprocess.run(
        [
            "ssh",
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            f"StrictHostKeyChecking={checking}",
            "-o",
            f"UserKnownHostsFile={known_hosts}",
            "-o",
            "IdentitiesOnly=yes",
            "-i",
            str(key),
            "-p",
            str(port),
            "root@127.0.0.1",
            "python3",
            "-c",
            "'print(42)'",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def port_closed(port: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return True
        time.sleep(0.05)
    return False


def start(data_dir: Path, keypair: SSHKeypair, balance_cents: int) -> SandboxProcess:
    return start_sandbox(
        data_dir,
        balance_cents=balance_cents,
        provision_seconds=(0.2, 0.5),
        worker_interval=0.1,
        authorized_key=keypair.public_key_path,
    )


def test_restart_keeps_sid_money_and_pods(tmp_path: Path, ssh_keypair: SSHKeypair) -> None:
    data_dir = tmp_path / "data"
    known_hosts = tmp_path / "known_hosts"
    body = {"familyId": "rtx-4090", "gpuCount": 1}
    with start(data_dir, ssh_keypair, balance_cents=5_000) as first:
        with first.client() as http:
            running = wait_for_status(
                http, http.post("/v1/rentals", json=body).json()["id"], {"running"}
            )
            port = running["port"]
            assert python_over_ssh(ssh_keypair.private_key, port, known_hosts, "accept-new") == "42"
            home = Path(first.pod_info(running["id"])["home"])
            (home / "work" / "notes.txt").write_text("still here")
            first.set_faults({"neverReady": True})
            pending: dict[str, Any] = http.post("/v1/rentals", json=body).json()
            assert pending["status"] == "provisioning"
        identity = (first.sid, first.admin_token, first.account_id)
        ledger = first.ledger()
        assert first.terminate() == 0  # SIGTERM is a clean shutdown
        assert "sandbox closed" in first.log()
    assert port_closed(port), "the pod outlived the sandbox"

    # A different --balance-cents is ignored: the data dir already has an account.
    with start(data_dir, ssh_keypair, balance_cents=1) as second:
        assert (second.sid, second.admin_token, second.account_id) == identity
        assert second.ledger() == ledger
        with second.client() as http:
            again = http.get(f"/v1/rentals/{running['id']}").json()
            assert (again["status"], again["port"]) == ("running", port)
            # Same port, same host key: strict checking against the first run's known_hosts.
            assert python_over_ssh(ssh_keypair.private_key, port, known_hosts, "yes") == "42"
            # The sandbox stopped, not the rental: its disk is as it was.
            assert (home / "work" / "notes.txt").read_text() == "still here"
            # Faults do not persist; the provisioning rental carries on and comes up.
            assert wait_for_status(http, pending["id"], {"running"})["port"] is not None
            for rental_id in (running["id"], pending["id"]):
                assert http.post(f"/v1/rentals/{rental_id}/stop").status_code == 200
            wait_for_status(http, running["id"], {"stopped"})
        assert port_closed(port)
        assert not home.exists()
        final = second.ledger()
    assert final["reservedCents"] == 0
    assert final["availableCents"] + final["spentCents"] == 5_000
