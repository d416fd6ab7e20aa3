"""The sandbox produces every JSON example of the vendor sheet (tests/fixtures/
vendor_examples.json): the same keys and JSON types, ids with their prefix and a 26-character
Crockford ULID, timestamps in the sheet's format."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers.sandbox import ISO_UTC, is_id, ok

from gpuoutlet_jupyter.sandbox.testing import (
    SandboxProcess,
    SSHKeypair,
    make_keypair,
    start_sandbox,
    wait_for_status,
)

EXAMPLES: dict[str, Any] = json.loads(
    (Path(__file__).parent / "fixtures" / "vendor_examples.json").read_text()
)
ID_PREFIX = re.compile(r"(usr|rent|key|led|lst|inv|li)_")


def same_shape(example: Any, actual: Any, where: str = "$") -> None:
    """`actual` has the example's keys and JSON types, all the way down."""
    if isinstance(example, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r} is not an object"
        assert set(actual) == set(example), f"{where}: keys {sorted(actual)} != {sorted(example)}"
        for key, value in example.items():
            same_shape(value, actual[key], f"{where}.{key}")
    elif isinstance(example, list):
        assert isinstance(actual, list) and actual, f"{where}: {actual!r} is not a non-empty list"
        for i, item in enumerate(actual):
            same_shape(example[0], item, f"{where}[{i}]")
    elif example is None:
        assert actual is None, f"{where}: {actual!r} is not null"
    elif isinstance(example, bool):
        assert isinstance(actual, bool), f"{where}: {actual!r} is not a boolean"
    elif isinstance(example, int):
        assert isinstance(actual, int) and not isinstance(actual, bool), f"{where}: {actual!r}"
    elif isinstance(example, float):
        assert isinstance(actual, float), f"{where}: {actual!r} is not a float"
    else:
        assert isinstance(actual, str), f"{where}: {actual!r} is not a string"
        prefix = ID_PREFIX.match(example)
        if prefix:
            assert is_id(actual, prefix.group(1)), (
                f"{where}: {actual!r} is not a {prefix.group(1)}_ ULID"
            )
        if ISO_UTC.match(example):
            assert ISO_UTC.match(actual), f"{where}: {actual!r} is not ISO 8601 UTC in seconds"


def example(name: str) -> Any:
    return EXAMPLES[name]["response"]


@pytest.fixture(scope="module")
def frozen(
    tmp_path_factory: pytest.TempPathFactory, ssh_keypair: SSHKeypair
) -> Iterator[SandboxProcess]:
    """Time moves only when the test says, so a running rental has exactly the charges asked."""
    with start_sandbox(
        tmp_path_factory.mktemp("examples"),
        time_scale=0.0,
        provision_seconds=(5, 5),
        authorized_key=ssh_keypair.public_key_path,
    ) as process:
        yield process


@pytest.fixture(scope="module")
def scene(frozen: SandboxProcess) -> Iterator[dict[str, Any]]:
    """An account with a top-up, an open invoice, a running rental with a charge, a key."""
    account = frozen.create_account(balance_cents=5_000)
    frozen.open_invoice(account.account_id, 10_000, reason="topup_failed")
    with frozen.client(account.sid) as http:
        request = EXAMPLES["rental_create"]["request"]
        created = http.post("/v1/rentals", json=request)
        frozen.advance(5)
        running = wait_for_status(http, ok(created)["id"], {"running"})
        frozen.advance(60)  # 65 ¢/h for a minute: a 1 ¢ rental_charge
        yield {"account": account, "http": http, "created": created, "rental": running}


def test_every_example_is_covered() -> None:
    covered = {name[len("test_") :] for name in globals() if name.startswith("test_")}
    assert set(EXAMPLES) - {"_about"} <= covered


def test_auth_request_code(frozen: SandboxProcess) -> None:
    with frozen.client() as http:
        response = http.post("/v1/auth/request-code", json={"email": "new-1@example.com"})
    same_shape(example("auth_request_code"), ok(response))
    assert response.json() == {"ok": True, "created": True}


def test_auth_verify_code(frozen: SandboxProcess) -> None:
    with httpx.Client(base_url=frozen.url) as http:
        ok(http.post("/v1/auth/request-code", json={"email": "new-2@example.com"}))
        code = frozen.sign_in_code("new-2@example.com")
        response = http.post(
            "/v1/auth/verify-code", json={"email": "new-2@example.com", "code": code}
        )
    same_shape(example("auth_verify_code"), ok(response))


def test_auth_logout(frozen: SandboxProcess) -> None:
    with frozen.client(frozen.sign_in("new-3@example.com")) as http:
        same_shape(example("auth_logout"), ok(http.post("/v1/auth/logout")))


def test_auth_me(scene: dict[str, Any]) -> None:
    same_shape(example("auth_me"), ok(scene["http"].get("/v1/auth/me")))


def test_rental_get(scene: dict[str, Any]) -> None:
    rental = ok(scene["http"].get(f"/v1/rentals/{scene['rental']['id']}"))
    same_shape(example("rental_get"), rental)
    assert rental["totalChargedCents"] == 1


def test_rental_preview(scene: dict[str, Any]) -> None:
    request = EXAMPLES["rental_preview"]["request"]
    same_shape(
        example("rental_preview"), ok(scene["http"].post("/v1/rentals/preview", json=request))
    )


def test_rental_create(scene: dict[str, Any]) -> None:
    same_shape(example("rental_create"), ok(scene["created"]))


def test_rental_list(scene: dict[str, Any]) -> None:
    same_shape(example("rental_list"), ok(scene["http"].get("/v1/rentals")))


def test_rental_meter(scene: dict[str, Any]) -> None:
    same_shape(
        example("rental_meter"), ok(scene["http"].get(f"/v1/rentals/{scene['rental']['id']}/meter"))
    )


def test_rental_stop(frozen: SandboxProcess) -> None:
    account = frozen.create_account(balance_cents=1_000)
    with frozen.client(account.sid) as http:
        created = ok(http.post("/v1/rentals", json={"familyId": "rtx-4090", "gpuCount": 1}))
        same_shape(example("rental_stop"), ok(http.post(f"/v1/rentals/{created['id']}/stop")))


def test_catalog_listings(scene: dict[str, Any]) -> None:
    same_shape(example("catalog_listings"), ok(scene["http"].get("/v1/catalog/listings")))


def test_catalog_facets(scene: dict[str, Any]) -> None:
    same_shape(example("catalog_facets"), ok(scene["http"].get("/v1/catalog/facets")))


def test_billing_balance(scene: dict[str, Any]) -> None:
    balance = ok(scene["http"].get("/v1/billing/balance"))
    same_shape(example("billing_balance"), balance)
    assert balance["openInvoiceCount"] == 1


def test_billing_ledger(scene: dict[str, Any]) -> None:
    ledger = ok(scene["http"].get("/v1/billing/ledger"))
    by_type = {e["type"]: e for e in example("billing_ledger")["entries"]}
    assert {e["type"] for e in ledger["entries"]} == set(by_type)
    for entry in ledger["entries"]:
        same_shape(by_type[entry["type"]], entry)
    assert set(ledger) == set(example("billing_ledger"))
    assert ledger["nextCursor"] is None and isinstance(ledger["balanceCents"], int)


def test_ssh_key_create(frozen: SandboxProcess, tmp_path: Path) -> None:
    key = make_keypair(tmp_path)
    account = frozen.create_account()
    with frozen.client(account.sid) as http:
        response = http.post(
            "/v1/ssh-keys", json={"name": "macbook-2026", "publicKey": key.public_key}
        )
    same_shape(example("ssh_key_create"), ok(response))


def test_ssh_key_list(frozen: SandboxProcess, ssh_keypair: SSHKeypair) -> None:
    account = frozen.create_account(authorized_keys=ssh_keypair.public_key)
    with frozen.client(account.sid) as http:
        same_shape(example("ssh_key_list"), ok(http.get("/v1/ssh-keys")))


def test_error_unauthorized(frozen: SandboxProcess) -> None:
    response = httpx.get(f"{frozen.url}/v1/rentals")
    assert response.status_code == EXAMPLES["error_unauthorized"]["status"]
    assert response.json() == example("error_unauthorized")


def test_error_rate_limited(frozen: SandboxProcess) -> None:
    account = frozen.create_account()
    frozen.set_rate_limits(2, 1_000)
    try:
        with frozen.client(account.sid) as http:
            for _ in range(2):
                ok(http.get("/v1/auth/me"))
            response = http.get("/v1/auth/me")
    finally:
        frozen.set_rate_limits(100, 1_000)
    assert response.status_code == EXAMPLES["error_rate_limited"]["status"]
    same_shape(example("error_rate_limited"), response.json())
    for header in EXAMPLES["error_rate_limited"]["headers"]:
        assert response.headers[header].isdigit()
    assert response.json()["message"] == (
        f"Too many requests. Retry after {response.headers['Retry-After']} seconds."
    )


def test_error_shape(scene: dict[str, Any]) -> None:
    response = scene["http"].post("/v1/rentals", json={"gpuCount": 1})
    assert response.status_code == EXAMPLES["error_shape"]["status"]
    body = response.json()
    # The example's `details` key is a placeholder ("field"): each bad field is a key.
    same_shape({**example("error_shape"), "details": None}, {**body, "details": None})
    assert body["details"] == {"familyId": "is required"}
