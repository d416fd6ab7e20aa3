"""Every documented error code becomes its own error, in the user's words, with the API's message
kept; any other code falls back to its status class. Served by a real HTTP server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from helpers.vendor import Reply, VendorStub, vendor_examples, vendor_stub

from gpuoutlet_jupyter.api import (
    AlreadyStoppedError,
    APIError,
    AuthenticationError,
    BadRequestError,
    CodeExpiredError,
    CodeInvalidError,
    CodeRequestRateLimitedError,
    ConflictError,
    DuplicateKeyError,
    ForbiddenError,
    InsufficientBalanceError,
    InvalidCountError,
    InvalidEmailError,
    ModelUnavailableError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    RentalNotFoundError,
    RentalsClient,
    RetryPolicy,
    ServerError,
    UnauthorizedError,
    ValidationFailedError,
    WeakKeyError,
)

ONCE = RetryPolicy(attempts=1)


@pytest.fixture
def stub() -> Iterator[VendorStub]:
    with vendor_stub() as s:
        yield s


@pytest.fixture
def client(stub: VendorStub) -> Iterator[RentalsClient]:
    with RentalsClient(api_url=stub.url, sid="s", retry=ONCE) as c:
        yield c


def refuse(
    stub: VendorStub, method: str, path: str, status: int, body: Any, **headers: str
) -> None:
    stub.route(method, path, Reply(status, body, headers))


CASES: list[tuple[str, int, str, type[APIError], list[str]]] = [
    # (API code, status, endpoint, error class, words the message must hold)
    (
        "unauthorized",
        401,
        "GET /v1/auth/me",
        UnauthorizedError,
        ["expired", "sid", "GPUOUTLET_SID"],
    ),
    ("forbidden", 403, "GET /v1/rentals/rent_1", ForbiddenError, ["may not"]),
    (
        "rental_not_found",
        404,
        "GET /v1/rentals/rent_1",
        RentalNotFoundError,
        ["rent_1", "%gpu_rentals"],
    ),
    ("invalid_count", 400, "POST /v1/rentals", InvalidCountError, ["1, 2, 4 or 8"]),
    (
        "model_unavailable",
        400,
        "POST /v1/rentals",
        ModelUnavailableError,
        ["another region", "nothing was charged"],
    ),
    (
        "already_stopped",
        409,
        "POST /v1/rentals/rent_1/stop",
        AlreadyStoppedError,
        ["rent_1", "already stopped"],
    ),
    ("code_invalid", 401, "POST /v1/auth/verify-code", CodeInvalidError, ["5 wrong tries"]),
    ("code_expired", 401, "POST /v1/auth/verify-code", CodeExpiredError, ["10 minutes"]),
    ("invalid_email", 400, "POST /v1/auth/request-code", InvalidEmailError, ["email"]),
    ("weak_key", 400, "POST /v1/ssh-keys", WeakKeyError, ["ed25519"]),
    ("duplicate_key", 400, "POST /v1/ssh-keys", DuplicateKeyError, ["already on your"]),
]


def _call(client: RentalsClient, route: str) -> None:
    calls = {
        "GET /v1/auth/me": client.me,
        "GET /v1/rentals/rent_1": lambda: client.get("rent_1"),
        "POST /v1/rentals": lambda: client.create(family_id="rtx-4090"),
        "POST /v1/rentals/rent_1/stop": lambda: client.stop("rent_1"),
        "POST /v1/auth/verify-code": lambda: client.verify_code("a@b.c", "123456"),
        "POST /v1/auth/request-code": lambda: client.request_code("a@b.c"),
        "POST /v1/ssh-keys": lambda: client.add_ssh_key("k", "ssh-ed25519 AAAA"),
        "GET /v1/billing/balance": client.balance,
    }
    calls[route]()


@pytest.mark.parametrize(("code", "status", "route", "kind", "words"), CASES)
def test_each_documented_code_has_its_error(
    stub: VendorStub,
    client: RentalsClient,
    code: str,
    status: int,
    route: str,
    kind: type[APIError],
    words: list[str],
) -> None:
    method, path = route.split(" ")
    refuse(stub, method, path, status, {"error": code, "message": f"vendor words for {code}"})
    with pytest.raises(kind) as info:
        _call(client, route)
    error = info.value
    assert (error.status_code, error.code) == (status, code)
    assert error.api_message == f"vendor words for {code}"
    text = str(error)
    if code == "rental_not_found":
        # Its words name the API's route ("GET /v1/rentals lists yours") where the user's way
        # to list rentals is meant; they add nothing else, so only api_message keeps them.
        assert f"vendor words for {code}" not in text
    else:
        assert f"vendor words for {code}" in text  # the API's own message is kept
    for word in words:
        assert word in text


def test_the_documented_unauthorized_body(stub: VendorStub, client: RentalsClient) -> None:
    refuse(stub, "GET", "/v1/auth/me", 401, vendor_examples()["error_unauthorized"]["response"])
    with pytest.raises(UnauthorizedError, match="Not signed in") as info:
        client.me()
    assert isinstance(info.value, AuthenticationError)


def test_a_short_wallet_is_a_403_with_both_amounts(stub: VendorStub, client: RentalsClient) -> None:
    body = {
        "error": "insufficient_balance",
        "message": "Your available balance is below the 1-hour reserve",
        "details": {"neededCents": 280, "availableCents": 100},
    }
    refuse(stub, "POST", "/v1/rentals", 403, body)
    with pytest.raises(InsufficientBalanceError) as info:
        client.create(family_id="h100-80gb")
    error = info.value
    assert isinstance(error, PermissionDeniedError)
    assert (error.needed_cents, error.available_cents) == (280, 100)
    text = str(error)
    assert "$2.80" in text and "$1.00" in text and "Nothing was charged" in text
    assert "below the 1-hour reserve" in text
    # Not a session problem: the user must not be told to sign in again.
    assert "sign in" not in text.lower() and not isinstance(error, AuthenticationError)


def test_a_short_wallet_without_details_still_says_what_to_do(
    stub: VendorStub, client: RentalsClient
) -> None:
    refuse(stub, "POST", "/v1/rentals", 403, {"error": "insufficient_balance", "message": "low"})
    with pytest.raises(InsufficientBalanceError, match="Top up") as info:
        client.create(family_id="h100-80gb")
    assert (info.value.needed_cents, info.value.available_cents) == (None, None)


@pytest.mark.parametrize(
    ("details", "fields"),
    [
        ({"gpuCount": "must be 1, 2, 4 or 8"}, [("gpuCount", "must be 1, 2, 4 or 8")]),
        ({"name": ["too long", "bad chars"]}, [("name", "too long; bad chars")]),
        (
            {"fields": [{"field": "region", "message": "unknown region"}]},
            [("region", "unknown region")],
        ),
        ({"fields": {"familyId": "required"}}, [("familyId", "required")]),
    ],
)
def test_validation_failed_names_each_field(
    stub: VendorStub, client: RentalsClient, details: dict[str, Any], fields: list[tuple[str, str]]
) -> None:
    body = {"error": "validation_failed", "message": "Invalid body", "details": details}
    refuse(stub, "POST", "/v1/rentals", 400, body)
    with pytest.raises(ValidationFailedError) as info:
        client.create(family_id="rtx-4090")
    assert info.value.fields == fields
    for name, problem in fields:
        assert f"{name}: {problem}" in str(info.value)


@pytest.mark.parametrize(("header", "seconds"), [("23", 23.0), (None, 30.0), ("1.5", 1.5)])
def test_rate_limited_carries_retry_after(
    stub: VendorStub, client: RentalsClient, header: str | None, seconds: float
) -> None:
    headers = {"Retry-After": header} if header else {}
    refuse(
        stub,
        "GET",
        "/v1/billing/balance",
        429,
        vendor_examples()["error_rate_limited"]["response"],
        **headers,
    )
    with pytest.raises(RateLimitedError) as info:
        client.balance()
    assert info.value.retry_after == seconds
    assert f"retry in {seconds:.0f} s" in str(info.value)
    assert "Retry after 23 seconds" in str(info.value)


def test_a_short_retry_after_is_waited_once(stub: VendorStub) -> None:
    answers = iter([Reply(429, {"error": "rate_limited", "message": "slow"}, {"Retry-After": "2"})])

    def first_then_fine(seen: Any) -> Reply:
        return next(answers, Reply(200, vendor_examples()["billing_balance"]["response"]))

    stub.route("GET", "/v1/billing/balance", first_then_fine)
    waits: list[float] = []
    with RentalsClient(api_url=stub.url, sid="s", sleep=waits.append) as c:
        assert c.balance().total_cents == 5018
    assert waits == [2.0]


def test_a_long_retry_after_is_not_waited_inside_a_call(stub: VendorStub) -> None:
    refuse(stub, "GET", "/v1/billing/balance", 429, {"error": "rate_limited", "message": "x"})
    waits: list[float] = []
    with RentalsClient(api_url=stub.url, sid="s", sleep=waits.append) as c:
        with pytest.raises(RateLimitedError):
            c.balance()
    assert waits == []  # 30 s (no header) is the caller's to wait, not one call's


def test_code_request_rate_limited(stub: VendorStub, client: RentalsClient) -> None:
    refuse(
        stub,
        "POST",
        "/v1/auth/request-code",
        429,
        {"error": "code_request_rate_limited", "message": "wait"},
        **{"Retry-After": "17"},
    )
    with pytest.raises(CodeRequestRateLimitedError, match="17 s") as info:
        client.request_code("a@b.c")
    assert isinstance(info.value, RateLimitedError) and info.value.retry_after == 17
    assert stub.paths().count("POST /v1/auth/request-code") == 1


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (500, ServerError),
        (503, ServerError),
        (418, APIError),
    ],
)
def test_any_other_code_is_its_status_class_with_the_apis_message(
    stub: VendorStub, client: RentalsClient, status: int, kind: type[APIError]
) -> None:
    refuse(
        stub,
        "GET",
        "/v1/billing/balance",
        status,
        {"error": "brand_new_code", "message": "Something new"},
    )
    with pytest.raises(kind) as info:
        client.balance()
    assert type(info.value) is kind
    assert info.value.code == "brand_new_code"
    assert "brand_new_code: Something new" in str(info.value)


def test_an_error_without_a_json_body_keeps_the_status(
    stub: VendorStub, client: RentalsClient
) -> None:
    refuse(stub, "GET", "/v1/billing/balance", 502, b"<html>Bad Gateway</html>")
    with pytest.raises(ServerError) as info:
        client.balance()
    assert info.value.code == "http_502"
    assert "502" in str(info.value)


def test_the_old_nested_error_shape_is_not_the_contract(
    stub: VendorStub, client: RentalsClient
) -> None:
    # {"error": {"code": ...}} is not what the API sends; it reads as an unnamed 400.
    refuse(stub, "POST", "/v1/rentals", 400, {"error": {"code": "invalid_count", "message": "x"}})
    with pytest.raises(BadRequestError) as info:
        client.create(family_id="rtx-4090")
    assert not isinstance(info.value, InvalidCountError)


def test_model_unavailable_can_name_what_is_available(
    stub: VendorStub, client: RentalsClient
) -> None:
    refuse(
        stub,
        "POST",
        "/v1/rentals",
        400,
        {"error": "model_unavailable", "message": "No provider available for this config"},
    )
    with pytest.raises(ModelUnavailableError) as info:
        client.create(family_id="b200", region="JP")
    better = info.value.with_alternatives(["b200 in US", "h100-80gb in JP"])
    assert better.alternatives == ["b200 in US", "h100-80gb in JP"]
    assert "Available now: b200 in US; h100-80gb in JP." in str(better)
    assert "No provider available for this config" in str(better)
