"""The sandbox's /v1 API over real HTTP: every endpoint's happy path and response shapes."""

from __future__ import annotations

import re
from typing import Any

import httpx

from gpuoutlet_jupyter.sandbox.testing import SandboxProcess, wait_for_status

RENTAL_ID = re.compile(r"rent_[0-9A-HJKMNP-TV-Z]{26}\Z")
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\Z")
RENTAL_KEYS = {
    "id",
    "status",
    "host",
    "port",
    "pricePerHourCents",
    "startedAt",
    "error",
    "familyId",
    "gpuCount",
    "templateId",
    "region",
    "name",
    "autoStopAfterHours",
    "stoppedAt",
}


def create(http: httpx.Client, **body: Any) -> httpx.Response:
    return http.post("/v1/rentals", json={"familyId": "rtx-4090", "gpuCount": 1, **body})


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def test_families_list_a_realistic_catalogue(sandbox: SandboxProcess) -> None:
    with sandbox.client() as http:
        families = {f["id"]: f for f in ok(http.get("/v1/families"))["families"]}
    assert families["rtx-4090"]["pricePerHourCents"] == 65
    assert families["h100-80gb"]["pricePerHourCents"] == 280
    assert {"a100-80gb", "l40s", "rtx-3090", "a6000"} <= set(families)
    for family in families.values():
        assert set(family) == {
            "id",
            "displayName",
            "gpuMemoryGb",
            "pricePerHourCents",
            "regions",
            "available",
        }
        assert family["available"] is True
        assert family["regions"] == sorted(family["regions"])
        assert all(re.fullmatch(r"[A-Z]{2}", code) for code in family["regions"])
    assert {"US", "DE", "FI", "JP"} <= set(families["rtx-4090"]["regions"])
    assert families["rtx-4090"]["gpuMemoryGb"] == 24


def test_wallet(sandbox: SandboxProcess) -> None:
    account = sandbox.create_account(balance_cents=1234)
    with sandbox.client(account.sid) as http:
        assert ok(http.get("/v1/wallet")) == {
            "availableCents": 1234,
            "reservedCents": 0,
            "currency": "USD",
        }


def test_create_reserves_one_hour_and_returns_the_rental(sandbox: SandboxProcess) -> None:
    account = sandbox.create_account(balance_cents=10_000)
    with sandbox.client(account.sid) as http:
        rental = ok(create(http, templateId="pytorch", name="alice/exp-42"))
        wallet = ok(http.get("/v1/wallet"))
    assert set(rental) == RENTAL_KEYS
    assert RENTAL_ID.match(rental["id"])
    assert rental["status"] == "provisioning"
    assert rental["host"] is None and rental["port"] is None
    assert rental["pricePerHourCents"] == 65
    assert ISO_UTC.match(rental["startedAt"])
    assert rental["error"] is None and rental["stoppedAt"] is None
    assert rental["familyId"] == "rtx-4090" and rental["gpuCount"] == 1
    assert rental["templateId"] == "pytorch"
    assert rental["region"] == "FI"  # the cheapest rtx-4090 listing
    assert rental["name"] == "alice/exp-42"
    assert rental["autoStopAfterHours"] is None
    assert wallet == {"availableCents": 10_000 - 65, "reservedCents": 65, "currency": "USD"}
    ledger = sandbox.ledger(account.account_id)
    assert ledger == {
        "depositedCents": 10_000,
        "availableCents": 9_935,
        "reservedCents": 65,
        "spentCents": 0,
    }


def test_defaults_price_per_gpu_and_regions(sandbox: SandboxProcess) -> None:
    account = sandbox.create_account(balance_cents=100_000)
    with sandbox.client(account.sid) as http:
        plain = ok(create(http))
        assert plain["templateId"] == "ubuntu-24-04"
        h100 = ok(create(http, familyId="h100-80gb", gpuCount=2, autoStopAfterHours=1.5))
        assert h100["pricePerHourCents"] == 2 * 280
        assert h100["region"] == "US"
        assert h100["autoStopAfterHours"] == 1.5
        # A broader region picks the cheapest listing inside it; a country pins it.
        assert ok(create(http, region="EU"))["region"] == "FI"
        assert ok(create(http, region="NA"))["region"] == "US"
        de = ok(create(http, region="DE"))
        assert (de["region"], de["pricePerHourCents"]) == ("DE", 74)
        assert ok(create(http, region="APAC"))["region"] == "SG"
        assert ok(create(http, unknownField={"x": 1}))["status"] == "provisioning"
        for rental in ok(http.get("/v1/rentals"))["rentals"]:
            ok(http.post(f"/v1/rentals/{rental['id']}/stop"))


def test_get_list_newest_first_and_other_accounts_see_nothing(sandbox: SandboxProcess) -> None:
    mine = sandbox.create_account(balance_cents=10_000)
    theirs = sandbox.create_account(balance_cents=10_000)
    with sandbox.client(mine.sid) as http, sandbox.client(theirs.sid) as other:
        first = ok(create(http, name="first"))
        second = ok(create(http, name="second"))
        assert ok(http.get(f"/v1/rentals/{first['id']}"))["name"] == "first"
        listed = ok(http.get("/v1/rentals"))["rentals"]
        assert [r["id"] for r in listed] == [second["id"], first["id"]]
        assert all(set(r) == RENTAL_KEYS for r in listed)

        assert ok(other.get("/v1/rentals")) == {"rentals": []}
        for response in (
            other.get(f"/v1/rentals/{first['id']}"),
            other.post(f"/v1/rentals/{first['id']}/stop"),
            http.get("/v1/rentals/rent_00000000000000000000000000"),
        ):
            assert response.status_code == 404
            assert response.json()["error"]["code"] == "not_found"
        assert ok(http.get(f"/v1/rentals/{first['id']}"))["status"] != "stopping"


def test_stop_settles_then_the_worker_finishes_it(sandbox: SandboxProcess) -> None:
    account = sandbox.create_account(balance_cents=10_000)
    with sandbox.client(account.sid) as http:
        rental = ok(create(http))
        stopping = ok(http.post(f"/v1/rentals/{rental['id']}/stop"))
        assert stopping["status"] == "stopping"
        ledger = sandbox.ledger(account.account_id)
        # Seconds into the first hour: a cent or two, the rest of the hour released.
        assert ledger["reservedCents"] == 0
        assert 0 <= ledger["spentCents"] <= 2
        assert ledger["availableCents"] + ledger["spentCents"] == 10_000
        again = ok(http.post(f"/v1/rentals/{rental['id']}/stop"))
        assert again["status"] in ("stopping", "stopped")
        stopped = wait_for_status(http, rental["id"], {"stopped"})
        assert ISO_UTC.match(stopped["stoppedAt"])
        assert stopped["error"] is None
        assert ok(http.post(f"/v1/rentals/{rental['id']}/stop")) == stopped
        assert sandbox.ledger(account.account_id) == ledger


def test_stopping_a_failed_rental_returns_it_unchanged(sandbox: SandboxProcess) -> None:
    account = sandbox.create_account(balance_cents=10_000)
    with sandbox.client(account.sid) as http:
        rental = ok(create(http))
        failed = sandbox.fail_rental(rental["id"], "provider: host gpu-fi-07 did not boot (ECC)")
        assert failed["status"] == "failed"
        assert ok(http.post(f"/v1/rentals/{rental['id']}/stop")) == failed
    assert sandbox.ledger(account.account_id)["availableCents"] == 10_000


def test_402_when_one_hour_is_not_covered_moves_nothing(sandbox: SandboxProcess) -> None:
    account = sandbox.create_account(balance_cents=64)
    with sandbox.client(account.sid) as http:
        response = create(http)
        assert response.status_code == 402
        error = response.json()["error"]
        assert error["code"] == "insufficient_balance"
        assert (error["requiredCents"], error["availableCents"]) == (65, 64)
        assert "65" in error["message"] and "Deposit" in error["message"]
        assert ok(http.get("/v1/rentals")) == {"rentals": []}
    assert sandbox.ledger(account.account_id)["availableCents"] == 64
    sandbox.deposit(account.account_id, 1)
    with sandbox.client(account.sid) as http:
        ok(create(http))
    assert sandbox.ledger(account.account_id)["availableCents"] == 0


def test_409_when_no_listing_has_the_gpus_moves_nothing(sandbox: SandboxProcess) -> None:
    account = sandbox.create_account(balance_cents=100_000)
    with sandbox.client(account.sid) as http:
        first = ok(create(http, region="JP", gpuCount=8))  # JP holds exactly 8 rtx-4090s
        before = sandbox.ledger(account.account_id)
        response = create(http, region="JP", gpuCount=8)
        assert response.status_code == 409
        error = response.json()["error"]
        assert error["code"] == "no_capacity"
        assert "JP" in error["message"]
        assert sandbox.ledger(account.account_id) == before
        # Capacity comes back once the first rental has stopped.
        ok(http.post(f"/v1/rentals/{first['id']}/stop"))
        wait_for_status(http, first["id"], {"stopped"})
        second = ok(create(http, region="JP", gpuCount=8))
        ok(http.post(f"/v1/rentals/{second['id']}/stop"))


def test_openapi_documents_the_v1_api_and_its_errors(sandbox: SandboxProcess) -> None:
    document = ok(httpx.get(f"{sandbox.url}/openapi.json"))
    paths = document["paths"]
    assert set(paths) == {
        "/v1/families",
        "/v1/wallet",
        "/v1/rentals",
        "/v1/rentals/{rental_id}",
        "/v1/rentals/{rental_id}/stop",
    }
    create_op = paths["/v1/rentals"]["post"]
    assert {"200", "400", "401", "402", "409", "413", "422", "429", "5XX"} <= set(
        create_op["responses"]
    )
    assert "Retry-After" in create_op["responses"]["429"]["headers"]
    assert "404" in paths["/v1/rentals/{rental_id}"]["get"]["responses"]
    assert "422" not in paths["/v1/rentals/{rental_id}"]["get"]["responses"]
    schemes = document["components"]["securitySchemes"]
    assert any(
        s == {"type": "apiKey", "in": "cookie", "name": "sid", **_desc(s)} for s in schemes.values()
    )
    body = document["components"]["schemas"]["CreateRentalRequest"]
    assert body["required"] == ["familyId", "gpuCount"]
    assert "HTTPValidationError" not in document["components"]["schemas"]


def _desc(scheme: dict[str, Any]) -> dict[str, Any]:
    return {"description": scheme["description"]} if "description" in scheme else {}


def test_logs_never_contain_a_sid(sandbox: SandboxProcess) -> None:
    account = sandbox.create_account(balance_cents=10_000)
    with sandbox.client(account.sid) as http:
        ok(create(http))
        ok(http.get("/v1/rentals"))
    with sandbox.client("not-a-real-sid") as http:
        assert http.get("/v1/wallet").status_code == 401
    log = sandbox.log()
    assert "rental" in log
    assert account.sid not in log
    assert sandbox.sid not in log
    assert "not-a-real-sid" not in log
