"""Idempotency-Key on create: one key, one rental, one charge."""

from __future__ import annotations

from gpuoutlet_jupyter.sandbox.testing import SandboxProcess

BODY = {"familyId": "rtx-4090", "gpuCount": 1, "name": "exp-1"}


def test_the_same_key_returns_the_same_rental_and_charges_once(sandbox: SandboxProcess) -> None:
    account = sandbox.create_account(balance_cents=10_000)
    with sandbox.client(account.sid) as http:
        first = http.post("/v1/rentals", json=BODY, headers={"Idempotency-Key": "k-1"})
        again = http.post("/v1/rentals", json=BODY, headers={"Idempotency-Key": "k-1"})
        # Defaults spelled out and key order changed: still the same request.
        same = http.post(
            "/v1/rentals",
            json={
                "name": "exp-1",
                "templateId": "ubuntu-24-04",
                "gpuCount": 1,
                "familyId": "rtx-4090",
            },
            headers={"Idempotency-Key": "k-1"},
        )
        assert first.status_code == again.status_code == same.status_code == 200
        assert first.json()["id"] == again.json()["id"] == same.json()["id"]
        assert len(http.get("/v1/rentals").json()["rentals"]) == 1
    ledger = sandbox.ledger(account.account_id)
    assert (ledger["availableCents"], ledger["reservedCents"]) == (10_000 - 65, 65)


def test_the_same_key_with_another_body_is_422_and_charges_nothing(sandbox: SandboxProcess) -> None:
    account = sandbox.create_account(balance_cents=10_000)
    with sandbox.client(account.sid) as http:
        first = http.post("/v1/rentals", json=BODY, headers={"Idempotency-Key": "k-2"})
        assert first.status_code == 200
        before = sandbox.ledger(account.account_id)
        other = http.post(
            "/v1/rentals", json={**BODY, "gpuCount": 2}, headers={"Idempotency-Key": "k-2"}
        )
        assert other.status_code == 422
        error = other.json()["error"]
        assert error["code"] == "idempotency_conflict"
        assert "new key" in error["message"]
        assert sandbox.ledger(account.account_id) == before
        assert len(http.get("/v1/rentals").json()["rentals"]) == 1


def test_a_replay_returns_the_rental_as_it_is_now(sandbox: SandboxProcess) -> None:
    account = sandbox.create_account(balance_cents=10_000)
    with sandbox.client(account.sid) as http:
        first = http.post("/v1/rentals", json=BODY, headers={"Idempotency-Key": "k-3"}).json()
        http.post(f"/v1/rentals/{first['id']}/stop")
        replay = http.post("/v1/rentals", json=BODY, headers={"Idempotency-Key": "k-3"})
        assert replay.status_code == 200
        assert replay.json()["id"] == first["id"]
        assert replay.json()["status"] in ("stopping", "stopped")


def test_keys_belong_to_one_account_and_different_keys_make_different_rentals(
    sandbox: SandboxProcess,
) -> None:
    alice = sandbox.create_account(balance_cents=10_000)
    bob = sandbox.create_account(balance_cents=10_000)
    with sandbox.client(alice.sid) as a, sandbox.client(bob.sid) as b:
        from_alice = a.post("/v1/rentals", json=BODY, headers={"Idempotency-Key": "shared"})
        from_bob = b.post("/v1/rentals", json=BODY, headers={"Idempotency-Key": "shared"})
        assert from_alice.json()["id"] != from_bob.json()["id"]
        other_key = a.post("/v1/rentals", json=BODY, headers={"Idempotency-Key": "other"})
        assert other_key.json()["id"] != from_alice.json()["id"]
        no_key = a.post("/v1/rentals", json=BODY)
        assert no_key.json()["id"] not in (from_alice.json()["id"], other_key.json()["id"])
    assert sandbox.ledger(alice.account_id)["reservedCents"] == 3 * 65
    assert sandbox.ledger(bob.account_id)["reservedCents"] == 65


def test_a_refused_create_does_not_burn_its_key(sandbox: SandboxProcess) -> None:
    account = sandbox.create_account(balance_cents=10)
    with sandbox.client(account.sid) as http:
        refused = http.post("/v1/rentals", json=BODY, headers={"Idempotency-Key": "k-4"})
        assert refused.status_code == 402
        sandbox.deposit(account.account_id, 100)
        accepted = http.post("/v1/rentals", json=BODY, headers={"Idempotency-Key": "k-4"})
        assert accepted.status_code == 200
