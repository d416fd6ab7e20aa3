"""Bad requests get a 4xx with a clear JSON error, and move no money."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gpuoutlet_jupyter.sandbox.testing import SandboxAccount, SandboxProcess

GOOD = {"familyId": "rtx-4090", "gpuCount": 1}


@pytest.fixture
def account(sandbox: SandboxProcess) -> Iterator[SandboxAccount]:
    account = sandbox.create_account(balance_cents=10_000)
    before = sandbox.ledger(account.account_id)
    yield account
    # Whatever the test sent, nothing moved and nothing was created.
    assert sandbox.ledger(account.account_id) == before
    with sandbox.client(account.sid) as http:
        assert http.get("/v1/rentals").json() == {"rentals": []}


def assert_error(
    response: httpx.Response, status: int, code: str, field: str | None = None
) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and len(error["message"]) > 20
    if field is not None:
        assert error.get("field") == field, error


def without(key: str) -> dict[str, Any]:
    return {k: v for k, v in GOOD.items() if k != key}


BAD_BODIES: list[tuple[str, Any, str, str]] = [
    # (case id, JSON body, field, a word the message must contain)
    ("no-family", without("familyId"), "familyId", "required"),
    ("empty-family", {**GOOD, "familyId": ""}, "familyId", "at least 1"),
    ("family-number", {**GOOD, "familyId": 4090}, "familyId", "string"),
    ("unknown-family", {**GOOD, "familyId": "rtx-9090"}, "familyId", "rtx-4090"),
    ("no-count", without("gpuCount"), "gpuCount", "required"),
    ("count-3", {**GOOD, "gpuCount": 3}, "gpuCount", "1, 2, 4 or 8"),
    ("count-0", {**GOOD, "gpuCount": 0}, "gpuCount", "1, 2, 4 or 8"),
    ("count-16", {**GOOD, "gpuCount": 16}, "gpuCount", "1, 2, 4 or 8"),
    ("count-true", {**GOOD, "gpuCount": True}, "gpuCount", "integer"),
    ("count-2.5", {**GOOD, "gpuCount": 2.5}, "gpuCount", "integer"),
    ("count-2.0", {**GOOD, "gpuCount": 2.0}, "gpuCount", "integer"),
    ("count-string", {**GOOD, "gpuCount": "1"}, "gpuCount", "integer"),
    ("count-null", {**GOOD, "gpuCount": None}, "gpuCount", "integer"),
    ("unknown-template", {**GOOD, "templateId": "windows-11"}, "templateId", "pytorch"),
    ("template-number", {**GOOD, "templateId": 7}, "templateId", "string"),
    ("unknown-region", {**GOOD, "region": "XX"}, "region", "EU"),
    ("lowercase-region", {**GOOD, "region": "de"}, "region", "upper-case"),
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
    ("body", "field", "word"), [c[1:] for c in BAD_BODIES], ids=[c[0] for c in BAD_BODIES]
)
def test_bad_bodies_are_400_naming_the_field(
    sandbox: SandboxProcess, account: SandboxAccount, body: Any, field: str, word: str
) -> None:
    with sandbox.client(account.sid) as http:
        response = http.post(
            "/v1/rentals",
            content=json.dumps(body),
            headers={"Content-Type": "application/json"},
        )
    assert_error(response, 400, "validation_error", field)
    assert word in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("content", "headers", "code"),
    [
        (
            b'{"familyId": "rtx-4090", "gpuCount": 1',
            {"Content-Type": "application/json"},
            "invalid_json",
        ),
        (b"familyId=rtx-4090", {"Content-Type": "application/json"}, "invalid_json"),
        (b"\xff\xfe{}", {"Content-Type": "application/json"}, "invalid_json"),
        (
            b'{"gpuCount": NaN, "familyId": "rtx-4090"}',
            {"Content-Type": "application/json"},
            "validation_error",
        ),
        (b"", {"Content-Type": "application/json"}, "validation_error"),
        (json.dumps(GOOD).encode(), {"Content-Type": "text/plain"}, "validation_error"),
        (json.dumps(GOOD).encode(), {}, "validation_error"),
    ],
    ids=["truncated", "not-json", "not-utf8", "nan", "empty", "text-plain", "no-content-type"],
)
def test_undecodable_bodies_are_400(
    sandbox: SandboxProcess,
    account: SandboxAccount,
    content: bytes,
    headers: dict[str, str],
    code: str,
) -> None:
    with sandbox.client(account.sid) as http:
        response = http.post("/v1/rentals", content=content, headers=headers)
    assert_error(response, 400, code)
    message = response.json()["error"]["message"]
    assert "JSON" in message


def test_bodies_over_64_kib_are_413(sandbox: SandboxProcess, account: SandboxAccount) -> None:
    padded = {**GOOD, "padding": "x" * (64 * 1024)}
    with sandbox.client(account.sid) as http:
        assert_error(http.post("/v1/rentals", json=padded), 413, "payload_too_large")

        # Without a Content-Length (chunked), the sandbox counts as it reads.
        def chunks() -> Iterator[bytes]:
            yield json.dumps(padded).encode()

        assert_error(http.post("/v1/rentals", content=chunks()), 413, "payload_too_large")


def test_bodies_just_under_64_kib_are_read(sandbox: SandboxProcess) -> None:
    other = sandbox.create_account(balance_cents=10_000)
    small = {**GOOD, "padding": "x" * (60 * 1024)}  # an unknown field: ignored
    with sandbox.client(other.sid) as http:
        response = http.post("/v1/rentals", json=small)
        assert response.status_code == 200, response.text
        http.post(f"/v1/rentals/{response.json()['id']}/stop")


def test_idempotency_key_over_255_chars_is_400(
    sandbox: SandboxProcess, account: SandboxAccount
) -> None:
    with sandbox.client(account.sid) as http:
        response = http.post("/v1/rentals", json=GOOD, headers={"Idempotency-Key": "k" * 256})
    assert_error(response, 400, "validation_error", "Idempotency-Key")


@pytest.mark.parametrize("cookie", [None, "", "wrong-sid"], ids=["no-cookie", "empty", "wrong"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/wallet"),
        ("GET", "/v1/families"),
        ("GET", "/v1/rentals"),
        ("POST", "/v1/rentals"),
        ("GET", "/v1/rentals/rent_00000000000000000000000000"),
        ("POST", "/v1/rentals/rent_00000000000000000000000000/stop"),
    ],
)
def test_every_v1_endpoint_needs_a_known_sid(
    sandbox: SandboxProcess, account: SandboxAccount, cookie: str | None, method: str, path: str
) -> None:
    cookies = {} if cookie is None else {"sid": cookie}
    with httpx.Client(base_url=sandbox.url, cookies=cookies) as http:
        # Even a bad body is a 401 first: nothing is parsed for a stranger.
        response = http.request(
            method, path, content=b"{not json", headers={"Content-Type": "application/json"}
        )
    assert_error(response, 401, "unauthenticated")
    assert "sid" in response.json()["error"]["message"]


def test_unknown_rentals_and_routes_are_404_json(
    sandbox: SandboxProcess, account: SandboxAccount
) -> None:
    with sandbox.client(account.sid) as http:
        assert_error(http.get("/v1/rentals/nope"), 404, "not_found")
        assert_error(http.post("/v1/rentals/nope/stop"), 404, "not_found")
        assert_error(http.get("/v1/nothing-here"), 404, "not_found")
        assert_error(http.delete("/v1/rentals"), 405, "method_not_allowed")


def test_sandbox_controls_need_the_admin_token(
    sandbox: SandboxProcess, account: SandboxAccount
) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": sandbox.admin_token}):
        response = httpx.get(f"{sandbox.url}/sandbox/clock", headers=headers)
        assert_error(response, 401, "unauthenticated")
    response = httpx.post(
        f"{sandbox.url}/sandbox/accounts",
        json={"balanceCents": 100},
        cookies={"sid": account.sid},
    )
    assert_error(response, 401, "unauthenticated")
