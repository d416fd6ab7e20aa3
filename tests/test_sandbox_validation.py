"""Bad requests get the vendor's error (`validation_failed` naming every bad field,
`invalid_count`, `model_unavailable`, `insufficient_balance`, `unauthorized`, `not_found`)
and move no money."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from helpers.sandbox import RTX_4090, error, ok

from gpuoutlet_jupyter.sandbox.testing import SandboxAccount, SandboxProcess

GOOD = RTX_4090


@pytest.fixture
def account(sandbox: SandboxProcess) -> Iterator[SandboxAccount]:
    account = sandbox.create_account(balance_cents=10_000)
    before = sandbox.ledger(account.account_id)
    yield account
    # Whatever the test sent, nothing moved and nothing was created.
    assert sandbox.ledger(account.account_id) == before
    with sandbox.client(account.sid) as http:
        assert ok(http.get("/v1/rentals"))["rentals"] == []


def without(key: str) -> dict[str, Any]:
    return {k: v for k, v in GOOD.items() if k != key}


BAD_BODIES: list[tuple[str, Any, str, str]] = [
    # (case id, JSON body, field, words the field's detail must contain)
    ("no-family", without("familyId"), "familyId", "required"),
    ("empty-family", {**GOOD, "familyId": ""}, "familyId", "rtx-4090"),
    ("family-number", {**GOOD, "familyId": 4090}, "familyId", "string"),
    ("unknown-family", {**GOOD, "familyId": "rtx-9090"}, "familyId", "h100-80gb"),
    ("no-count", without("gpuCount"), "gpuCount", "required"),
    ("count-true", {**GOOD, "gpuCount": True}, "gpuCount", "number"),
    ("count-string", {**GOOD, "gpuCount": "1"}, "gpuCount", "number"),
    ("count-null", {**GOOD, "gpuCount": None}, "gpuCount", "number"),
    ("unknown-template", {**GOOD, "templateId": "windows-11"}, "templateId", "pytorch"),
    ("template-number", {**GOOD, "templateId": 7}, "templateId", "string"),
    ("bad-region", {**GOOD, "region": "Mars-1"}, "region", "ISO country code"),
    ("region-number", {**GOOD, "region": 49}, "region", "string"),
    ("long-name", {**GOOD, "name": "x" * 65}, "name", "64"),
    ("name-number", {**GOOD, "name": 42}, "name", "string"),
    ("negative-autostop", {**GOOD, "autoStopAfterHours": -1}, "autoStopAfterHours", "greater"),
    ("zero-autostop", {**GOOD, "autoStopAfterHours": 0}, "autoStopAfterHours", "greater"),
    ("string-autostop", {**GOOD, "autoStopAfterHours": "2"}, "autoStopAfterHours", "number"),
    ("bool-autostop", {**GOOD, "autoStopAfterHours": True}, "autoStopAfterHours", "number"),
    ("array-body", [GOOD], "body", "JSON object"),
    ("string-body", "rtx-4090", "body", "JSON object"),
    ("null-body", None, "body", "JSON object"),
]


@pytest.mark.parametrize(
    ("body", "field", "words"), [c[1:] for c in BAD_BODIES], ids=[c[0] for c in BAD_BODIES]
)
def test_bad_bodies_are_validation_failed_naming_the_field(
    sandbox: SandboxProcess, account: SandboxAccount, body: Any, field: str, words: str
) -> None:
    with sandbox.client(account.sid) as http:
        response = http.post(
            "/v1/rentals", content=json.dumps(body), headers={"Content-Type": "application/json"}
        )
    details = error(response, 400, "validation_failed")["details"]
    assert set(details) == {field}
    assert words in details[field]
    assert field in response.json()["message"]


def test_every_bad_field_is_named_at_once(sandbox: SandboxProcess, account: SandboxAccount) -> None:
    body = {"gpuCount": "two", "templateId": "nope", "name": 1}
    with sandbox.client(account.sid) as http:
        details = error(http.post("/v1/rentals", json=body), 400, "validation_failed")["details"]
    assert set(details) == {"familyId", "gpuCount", "templateId", "name"}


@pytest.mark.parametrize("count", [0, 3, 5, 16, 2.5, -1])
def test_a_count_other_than_1_2_4_8_is_invalid_count(
    sandbox: SandboxProcess, account: SandboxAccount, count: float
) -> None:
    with sandbox.client(account.sid) as http:
        for path in ("/v1/rentals", "/v1/rentals/preview"):
            body = error(http.post(path, json={**GOOD, "gpuCount": count}), 400, "invalid_count")
            assert body["details"] == {"gpuCount": "must be 1, 2, 4 or 8"}


def test_no_stock_there_is_model_unavailable(
    sandbox: SandboxProcess, account: SandboxAccount
) -> None:
    with sandbox.client(account.sid) as http:
        for body in (
            {"familyId": "b200", "gpuCount": 8, "region": "JP"},  # never offered there
            {"familyId": "rtx-4090", "gpuCount": 1, "region": "BR"},  # no listings in Brazil
        ):
            refused = error(http.post("/v1/rentals", json=body), 400, "model_unavailable")
            assert refused["details"]["familyId"] == body["familyId"]
            assert "No provider available for this config" in refused["message"]
            error(http.post("/v1/rentals/preview", json=body), 400, "model_unavailable")


def test_a_short_wallet_is_403_insufficient_balance(sandbox: SandboxProcess) -> None:
    account = sandbox.create_account(balance_cents=279)
    with sandbox.client(account.sid) as http:
        body = {"familyId": "h100-80gb", "gpuCount": 1}
        refused = error(http.post("/v1/rentals", json=body), 403, "insufficient_balance")
        assert refused["details"] == {"neededCents": 280, "availableCents": 279, "shortCents": 1}
        assert "1-hour reserve" in refused["message"]
        assert ok(http.get("/v1/rentals"))["rentals"] == []
        assert ok(http.get("/v1/billing/balance"))["availableCents"] == 279
        ok(http.post("/v1/rentals/preview", json=body))  # a quote is not a launch
        sandbox.deposit(account.account_id, 1)
        rental = ok(http.post("/v1/rentals", json=body))
        assert ok(http.get("/v1/billing/balance"))["availableCents"] == 0
        ok(http.post(f"/v1/rentals/{rental['id']}/stop"))


def test_lenient_where_the_vendor_is(sandbox: SandboxProcess) -> None:
    account = sandbox.create_account(balance_cents=10_000)
    with sandbox.client(account.sid) as http:
        # A JSON 2.0 is the number 2; regions in any case; unknown fields ignored.
        two = ok(http.post("/v1/rentals", json={**GOOD, "gpuCount": 2.0, "region": "de", "x": 1}))
        rental = ok(http.get(f"/v1/rentals/{two['id']}"))
        assert (rental["gpuCount"], rental["region"]) == (2, "DE-Frankfurt")
        ok(http.post(f"/v1/rentals/{two['id']}/stop"))


def test_an_auto_stop_too_far_to_write_down_is_one_that_never_comes(
    sandbox: SandboxProcess,
) -> None:
    # Found by schemathesis: 3.76e307 hours overflowed the store and answered 500.
    account = sandbox.create_account(balance_cents=10_000)
    with sandbox.client(account.sid) as http:
        for hours in (3.76077905614407e307, 1e12):
            created = ok(http.post("/v1/rentals", json={**GOOD, "autoStopAfterHours": hours}))
            assert created["status"] == "provisioning"
            assert ok(http.get(f"/v1/rentals/{created['id']}"))["status"] in (
                "provisioning",
                "running",
            )
            ok(http.post(f"/v1/rentals/{created['id']}/stop"))


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b'{"familyId": "rtx-4090", "gpuCount": 1', {"Content-Type": "application/json"}),
        (b"familyId=rtx-4090", {"Content-Type": "application/json"}),
        (b"\xff\xfe{}", {"Content-Type": "application/json"}),
        (b"", {"Content-Type": "application/json"}),
        (json.dumps(GOOD).encode(), {"Content-Type": "text/plain"}),
    ],
    ids=["truncated", "not-json", "not-utf8", "empty", "text-plain"],
)
def test_undecodable_bodies_are_validation_failed(
    sandbox: SandboxProcess, account: SandboxAccount, content: bytes, headers: dict[str, str]
) -> None:
    with sandbox.client(account.sid) as http:
        body = error(
            http.post("/v1/rentals", content=content, headers=headers), 400, "validation_failed"
        )
    assert "body" in body["details"]


def test_bodies_over_64_kib_are_refused(sandbox: SandboxProcess, account: SandboxAccount) -> None:
    padded = {**GOOD, "padding": "x" * (64 * 1024)}
    with sandbox.client(account.sid) as http:
        error(http.post("/v1/rentals", json=padded), 400, "validation_failed")

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted while read
            yield json.dumps(padded).encode()

        error(http.post("/v1/rentals", content=chunks()), 400, "validation_failed")


V1 = [
    ("GET", "/v1/auth/me"),
    ("POST", "/v1/auth/logout"),
    ("GET", "/v1/billing/balance"),
    ("GET", "/v1/billing/ledger"),
    ("GET", "/v1/billing/invoices"),
    ("GET", "/v1/catalog/listings"),
    ("GET", "/v1/catalog/facets"),
    ("POST", "/v1/rentals/preview"),
    ("GET", "/v1/rentals"),
    ("POST", "/v1/rentals"),
    ("GET", "/v1/rentals/rent_01H00000000000000000000000"),
    ("POST", "/v1/rentals/rent_01H00000000000000000000000/stop"),
    ("GET", "/v1/rentals/rent_01H00000000000000000000000/meter"),
    ("GET", "/v1/ssh-keys"),
    ("POST", "/v1/ssh-keys"),
    ("DELETE", "/v1/ssh-keys/key_01H00000000000000000000000"),
    ("GET", "/v1/no-such-thing"),
]


@pytest.mark.parametrize("cookie", [None, "", "wrong-sid"], ids=["no-cookie", "empty", "wrong"])
@pytest.mark.parametrize(("method", "path"), V1, ids=[f"{m} {p}" for m, p in V1])
def test_every_v1_endpoint_needs_a_session(
    sandbox: SandboxProcess, cookie: str | None, method: str, path: str
) -> None:
    cookies = {} if cookie is None else {"sid": cookie}
    with httpx.Client(base_url=sandbox.url, cookies=cookies) as http:
        # Even a bad body is a 401 first: nothing is parsed for a stranger.
        response = http.request(
            method, path, content=b"{not json", headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 401
    assert response.json() == {"error": "unauthorized", "message": "Not signed in"}


def test_unknown_routes_and_methods_are_404_not_found(
    sandbox: SandboxProcess, account: SandboxAccount
) -> None:
    with sandbox.client(account.sid) as http:
        error(http.get("/v1/nothing-here"), 404, "not_found")
        error(http.delete("/v1/rentals"), 404, "not_found")
        error(http.get("/v1/rentals/nope"), 404, "rental_not_found")
        error(http.post("/v1/rentals/nope/stop"), 404, "rental_not_found")


def test_sandbox_controls_need_the_admin_token(
    sandbox: SandboxProcess, account: SandboxAccount
) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": sandbox.admin_token}):
        error(httpx.get(f"{sandbox.url}/sandbox/clock", headers=headers), 401, "unauthorized")
    response = httpx.post(
        f"{sandbox.url}/sandbox/accounts", json={"balanceCents": 100}, cookies={"sid": account.sid}
    )
    error(response, 401, "unauthorized")
