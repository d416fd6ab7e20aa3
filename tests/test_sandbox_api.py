"""The sandbox's /v1 API over real HTTP: each endpoint of the vendor sheet, its shapes, ids
and codes."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import pytest
from helpers.sandbox import ISO_UTC, RTX_4090, error, is_id, ok, rent

from gpuoutlet_jupyter.sandbox.testing import SandboxProcess, wait_for_status

CREATE_KEYS = {"id", "status", "host", "port", "pricePerHourCents", "startedAt"}
LIST_KEYS = {
    "id",
    "name",
    "status",
    "familyId",
    "gpuCount",
    "pricePerHourCents",
    "host",
    "port",
    "region",
    "startedAt",
    "stoppedAt",
    "totalChargedCents",
}
RENTAL_KEYS = LIST_KEYS | {"provider", "error"}


@pytest.fixture
def http(sandbox: SandboxProcess) -> Any:
    account = sandbox.create_account(balance_cents=100_000)
    with sandbox.client(account.sid) as client:
        yield client


# --- auth/me and money ----------------------------------------------------------------------


def test_me_says_who_is_signed_in(sandbox: SandboxProcess) -> None:
    account = sandbox.create_account(email="ada@example.com")
    with sandbox.client(account.sid) as http:
        me = ok(http.get("/v1/auth/me"))
    assert me["user"]["email"] == "ada@example.com"
    assert me["user"]["id"] == account.account_id and is_id(me["user"]["id"], "usr")
    assert ISO_UTC.match(me["user"]["createdAt"]) and ISO_UTC.match(me["expiresAt"])


def test_balance_and_ledger_of_a_new_account(sandbox: SandboxProcess) -> None:
    account = sandbox.create_account(balance_cents=5_000)
    with sandbox.client(account.sid) as http:
        balance = ok(http.get("/v1/billing/balance"))
        ledger = ok(http.get("/v1/billing/ledger"))
    assert {k: v for k, v in balance.items() if k != "updatedAt"} == {
        "availableCents": 5_000,
        "reservedCents": 0,
        "totalCents": 5_000,
        "openInvoicesCents": 0,
        "openInvoiceCount": 0,
    }
    assert ISO_UTC.match(balance["updatedAt"])
    (topup,) = ledger["entries"]
    assert topup["type"] == "stripe_topup" and topup["amountCents"] == 5_000
    assert topup["balanceAfterCents"] == 5_000 and topup["stripeChargeId"].startswith("ch_")
    assert "rentalId" not in topup and is_id(topup["id"], "led")
    assert (ledger["balanceCents"], ledger["nextCursor"]) == (5_000, None)


def test_open_invoices_show_on_the_balance(sandbox: SandboxProcess) -> None:
    account = sandbox.create_account(balance_cents=1_000)
    invoice = sandbox.open_invoice(account.account_id, 10_000, reason="topup_failed")
    assert is_id(invoice["id"], "inv") and is_id(invoice["lineItems"][0]["id"], "li")
    with sandbox.client(account.sid) as http:
        balance = ok(http.get("/v1/billing/balance"))
        assert (balance["openInvoicesCents"], balance["openInvoiceCount"]) == (10_000, 1)
        listed = ok(http.get("/v1/billing/invoices"))["data"]
        assert [i["id"] for i in listed] == [invoice["id"]]
        assert listed[0]["status"] == "open" and listed[0]["currency"] == "USD"
        assert ok(http.get(f"/v1/billing/invoices/{invoice['id']}/pay-url"))["url"].startswith(
            "https://invoice.stripe.com/"
        )
        sandbox.pay_invoice(invoice["id"])  # a failed top-up, once paid, credits the wallet
        balance = ok(http.get("/v1/billing/balance"))
        assert (balance["openInvoicesCents"], balance["availableCents"]) == (0, 11_000)
        paid = ok(http.get(f"/v1/billing/invoices/{invoice['id']}"))
        assert paid["status"] == "paid" and ISO_UTC.match(paid["paidAt"]) and paid["receiptUrl"]
        assert ok(http.get("/v1/billing/invoices", params={"status": "open"}))["data"] == []
        error(http.get("/v1/billing/invoices/inv_01H0000000000000000000000"), 404, "not_found")


def test_payments_are_off_as_in_the_vendors_mock_mode(http: httpx.Client) -> None:
    error(http.post("/v1/billing/checkout", json={"amountCents": 50}), 400, "invalid_amount")
    error(http.post("/v1/billing/checkout", json={"amountCents": 1_000}), 400, "billing_disabled")
    error(http.post("/v1/billing/setup-intent"), 400, "billing_disabled")
    card = ok(http.get("/v1/billing/card"))
    assert card == {"brand": None, "last4": None, "expMonth": None, "expYear": None, "pmId": None}
    assert ok(http.delete("/v1/billing/card")) == {"ok": True}
    off = ok(http.put("/v1/billing/auto-topup", json={"enabled": False}))
    assert off["enabled"] is False
    on = {"enabled": True, "thresholdCents": 2_500, "topupAmountCents": 10_000}
    error(http.put("/v1/billing/auto-topup", json=on), 400, "billing_disabled")


# --- catalog --------------------------------------------------------------------------------


def test_listings_cheapest_first_with_several_providers_and_regions(http: httpx.Client) -> None:
    listings: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"pageSize": 200}
        if cursor:
            params["cursor"] = cursor
        page = ok(http.get("/v1/catalog/listings", params=params))
        listings += page["listings"]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    prices = [x["pricePerHourCents"] for x in listings]
    assert prices == sorted(prices)
    assert len({x["id"] for x in listings}) == len(listings)
    assert all(is_id(x["id"], "lst") for x in listings)
    families = {x["family"] for x in listings}
    assert {"rtx-4090", "h100-80gb", "b200"} <= families and len(families) >= 6
    for family in ("rtx-4090", "h100-80gb"):
        offers = [x for x in listings if x["family"] == family]
        assert {x["providerCode"] for x in offers} == {"vast", "runpod"}
        assert len({x["region"] for x in offers}) >= 3
        assert len({x["pricePerHourCents"] for x in offers if x["gpuCount"] == 1}) >= 3
    cheapest_4090 = min(
        (x for x in listings if x["family"] == "rtx-4090" and x["gpuCount"] == 1),
        key=lambda x: x["pricePerHourCents"],
    )
    assert cheapest_4090["pricePerHourCents"] == 65  # the sheet's own example price


def test_listing_filters(http: httpx.Client) -> None:
    def listed(**params: Any) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = ok(
            http.get("/v1/catalog/listings", params={**params, "pageSize": 200})
        )["listings"]
        return result

    h100 = listed(model="H100", minVramGb=80, maxPricePerHourCents=300)  # the sheet's example
    assert h100 and all(
        x["model"] == "H100_SXM_80GB" and x["pricePerHourCents"] <= 300 for x in h100
    )
    assert all(x["gpuCount"] == 2 for x in listed(gpuCount=2))
    assert {x["regionCode"] for x in listed(region="DE")} == {"DE"}
    assert {x["regionCode"] for x in listed(region="eu")} <= {
        "DE",
        "FI",
        "FR",
        "GB",
        "NL",
        "PL",
        "SE",
    }
    assert {x["regionCode"] for x in listed(region="apac")} <= {"AU", "JP", "KR", "SG"}
    assert all(x["vramGb"] >= 48 for x in listed(minVramGb=48))
    assert listed(model="B200", region="JP") == []
    error(http.get("/v1/catalog/listings", params={"gpuCount": 3}), 400, "invalid_count")
    error(http.get("/v1/catalog/listings", params={"region": "Mars!"}), 400, "validation_failed")
    error(http.get("/v1/catalog/listings", params={"pageSize": 201}), 400, "validation_failed")
    bad = base64.b64encode(json.dumps({"lastId": "lst_nope"}).encode()).decode()
    error(http.get("/v1/catalog/listings", params={"cursor": bad}), 400, "validation_failed")


def test_listing_cursor_is_the_sheets_opaque_base64(http: httpx.Client) -> None:
    first = ok(http.get("/v1/catalog/listings", params={"pageSize": 2}))
    assert json.loads(base64.b64decode(first["nextCursor"])) == {
        "lastId": first["listings"][-1]["id"]
    }
    second = ok(
        http.get("/v1/catalog/listings", params={"pageSize": 2, "cursor": first["nextCursor"]})
    )
    assert not {x["id"] for x in first["listings"]} & {x["id"] for x in second["listings"]}
    assert second["listings"][0]["pricePerHourCents"] >= first["listings"][-1]["pricePerHourCents"]


def test_facets_count_live_listings_and_are_cached(
    sandbox: SandboxProcess, http: httpx.Client
) -> None:
    facets = ok(http.get("/v1/catalog/facets"))
    models = {m["code"]: m["count"] for m in facets["models"]}
    assert {"RTX_4090", "H100_SXM_80GB", "B200"} <= set(models)
    assert {p["code"] for p in facets["providers"]} == {"vast", "runpod"}
    assert {"US", "DE", "JP"} <= {r["code"] for r in facets["regions"]}
    assert facets["priceRange"]["minCents"] == 32
    assert facets["priceRange"]["maxCents"] > facets["priceRange"]["minCents"]
    # The only 8× b200 in the US goes; the next call inside 30 s still gets the same body.
    b200 = rent(http, familyId="b200", gpuCount=8, region="US")
    assert ok(http.get("/v1/catalog/facets")) == facets
    ok(http.post(f"/v1/rentals/{b200['id']}/stop"))


# --- rentals ---------------------------------------------------------------------------------


def test_preview_quotes_without_touching_the_wallet(
    sandbox: SandboxProcess, http: httpx.Client
) -> None:
    before = ok(http.get("/v1/billing/balance"))
    quote = ok(http.post("/v1/rentals/preview", json={"familyId": "h100-80gb", "gpuCount": 1}))
    assert quote["pricePerHourCents"] == 280
    assert quote["estimatedProvisionSeconds"] == 1  # the test sandbox boots in 0.5-1.5 s
    matched = quote["matchedListing"]
    assert (matched["providerCode"], matched["region"], matched["model"]) == (
        "vast",
        "US-East",
        "H100_SXM_80GB",
    )
    assert is_id(matched["id"], "lst")
    two_in_eu = ok(
        http.post(
            "/v1/rentals/preview", json={"familyId": "rtx-4090", "gpuCount": 2, "region": "eu"}
        )
    )
    assert two_in_eu["matchedListing"]["region"] == "DE-Frankfurt"
    assert two_in_eu["pricePerHourCents"] == 2 * 72
    assert ok(http.get("/v1/billing/balance")) == before
    assert ok(http.get("/v1/rentals"))["rentals"] == []
    error(
        http.post("/v1/rentals/preview", json={"familyId": "rtx-4090", "gpuCount": 5}),
        400,
        "invalid_count",
    )


def test_create_answers_the_documented_subset_and_reserves_an_hour(
    sandbox: SandboxProcess,
) -> None:
    account = sandbox.create_account(balance_cents=10_000)
    with sandbox.client(account.sid) as http:
        body = {**RTX_4090, "templateId": "pytorch", "region": "US", "name": "alice/exp-42"}
        created = ok(http.post("/v1/rentals", json=body))
        balance = ok(http.get("/v1/billing/balance"))
        full = ok(http.get(f"/v1/rentals/{created['id']}"))
    assert set(created) == CREATE_KEYS
    assert is_id(created["id"], "rent")
    assert (created["status"], created["host"], created["port"]) == ("provisioning", None, None)
    assert created["pricePerHourCents"] == 65 and ISO_UTC.match(created["startedAt"])
    assert (balance["availableCents"], balance["reservedCents"], balance["totalCents"]) == (
        10_000 - 65,
        65,
        10_000,
    )
    assert set(full) == RENTAL_KEYS
    assert full["name"] == "alice/exp-42"
    assert (full["familyId"], full["gpuCount"], full["region"], full["provider"]) == (
        "rtx-4090",
        1,
        "US-East",
        "vast",
    )
    assert (full["stoppedAt"], full["error"], full["totalChargedCents"]) == (None, None, 0)


def test_a_rental_runs_then_stops_for_good(sandbox: SandboxProcess) -> None:
    account = sandbox.create_account(balance_cents=10_000)
    with sandbox.client(account.sid) as http:
        created = rent(http)
        running = wait_for_status(http, created["id"], {"running"})
        assert running["host"] == "127.0.0.1" and running["port"] not in (None, 22)
        stop = ok(http.post(f"/v1/rentals/{created['id']}/stop"))
        assert set(stop) == {"id", "status", "finalChargedCents", "refundedCents"}
        assert (stop["id"], stop["status"]) == (created["id"], "stopping")
        after = ok(http.get(f"/v1/rentals/{created['id']}"))
        assert after["status"] in ("stopping", "stopped") and ISO_UTC.match(after["stoppedAt"])
        # Released at once: nothing reserved any more.
        assert ok(http.get("/v1/billing/balance"))["reservedCents"] == 0
        again = error(http.post(f"/v1/rentals/{created['id']}/stop"), 409, "already_stopped")
        assert again["details"]["status"] in ("stopping", "stopped")
        stopped = wait_for_status(http, created["id"], {"stopped"}, timeout=5)
        assert stopped["stoppedAt"] == after["stoppedAt"]
        error(http.post(f"/v1/rentals/{created['id']}/stop"), 409, "already_stopped")


def test_stopping_a_failed_rental_is_409(sandbox: SandboxProcess) -> None:
    account = sandbox.create_account(balance_cents=10_000)
    with sandbox.client(account.sid) as http:
        created = rent(http)
        failed = sandbox.fail_rental(
            created["id"], "provider: host vast-us-east-007 did not boot (ECC)"
        )
        assert failed["status"] == "failed" and failed["error"].endswith("(ECC)")
        assert ok(http.get(f"/v1/rentals/{created['id']}"))["error"] == failed["error"]
        error(http.post(f"/v1/rentals/{created['id']}/stop"), 409, "already_stopped")
    assert sandbox.ledger(account.account_id)["availableCents"] == 10_000


def test_meter_reports_dollars_while_running(sandbox: SandboxProcess) -> None:
    account = sandbox.create_account(balance_cents=100_000)
    with sandbox.client(account.sid) as http:
        created = rent(http, familyId="h100-80gb")
        provisioning = ok(http.get(f"/v1/rentals/{created['id']}/meter"))
        assert (provisioning["secondsBilled"], provisioning["currentChargeCents"]) == (0, 0)
        assert provisioning["lastHeartbeatAt"] is None
        wait_for_status(http, created["id"], {"running"})
        time_left = 20.0
        while time_left > 0:  # until a second has been billed
            meter = http.get(f"/v1/rentals/{created['id']}/meter")
            if ok(meter)["secondsBilled"] >= 1:
                break
            time_left -= 0.5
            time.sleep(0.5)
        ok(http.post(f"/v1/rentals/{created['id']}/stop"))
    data = json.loads(meter.text, parse_float=str)  # the float exactly as sent
    assert data["ratePerHour"] == "2.8" and data["rentalId"] == created["id"]
    seconds, charge = data["secondsBilled"], data["currentChargeCents"]
    assert charge == (2 * 280 * seconds + 3600) // 7200  # secondsBilled/3600 × 2.80 × 100, half up
    assert ISO_UTC.match(data["lastHeartbeatAt"])


def test_list_filters_by_status_newest_first(sandbox: SandboxProcess) -> None:
    account = sandbox.create_account(balance_cents=10_000)
    other = sandbox.create_account(balance_cents=10_000)
    with sandbox.client(account.sid) as http, sandbox.client(other.sid) as stranger:
        first, second = rent(http, name="first"), rent(http, name="second")
        listed = ok(http.get("/v1/rentals"))
        assert [r["id"] for r in listed["rentals"]] == [second["id"], first["id"]]
        assert listed["nextCursor"] is None
        assert all(set(r) == LIST_KEYS for r in listed["rentals"])
        ok(http.post(f"/v1/rentals/{first['id']}/stop"))
        stopping = ok(http.get("/v1/rentals", params={"status": "stopping"}))["rentals"]
        assert [r["id"] for r in stopping] == [first["id"]]
        provisioning = ok(http.get("/v1/rentals", params={"status": "provisioning"}))["rentals"]
        assert [r["id"] for r in provisioning] == [second["id"]]
        error(http.get("/v1/rentals", params={"status": "paused"}), 400, "validation_failed")
        # Someone else's rental does not exist for you.
        assert ok(stranger.get("/v1/rentals")) == {"rentals": [], "nextCursor": None}
        for response in (
            stranger.get(f"/v1/rentals/{second['id']}"),
            stranger.post(f"/v1/rentals/{second['id']}/stop"),
            stranger.get(f"/v1/rentals/{second['id']}/meter"),
            http.get("/v1/rentals/rent_01H00000000000000000000000"),
        ):
            error(response, 404, "rental_not_found")
        ok(http.post(f"/v1/rentals/{second['id']}/stop"))


def test_130_rentals_page_newest_first(sandbox: SandboxProcess) -> None:
    account = sandbox.create_account(balance_cents=10_000)
    made = sandbox.create_rentals(account.account_id, 130, name_prefix="old")
    assert len(made) == 130
    with sandbox.client(account.sid) as http:
        live = rent(http, name="newest")
        seen: list[str] = []
        pages = []
        cursor = None
        while True:
            params: dict[str, Any] = {} if cursor is None else {"cursor": cursor}
            page = ok(http.get("/v1/rentals", params=params))
            pages.append(len(page["rentals"]))
            seen += [r["id"] for r in page["rentals"]]
            cursor = page["nextCursor"]
            if cursor is None:
                break
        assert pages == [50, 50, 31]  # pageSize defaults to 50
        assert seen == [live["id"], *reversed(made)]
        big = ok(http.get("/v1/rentals", params={"pageSize": 200}))
        assert len(big["rentals"]) == 131 and big["nextCursor"] is None
        stopped = ok(http.get("/v1/rentals", params={"status": "stopped", "pageSize": 100}))
        assert len(stopped["rentals"]) == 100 and stopped["nextCursor"] is not None
        error(http.get("/v1/rentals", params={"pageSize": 201}), 400, "validation_failed")
        error(http.get("/v1/rentals", params={"pageSize": 0}), 400, "validation_failed")
        error(http.get("/v1/rentals", params={"cursor": "garbage"}), 400, "validation_failed")
        ok(http.post(f"/v1/rentals/{live['id']}/stop"))


def test_a_repeated_create_makes_a_second_rental(sandbox: SandboxProcess) -> None:
    """No idempotency key on the vendor's API: the same request twice is two rentals, and an
    Idempotency-Key header changes nothing."""
    account = sandbox.create_account(balance_cents=10_000)
    body = {**RTX_4090, "name": "exp-1"}
    headers = {"Idempotency-Key": "k-1"}
    with sandbox.client(account.sid) as http:
        first = ok(http.post("/v1/rentals", json=body, headers=headers))
        second = ok(http.post("/v1/rentals", json=body, headers=headers))
        assert first["id"] != second["id"]
        assert len(ok(http.get("/v1/rentals"))["rentals"]) == 2
        assert ok(http.get("/v1/billing/balance"))["reservedCents"] == 130
        for rental in (first, second):
            ok(http.post(f"/v1/rentals/{rental['id']}/stop"))


# --- SSH keys --------------------------------------------------------------------------------


def test_ssh_keys_are_listed_newest_first_without_their_text(
    sandbox: SandboxProcess, tmp_path: Any
) -> None:
    from gpuoutlet_jupyter.sandbox.testing import make_keypair

    one, two = make_keypair(tmp_path / "a"), make_keypair(tmp_path / "b")
    account = sandbox.create_account(authorized_keys=one.public_key)
    with sandbox.client(account.sid) as http:
        added = ok(
            http.post("/v1/ssh-keys", json={"name": "macbook-2026", "publicKey": two.public_key})
        )
        assert set(added) == {"id", "name", "fingerprint", "algorithm", "createdAt"}
        assert is_id(added["id"], "key") and added["algorithm"] == "ssh-ed25519"
        keys = ok(http.get("/v1/ssh-keys"))["keys"]
        assert [k["name"] for k in keys] == ["macbook-2026", "key-1"]
        assert all(set(k) == set(added) for k in keys)
        assert two.public_key.split()[1] not in json.dumps(keys)
        assert ok(http.delete(f"/v1/ssh-keys/{keys[1]['id']}")) == {"ok": True}
        assert [k["id"] for k in ok(http.get("/v1/ssh-keys"))["keys"]] == [added["id"]]
        error(http.delete(f"/v1/ssh-keys/{keys[1]['id']}"), 404, "key_not_found")
    stranger = sandbox.create_account()
    with sandbox.client(stranger.sid) as http:
        error(http.delete(f"/v1/ssh-keys/{added['id']}"), 404, "key_not_found")


# --- the document and the log ----------------------------------------------------------------


def test_openapi_documents_the_v1_api_and_its_errors(sandbox: SandboxProcess) -> None:
    document = ok(httpx.get(f"{sandbox.url}/openapi.json"))
    paths = document["paths"]
    assert {
        "/v1/auth/request-code",
        "/v1/auth/verify-code",
        "/v1/auth/logout",
        "/v1/auth/me",
        "/v1/rentals/preview",
        "/v1/rentals",
        "/v1/rentals/{rental_id}",
        "/v1/rentals/{rental_id}/stop",
        "/v1/rentals/{rental_id}/meter",
        "/v1/catalog/listings",
        "/v1/catalog/facets",
        "/v1/billing/balance",
        "/v1/billing/ledger",
        "/v1/ssh-keys",
        "/v1/ssh-keys/{key_id}",
    } <= set(paths)
    assert not any(p.startswith("/sandbox") for p in paths)
    create = paths["/v1/rentals"]["post"]
    assert {"200", "400", "401", "403", "429", "500"} <= set(create["responses"])
    assert "Retry-After" in create["responses"]["429"]["headers"]
    assert "X-RateLimit-Remaining" in create["responses"]["200"]["headers"]
    assert "409" in paths["/v1/rentals/{rental_id}/stop"]["post"]["responses"]
    assert "422" not in paths["/v1/rentals/{rental_id}"]["get"]["responses"]
    schemes = document["components"]["securitySchemes"].values()
    assert any(
        s["type"] == "apiKey" and s["in"] == "cookie" and s["name"] == "sid" for s in schemes
    )
    body = document["components"]["schemas"]["CreateRentalRequest"]
    assert body["required"] == ["familyId", "gpuCount"]
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_logs_never_contain_a_sid(sandbox: SandboxProcess) -> None:
    account = sandbox.create_account(balance_cents=10_000)
    with sandbox.client(account.sid) as http:
        ok(http.post(f"/v1/rentals/{rent(http)['id']}/stop"))
        ok(http.get("/v1/rentals"))
    with sandbox.client("not-a-real-sid") as http:
        assert http.get("/v1/billing/balance").status_code == 401
    log = sandbox.log()
    assert "rental" in log
    assert account.sid not in log and sandbox.sid not in log
    assert "not-a-real-sid" not in log
