"""A sandbox rental is a machine to OpenSSH: it takes the account's keys as they were at
create, has its own disk (deleted when it stops), serves scp and sftp, and has an nvidia-smi
whose GPUs get busy when its processes do."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers.sandbox import ok, rent

from gpuoutlet_jupyter.sandbox.testing import (
    SandboxProcess,
    SSHKeypair,
    make_keypair,
    wait_for_status,
)

pytestmark = pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the OpenSSH client")

QUERY = (
    "--query-gpu=index,name,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw",
    "--format=csv,noheader,nounits",
)


def options(key: Path, known_hosts: Path) -> list[str]:
    return [
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
    ]


def ssh(key: Path, port: int, known_hosts: Path, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", *options(key, known_hosts), "-p", str(port), "root@127.0.0.1", *command],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def logs_in(key: Path, port: int, known_hosts: Path) -> bool:
    result = ssh(key, port, known_hosts, "true")
    assert result.returncode in (0, 255), result.stderr
    return result.returncode == 0


def wait_port_closed(port: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return True
        time.sleep(0.05)
    return False


def running(http: httpx.Client, **body: Any) -> dict[str, Any]:
    rental = wait_for_status(http, rent(http, **body)["id"], {"running", "failed"})
    assert rental["status"] == "running", rental
    return rental


def test_a_rental_runs_python_for_the_accounts_key_only(
    sandbox: SandboxProcess, ssh_keypair: SSHKeypair, tmp_path: Path
) -> None:
    account = sandbox.create_account(balance_cents=10_000, authorized_keys=ssh_keypair.public_key)
    known_hosts = tmp_path / "known_hosts"
    with sandbox.client(account.sid) as http:
        rental = running(http)
        port = rental["port"]
        result = ssh(ssh_keypair.private_key, port, known_hosts, "python3", "-c", "'print(42)'")
        assert (result.returncode, result.stdout.strip()) == (0, "42"), result.stderr
        assert "127.0.0.1" in known_hosts.read_text()
        stranger = make_keypair(tmp_path / "stranger")
        refused = ssh(stranger.private_key, port, known_hosts, "true")
        assert refused.returncode == 255 and "Permission denied" in refused.stderr
        ok(http.post(f"/v1/rentals/{rental['id']}/stop"))
        wait_for_status(http, rental["id"], {"stopped"})
    assert wait_port_closed(port), "the pod still listens after its rental stopped"


def test_keys_are_copied_into_a_pod_at_create_only(
    sandbox: SandboxProcess, ssh_keypair: SSHKeypair, tmp_path: Path
) -> None:
    first = ssh_keypair
    later = make_keypair(tmp_path / "later")
    known_hosts = tmp_path / "known_hosts"
    account = sandbox.create_account(balance_cents=10_000, authorized_keys=first.public_key)
    with sandbox.client(account.sid) as http:
        old_pod = running(http)
        added = ok(http.post("/v1/ssh-keys", json={"name": "later", "publicKey": later.public_key}))
        new_pod = running(http)
        # The key added after the first create never reaches the first pod.
        assert logs_in(first.private_key, old_pod["port"], known_hosts)
        assert not logs_in(later.private_key, old_pod["port"], known_hosts)
        assert logs_in(later.private_key, new_pod["port"], known_hosts)
        assert logs_in(first.private_key, new_pod["port"], known_hosts)
        assert sandbox.pod_info(old_pod["id"])["authorizedKeyFingerprints"] == [
            k["fingerprint"] for k in ok(http.get("/v1/ssh-keys"))["keys"] if k["id"] != added["id"]
        ]
        # Deleting a key leaves running pods alone; pods made afterwards do not get it.
        keys = ok(http.get("/v1/ssh-keys"))["keys"]
        first_id = next(k["id"] for k in keys if k["id"] != added["id"])
        ok(http.delete(f"/v1/ssh-keys/{first_id}"))
        assert logs_in(first.private_key, old_pod["port"], known_hosts)
        after = running(http)
        assert not logs_in(first.private_key, after["port"], known_hosts)
        assert logs_in(later.private_key, after["port"], known_hosts)
        for rental in (old_pod, new_pod, after):
            ok(http.post(f"/v1/rentals/{rental['id']}/stop"))


def test_an_account_without_a_key_gets_a_pod_nobody_enters(
    sandbox: SandboxProcess, ssh_keypair: SSHKeypair, tmp_path: Path
) -> None:
    account = sandbox.create_account(balance_cents=10_000)
    with sandbox.client(account.sid) as http:
        rental = running(http)
        assert not logs_in(ssh_keypair.private_key, rental["port"], tmp_path / "kh")
        ok(http.post(f"/v1/rentals/{rental['id']}/stop"))


def test_a_pod_has_its_own_disk_and_a_stop_deletes_it(
    sandbox: SandboxProcess, ssh_keypair: SSHKeypair, tmp_path: Path
) -> None:
    account = sandbox.create_account(balance_cents=10_000, authorized_keys=ssh_keypair.public_key)
    known_hosts = tmp_path / "known_hosts"
    with sandbox.client(account.sid) as http:
        rental = running(http)
        where = ssh(
            ssh_keypair.private_key,
            rental["port"],
            known_hosts,
            'echo "$HOME|$(pwd)"; ls -A; echo checkpoint > work/model.ckpt',
        )
        assert where.returncode == 0, where.stderr
        lines = where.stdout.splitlines()
        home, cwd = lines[0].split("|")
        assert home == cwd == sandbox.pod_info(rental["id"])["home"]
        assert home != os.path.expanduser("~") and rental["id"] in home
        assert lines[1:] == ["work"]  # every pod starts clean
        assert (Path(home) / "work" / "model.ckpt").read_text() == "checkpoint\n"
        second = running(http)
        assert sandbox.pod_info(second["id"])["home"] != home  # its own
        ok(http.post(f"/v1/rentals/{rental['id']}/stop"))
        wait_for_status(http, rental["id"], {"stopped"}, timeout=10)
        info = sandbox.pod_info(rental["id"])
        assert (info["running"], info["homeExists"]) == (False, False)
        assert not Path(home).exists()  # the disk is wiped: the checkpoint is gone
        assert sandbox.pod_info(second["id"])["homeExists"]
        ok(http.post(f"/v1/rentals/{second['id']}/stop"))


def test_scp_and_sftp_with_openssh(
    sandbox: SandboxProcess, ssh_keypair: SSHKeypair, tmp_path: Path
) -> None:
    if shutil.which("scp") is None or shutil.which("sftp") is None:
        pytest.skip("needs scp and sftp")
    account = sandbox.create_account(balance_cents=10_000, authorized_keys=ssh_keypair.public_key)
    known_hosts = tmp_path / "known_hosts"
    payload = tmp_path / "data.bin"
    payload.write_bytes(os.urandom(3 * 1024 * 1024))
    digest = hashlib.sha256(payload.read_bytes()).hexdigest()
    opts = options(ssh_keypair.private_key, known_hosts)
    with sandbox.client(account.sid) as http:
        rental = running(http)
        port = str(rental["port"])
        home = Path(sandbox.pod_info(rental["id"])["home"])

        def run(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=120, input=stdin)
            assert result.returncode == 0, result.stderr
            return result

        # OpenSSH 9's scp speaks SFTP; ~ is the pod's home.
        run(["scp", *opts, "-P", port, str(payload), "root@127.0.0.1:~/work/data.bin"])
        assert hashlib.sha256((home / "work" / "data.bin").read_bytes()).hexdigest() == digest
        run(["scp", *opts, "-P", port, "root@127.0.0.1:work/data.bin", str(tmp_path / "back.bin")])
        assert hashlib.sha256((tmp_path / "back.bin").read_bytes()).hexdigest() == digest
        # The old scp protocol too.
        run(["scp", "-O", *opts, "-P", port, str(payload), "root@127.0.0.1:work/legacy.bin"])
        assert (home / "work" / "legacy.bin").stat().st_size == payload.stat().st_size
        # sftp, interactively as a user would: cd, put, ls, get.
        batch = f"cd work\nput {payload} put.bin\nls\nget put.bin {tmp_path / 'got.bin'}\n"
        listing = run(["sftp", *opts, "-P", port, "-b", "-", "root@127.0.0.1"], stdin=batch)
        assert "put.bin" in listing.stdout and "legacy.bin" in listing.stdout
        assert hashlib.sha256((tmp_path / "got.bin").read_bytes()).hexdigest() == digest
        ok(http.post(f"/v1/rentals/{rental['id']}/stop"))


def gpu_lines(key: Path, port: int, known_hosts: Path) -> list[list[str]]:
    result = ssh(key, port, known_hosts, "nvidia-smi", *QUERY)
    assert result.returncode == 0, result.stderr
    return [[cell.strip() for cell in line.split(",")] for line in result.stdout.splitlines()]


def test_nvidia_smi_shows_the_rentals_gpus_busy_while_the_pod_works(
    sandbox: SandboxProcess, ssh_keypair: SSHKeypair, tmp_path: Path
) -> None:
    if shutil.which("nvidia-smi") is not None:
        pytest.skip("this machine has real GPUs: pods use its nvidia-smi")
    account = sandbox.create_account(balance_cents=100_000, authorized_keys=ssh_keypair.public_key)
    known_hosts = tmp_path / "known_hosts"
    key = ssh_keypair.private_key
    with sandbox.client(account.sid) as http:
        rental = running(http, familyId="h100-80gb", gpuCount=2)
        port = rental["port"]
        idle = gpu_lines(key, port, known_hosts)
        assert [row[:2] for row in idle] == [
            ["0", "NVIDIA H100 80GB HBM3"],
            ["1", "NVIDIA H100 80GB HBM3"],
        ]
        assert all(row[4] == "81559" for row in idle)
        assert int(idle[0][2]) < 30
        float(idle[0][6])  # power.draw, watts
        table = ssh(key, port, known_hosts, "nvidia-smi")
        assert "NVIDIA H100 80GB HBM3" in table.stdout and "simulated" in table.stdout
        busy = ssh(
            key,
            port,
            known_hosts,
            "nohup python3 -c 'while True: pass' >/dev/null 2>&1 & echo $!",
        )
        pid = int(busy.stdout)
        try:
            peak = 0
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and peak < 60:
                peak = max(peak, int(gpu_lines(key, port, known_hosts)[0][2]))
            assert peak >= 60, f"GPU 0 stayed at {peak} % under a busy loop"
            rows = gpu_lines(key, port, known_hosts)
            assert int(rows[0][5]) > int(idle[0][5])  # hotter
        finally:
            ssh(key, port, known_hosts, f"kill {pid}")
        deadline = time.monotonic() + 20
        while int(gpu_lines(key, port, known_hosts)[0][2]) >= 30:
            assert time.monotonic() < deadline, "GPU 0 stayed busy after the loop ended"
        ok(http.post(f"/v1/rentals/{rental['id']}/stop"))
