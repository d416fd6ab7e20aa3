"""`gpuoutlet-sandbox serve`: the banner, defaults, the client's key, argument errors."""

from __future__ import annotations

import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from gpuoutlet_jupyter.sandbox.testing import SSHKeypair, make_keypair, wait_for_status

SERVE = [sys.executable, "-m", "gpuoutlet_jupyter.sandbox", "serve"]


def read_until(proc: subprocess.Popen[bytes], pattern: str, timeout: float = 30.0) -> str:
    """stdout up to the first line matching `pattern` (bounded by `timeout`)."""
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while not re.search(pattern.encode(), seen):
            remaining = deadline - time.monotonic()
            assert remaining > 0 and selector.select(remaining), f"no {pattern!r} in {seen!r}"
            chunk = os.read(proc.stdout.fileno(), 65536)
            assert chunk, f"stdout closed before {pattern!r}: {seen!r}"
            seen += chunk
    return seen.decode()


def test_banner_says_how_to_point_jupyter_at_it(tmp_path: Path, ssh_keypair: SSHKeypair) -> None:
    args = [
        "--data-dir",
        str(tmp_path / "data"),
        "--authorized-key",
        str(ssh_keypair.public_key_path),
    ]
    proc = subprocess.Popen(
        [*SERVE, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
    )
    try:
        banner = read_until(proc, r"Stop with Ctrl-C")
        match = re.search(
            r"GPUOUTLET_API_URL=(http://127\.0\.0\.1:\d+) GPUOUTLET_SID=(\S+)", banner
        )
        assert match, banner
        url, sid = match.groups()
        response = httpx.get(f"{url}/v1/billing/balance", cookies={"sid": sid})
        assert response.json()["availableCents"] == 10_000
        assert "you@example.com" in banner
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


def test_default_data_dir_and_the_clients_own_key(tmp_path: Path) -> None:
    if shutil.which("ssh") is None:
        pytest.skip("needs the OpenSSH client")
    home = tmp_path / "home"
    user_key = make_keypair(home / ".ssh")  # what the gpuoutlet client would log in with
    env = {"HOME": str(home), "XDG_DATA_HOME": str(tmp_path / "xdg")}
    # Bare, as a user would run it: no --data-dir, no --authorized-key.
    proc = subprocess.Popen(
        [*SERVE, "--print-json", "--provision-seconds", "0.1-0.2", "--worker-interval", "0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **env},
    )
    try:
        info = json.loads(read_until(proc, r"\}\n"))
        assert info["dataDir"] == str(tmp_path / "xdg" / "gpuoutlet-sandbox")
        assert info["pid"] == proc.pid
        with httpx.Client(base_url=info["url"], cookies={"sid": info["sid"]}) as http:
            rental = http.post("/v1/rentals", json={"familyId": "rtx-4090", "gpuCount": 1}).json()
            running = wait_for_status(http, rental["id"], {"running"})
        result = subprocess.run(
            [
                "ssh",
                "-F",
                "/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=accept-new",
                "-o",
                f"UserKnownHostsFile={tmp_path / 'kh'}",
                "-o",
                "IdentitiesOnly=yes",
                "-i",
                str(user_key.private_key),
                "-p",
                str(running["port"]),
                "root@127.0.0.1",
                "echo",
                "hi",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert result.stdout.strip() == "hi", result.stderr
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


@pytest.mark.parametrize(
    "args",
    [
        ["--provision-seconds", "60-20"],
        ["--provision-seconds", "soon"],
        ["--time-scale", "-1"],
        ["--worker-interval", "0"],
        ["--capacity-factor", "0"],
        ["--requests-per-minute", "-1"],
        ["--balance-cents", "lots"],
    ],
)
def test_bad_arguments_exit_2_with_a_message(args: list[str]) -> None:
    result = subprocess.run(
        [*SERVE, *args], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 2
    assert "gpuoutlet-sandbox serve: error:" in result.stderr


def test_help_lists_the_options() -> None:
    result = subprocess.run(
        [*SERVE, "--help"], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 0
    for option in (
        "--data-dir",
        "--balance-cents",
        "--time-scale",
        "--provision-seconds",
        "--worker-interval",
        "--authorized-key",
        "--print-json",
        "--requests-per-minute",
        "--requests-per-hour",
        "--signed-out",
        "--email",
        "--new-user-balance-cents",
    ):
        assert option in result.stdout


def test_without_the_sandbox_extra_one_line_says_what_to_install() -> None:
    # As after `pip install gpuoutlet-jupyter` alone: the extra's modules cannot be imported.
    code = (
        "import sys; sys.modules['fastapi'] = None; sys.argv[0] = 'gpuoutlet-sandbox'; "
        "from gpuoutlet_jupyter.sandbox.cli import main; sys.exit(main(['serve']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "gpuoutlet-sandbox needs the sandbox extra (fastapi is not installed): "
        "pip install 'gpuoutlet-jupyter[sandbox]'"
    ]


def test_signed_out_the_default_account_signs_in_with_its_email(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            *SERVE,
            "--data-dir",
            str(tmp_path / "data"),
            "--signed-out",
            "--email",
            "demo@example.com",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        banner = read_until(proc, r"Stop with Ctrl-C")
        assert "GPUOUTLET_SID" not in banner
        assert "Sign in as demo@example.com" in banner and "/sandbox/mailbox" in banner
        url = re.search(r"GPUOUTLET_API_URL=(\S+) jupyter lab", banner)
        admin = re.search(r"Authorization: Bearer (\S+)", banner)
        assert url and admin
        with httpx.Client(base_url=url.group(1)) as http:
            assert http.get("/v1/auth/me").status_code == 401
            assert http.post(
                "/v1/auth/request-code", json={"email": "demo@example.com"}
            ).json() == {
                "ok": True,
                "created": False,
            }
            mail = http.get(
                "/sandbox/mailbox", headers={"Authorization": f"Bearer {admin.group(1)}"}
            ).json()["messages"][0]
            signed_in = http.post(
                "/v1/auth/verify-code", json={"email": "demo@example.com", "code": mail["code"]}
            )
            assert signed_in.status_code == 200
            sid = signed_in.headers["set-cookie"].split(";")[0].removeprefix("sid=")
            balance = httpx.get(f"{url.group(1)}/v1/billing/balance", cookies={"sid": sid}).json()
            assert balance["availableCents"] == 10_000  # the default account's money
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
