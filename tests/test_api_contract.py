"""The client against the vendor's published contract: every documented example parses, every
request goes to a documented endpoint, lists are followed to the end, money is exact, and a
create is never sent twice. Served by a real HTTP server answering with the sheet's examples."""

from __future__ import annotations

import asyncio
import logging
import socket
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from helpers.vendor import Reply, Seen, VendorStub, vendor_examples, vendor_stub

from gpuoutlet_jupyter.api import (
    AlreadyStoppedError,
    AsyncRentalsClient,
    Balance,
    ConfigurationError,
    CreatedRental,
    MalformedResponseError,
    Meter,
    Preview,
    Rental,
    RentalRequest,
    RentalsClient,
    RequestValidationError,
    RetryPolicy,
    ServerError,
    Session,
    Settings,
    SSHKey,
    StopResult,
    TransportError,
    UnauthorizedError,
    contract,
)
from gpuoutlet_jupyter.api.account import CodeRequested, LoggedOut, SSHKeyList
from gpuoutlet_jupyter.api.listings import Facets, ListingsPage
from gpuoutlet_jupyter.api.models import RentalsPage

FAST = RetryPolicy(attempts=4, backoff_initial=0.001, backoff_max=0.002)
#: The vendor sheet, in the shared folder beside the checkout (or beside its worktrees).
SHEET = next(
    (
        p / "shared" / "vendor" / "gpuoutlet-api.md"
        for p in Path(__file__).resolve().parents
        if (p / "shared" / "vendor" / "gpuoutlet-api.md").exists()
    ),
    Path("/nonexistent"),
)

#: The reply model of every example of the sheet.
MODELS: dict[str, type[Any]] = {
    "auth_request_code": CodeRequested,
    "auth_verify_code": Session,
    "auth_logout": LoggedOut,
    "auth_me": Session,
    "rental_get": Rental,
    "rental_preview": Preview,
    "rental_create": CreatedRental,
    "rental_list": RentalsPage,
    "rental_stop": StopResult,
    "rental_meter": Meter,
    "catalog_listings": ListingsPage,
    "catalog_facets": Facets,
    "billing_balance": Balance,
    "ssh_key_create": SSHKey,
    "ssh_key_list": SSHKeyList,
}
#: Examples of endpoints the client does not call (documented, not needed).
NOT_CALLED = {"billing_ledger"}


@pytest.fixture
def stub() -> Any:
    with vendor_stub() as s:
        yield s


@pytest.fixture
def client(stub: VendorStub) -> Any:
    with RentalsClient(api_url=stub.url, sid="sid-value", retry=FAST, sleep=lambda s: None) as c:
        yield c


# The documented examples.


@pytest.mark.parametrize("name", sorted(set(vendor_examples()) - NOT_CALLED))
def test_every_example_of_the_sheet_parses(name: str) -> None:
    example = vendor_examples()[name]
    if "status" in example:  # an error example: its shape is the error body (see below)
        assert set(example["response"]) <= {"error", "message", "details"}
        return
    parsed = MODELS[name].model_validate(example["response"])
    assert parsed is not None


def test_the_rental_carries_every_documented_field() -> None:
    rental = Rental.model_validate(vendor_examples()["rental_get"]["response"])
    assert (rental.family_id, rental.gpu_count, rental.region, rental.provider) == (
        "rtx-4090",
        1,
        "US-East",
        "vast",
    )
    assert (rental.total_charged_cents, rental.stopped_at, rental.error) == (47, None, None)
    assert (rental.host, rental.port, rental.name) == ("123.45.67.89", 22001, "my-finetune")


def test_unknown_fields_are_ignored() -> None:
    data = {**vendor_examples()["rental_get"]["response"], "newVendorField": {"x": 1}}
    assert Rental.model_validate(data).id == "rent_01H..."


@pytest.mark.parametrize(
    ("dollars", "cents"),
    [(2.80, 280), (0.65, 65), (0.1, 10), (0.29, 29), (1.15, 115), (9.8, 980), (12, 1200)],
)
def test_meter_rate_is_converted_to_cents_exactly(dollars: float, cents: int) -> None:
    # 0.29 * 100 is 28.999999999999996 and 1.15 * 100 is 114.99999999999999 in floats.
    meter = Meter.model_validate(
        {**vendor_examples()["rental_meter"]["response"], "ratePerHour": dollars}
    )
    assert meter.rate_per_hour_cents == cents
    assert meter.rate_per_hour == Decimal(str(dollars))


def test_meter_rate_must_be_a_number() -> None:
    with pytest.raises(ValueError, match="dollars"):
        Meter.model_validate({**vendor_examples()["rental_meter"]["response"], "ratePerHour": True})


# Every call goes to a documented endpoint.


def test_every_endpoint_of_the_contract_is_in_the_sheets_examples() -> None:
    documented = {
        (e["method"], e["path"].replace(":id", "{id}"))
        for e in vendor_examples().values()
        if "method" in e
    }
    for endpoint in contract.ENDPOINTS:
        assert (endpoint.method, endpoint.path) in documented, endpoint.name


@pytest.mark.skipif(not SHEET.exists(), reason="the vendor sheet is not next to this checkout")
def test_every_endpoint_of_the_contract_is_in_the_sheets_index() -> None:
    text = SHEET.read_text(encoding="utf-8")
    for endpoint in contract.ENDPOINTS:
        path = endpoint.path.replace("{id}", ":id")
        assert f"| {endpoint.method} | {path} |" in text, endpoint.name
        assert endpoint.source.split("/", 1)[1] in text, endpoint.source


def _every_call(c: RentalsClient) -> None:
    c.me()
    c.request_code("you@example.com")
    c.verify_code("you@example.com", "123456")
    c.balance()
    c.facets()
    c.preview(family_id="h100-80gb")
    c.create(family_id="rtx-4090")
    c.list(status="running")
    c.get("rent_01H")
    c.meter("rent_01H")
    c.stop("rent_01H")
    c.ssh_keys()
    c.add_ssh_key("laptop", "ssh-ed25519 AAAA you@laptop")
    c.logout()


def test_every_client_call_is_a_listed_endpoint(stub: VendorStub, client: RentalsClient) -> None:
    stub.route("GET", "/v1/catalog/listings", Reply(200, {"listings": [], "nextCursor": None}))
    stub.route(
        "POST",
        "/v1/auth/verify-code",
        Reply(
            200,
            vendor_examples()["auth_verify_code"]["response"],
            {"Set-Cookie": "sid=new; HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age=2592000"},
        ),
    )
    _every_call(client)
    client.listings()
    assert stub.requests
    for seen in stub.requests:
        assert contract.endpoint_for(seen.method, seen.path) is not None, seen.path
    called = {contract.endpoint_for(s.method, s.path) for s in stub.requests}
    assert called == set(contract.ENDPOINTS)


def test_a_request_outside_the_contract_is_never_sent(
    stub: VendorStub, client: RentalsClient
) -> None:
    families = contract.Endpoint("families", "GET", "/v1/families", "nowhere", "-", retry_safe=True)
    with pytest.raises(contract.ContractViolation, match="/v1/families"):
        client._call(families)
    assert stub.requests == []


def test_the_contract_is_checked_under_a_path_prefix(stub: VendorStub) -> None:
    stub.route(
        "GET",
        "/proxy/v1/billing/balance",
        Reply(200, vendor_examples()["billing_balance"]["response"]),
    )
    with RentalsClient(api_url=stub.url + "/proxy", sid="s", retry=FAST) as c:
        assert c.balance().available_cents == 4953


def test_session_endpoints_need_a_sid_and_sign_in_does_not(stub: VendorStub) -> None:
    stub.route(
        "POST",
        "/v1/auth/verify-code",
        Reply(
            200,
            vendor_examples()["auth_verify_code"]["response"],
            {"Set-Cookie": "sid=fresh-session; Path=/; HttpOnly"},
        ),
    )
    with RentalsClient(Settings(api_url=stub.url), retry=FAST) as c:
        with pytest.raises(ConfigurationError, match="sid"):
            c.balance()
        assert c.request_code("you@example.com").ok
        signed = c.verify_code("you@example.com", "123456")
    assert signed.session.user.email == "you@example.com"
    assert signed.sid.get_secret_value() == "fresh-session"
    assert "fresh-session" not in repr(signed)
    assert all("cookie" not in s.headers for s in stub.requests)


def test_verify_code_without_a_cookie_is_malformed(stub: VendorStub, client: RentalsClient) -> None:
    with pytest.raises(MalformedResponseError, match="no `sid` cookie"):
        client.verify_code("you@example.com", "123456")


def test_the_sid_is_sent_as_the_cookie_and_nowhere_else(
    stub: VendorStub, client: RentalsClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    stub.route(
        "GET", "/v1/billing/balance", Reply(500, {"error": "internal_error", "message": "boom"})
    )
    with pytest.raises(ServerError) as info:
        client.balance()
    assert stub.requests[0].headers["cookie"] == "sid=sid-value"
    assert "sid-value" not in str(info.value) and "sid-value" not in repr(info.value.details)
    assert "sid-value" not in caplog.text and "sid-value" not in repr(client)


# Lists are followed to the end.


def _rental(number: int) -> dict[str, Any]:
    return {
        **vendor_examples()["rental_list"]["response"]["rentals"][0],
        "id": f"rent_{number:04d}",
    }


def test_the_rentals_list_is_followed_page_by_page(stub: VendorStub, client: RentalsClient) -> None:
    everything = [_rental(n) for n in range(130)]

    def pages(seen: Seen) -> Reply:
        size = int(seen.query["pageSize"][0])
        start = int(seen.query.get("cursor", ["0"])[0])
        chunk = everything[start : start + min(size, 50)]  # the server may give less than asked
        more = start + len(chunk) < len(everything)
        return Reply(
            200, {"rentals": chunk, "nextCursor": str(start + len(chunk)) if more else None}
        )

    stub.route("GET", "/v1/rentals", pages)
    listed = client.list(status="running")
    assert [r.id for r in listed] == [r["id"] for r in everything]
    assert len(stub.requests) == 3
    assert {s.query["pageSize"][0] for s in stub.requests} == {"200"}
    assert {s.query["status"][0] for s in stub.requests} == {"running"}


def test_a_cursor_that_repeats_is_malformed_not_endless(
    stub: VendorStub, client: RentalsClient
) -> None:
    stub.route("GET", "/v1/rentals", Reply(200, {"rentals": [_rental(1)], "nextCursor": "again"}))
    with pytest.raises(MalformedResponseError, match="never ends"):
        client.list()
    assert len(stub.requests) == 2


def test_a_status_the_api_does_not_have_is_refused(stub: VendorStub, client: RentalsClient) -> None:
    with pytest.raises(RequestValidationError, match="status"):
        client.list(status="paused")
    assert stub.requests == []


def test_listings_are_followed_to_the_end(stub: VendorStub, client: RentalsClient) -> None:
    listing = vendor_examples()["catalog_listings"]["response"]["listings"][0]

    def pages(seen: Seen) -> Reply:
        cursor = seen.query.get("cursor", [None])[0]
        if cursor is None:
            return Reply(200, {"listings": [listing], "nextCursor": "p2"})
        return Reply(200, {"listings": [{**listing, "id": "lst_2"}], "nextCursor": None})

    stub.route("GET", "/v1/catalog/listings", pages)
    assert [x.id for x in client.listings(region="US")] == ["lst_01H...", "lst_2"]
    assert stub.requests[0].query["region"] == ["US"]


# A create is sent once; what may be repeated is.


def test_a_create_is_never_retried(stub: VendorStub, client: RentalsClient) -> None:
    stub.route(
        "POST", "/v1/rentals", Reply(503, {"error": "internal_error", "message": "upstream down"})
    )
    with pytest.raises(ServerError, match="check your rentals list"):
        client.create(family_id="rtx-4090")
    assert stub.paths().count("POST /v1/rentals") == 1


def test_a_create_whose_answer_is_lost_is_not_sent_again(
    stub: VendorStub, client: RentalsClient
) -> None:
    def drop(seen: Seen) -> Reply:
        raise ConnectionError("the answer is lost")  # the handler dies: no reply at all

    stub.route("POST", "/v1/rentals", drop)
    with pytest.raises(TransportError):
        client.create(family_id="rtx-4090")
    assert stub.paths().count("POST /v1/rentals") == 1
    assert "Idempotency-Key".lower() not in stub.requests[0].headers


def test_a_stop_is_retried_and_a_second_stop_is_already_stopped(
    stub: VendorStub, client: RentalsClient
) -> None:
    answers = iter(
        [
            Reply(502, {"error": "internal_error", "message": "bad gateway"}),
            Reply(
                409,
                {
                    "error": "already_stopped",
                    "message": "This rental is already in a terminal state",
                },
            ),
        ]
    )
    stub.route("POST", "/v1/rentals/[^/]+/stop", lambda seen: next(answers))
    with pytest.raises(AlreadyStoppedError) as info:
        client.stop("rent_01H")
    assert "already stopped" in str(info.value) and "terminal state" in str(info.value)
    assert stub.paths().count("POST /v1/rentals/rent_01H/stop") == 2


def test_preview_is_a_quote_of_the_request(stub: VendorStub, client: RentalsClient) -> None:
    request = RentalRequest.build(
        family_id="h100-80gb", gpu_count=2, region="US", name="x", auto_stop_after_hours=2
    )
    quote = client.preview(request)
    assert (quote.price_per_hour_cents, quote.estimated_provision_seconds) == (280, 45)
    assert quote.matched_listing is not None and quote.matched_listing.provider_code == "vast"
    assert stub.requests[0].body == {
        "familyId": "h100-80gb",
        "gpuCount": 2,
        "templateId": "ubuntu-24-04",
        "region": "US",
    }


def test_the_create_reply_is_a_subset_completed_from_the_request(client: RentalsClient) -> None:
    request = RentalRequest.build(family_id="rtx-4090", template_id="pytorch", name="alice/exp-42")
    created = client.create(request)
    rental = Rental.from_created(created, request)
    assert (rental.id, rental.status, rental.family_id, rental.gpu_count, rental.name) == (
        "rent_01H...",
        "provisioning",
        "rtx-4090",
        1,
        "alice/exp-42",
    )
    assert rental.total_charged_cents == 0


def test_unreachable_api_names_the_url() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    waits: list[float] = []
    with RentalsClient(api_url=url, sid="s", retry=FAST, sleep=waits.append) as c:
        with pytest.raises(TransportError) as info:
            c.balance()
    assert url in str(info.value) and "GPUOUTLET_API_URL" in str(info.value)
    assert len(waits) == FAST.attempts - 1


@pytest.mark.asyncio
async def test_the_async_client_makes_the_same_calls(stub: VendorStub) -> None:
    stub.route("GET", "/v1/catalog/listings", Reply(200, {"listings": [], "nextCursor": None}))
    stub.route(
        "POST",
        "/v1/auth/verify-code",
        Reply(200, vendor_examples()["auth_verify_code"]["response"], {"Set-Cookie": "sid=n"}),
    )
    async with AsyncRentalsClient(api_url=stub.url, sid="s", retry=FAST) as c:
        await asyncio.gather(c.me(), c.balance(), c.facets(), c.listings())
        await c.request_code("you@example.com")
        assert (await c.verify_code("you@example.com", "1")).sid.get_secret_value() == "n"
        assert (await c.preview(family_id="h100-80gb")).price_per_hour_cents == 280
        assert (await c.create(family_id="rtx-4090")).status == "provisioning"
        assert len(await c.list()) == 1
        assert (await c.get("rent_01H")).total_charged_cents == 47
        assert (await c.meter("rent_01H")).rate_per_hour_cents == 280
        assert (await c.stop("rent_01H")).final_charged_cents == 2178
        assert [k.fingerprint for k in await c.ssh_keys()] == ["SHA256:Z9d..."]
        assert (await c.add_ssh_key("a", "ssh-ed25519 AAAA")).id == "key_01H..."
        assert (await c.logout()).ok
        stub.route(
            "GET", "/v1/auth/me", Reply(401, vendor_examples()["error_unauthorized"]["response"])
        )
        with pytest.raises(UnauthorizedError):
            await c.me()
    assert {contract.endpoint_for(s.method, s.path) for s in stub.requests} == set(
        contract.ENDPOINTS
    )
