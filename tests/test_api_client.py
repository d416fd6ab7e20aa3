"""The rentals API client against the sandbox (which follows the vendor sheet), over real HTTP:
every endpoint, every documented refusal as the API makes it, paging, retries, sign-in."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.vendor import vendor_examples

from gpuoutlet_jupyter.api import (
    AlreadyStoppedError,
    APITimeoutError,
    AsyncRentalsClient,
    CodeInvalidError,
    CodeRequestRateLimitedError,
    DuplicateKeyError,
    InsufficientBalanceError,
    InvalidCountError,
    MalformedResponseError,
    ModelUnavailableError,
    PermissionDeniedError,
    ProvisioningFailedError,
    ProvisioningTimeoutError,
    RateLimitedError,
    Rental,
    RentalNotFoundError,
    RentalRequest,
    RentalsClient,
    RequestValidationError,
    RetryPolicy,
    ServerError,
    Settings,
    TransportError,
    UnauthorizedError,
    ValidationFailedError,
    contract,
)
from gpuoutlet_jupyter.sandbox.testing import make_keypair

FAST = RetryPolicy(attempts=4, backoff_initial=0.01, backoff_max=0.05)


class Sleeps:
    """Records the waits a client asks for instead of sleeping, so retry timing is observable."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)

    async def asleep(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def client(sandbox: Any, account: Any) -> Iterator[RentalsClient]:
    with RentalsClient(api_url=sandbox.url, sid=account.sid, retry=FAST) as c:
        yield c


@pytest.fixture(autouse=True)
def _no_faults_left(sandbox: Any) -> Iterator[None]:
    yield
    sandbox.set_faults({})


def test_create_get_list_stop(client: RentalsClient, sandbox: Any, account: Any) -> None:
    before = client.balance()
    request = RentalRequest.build(family_id="rtx-4090", name="alice/exp-42", template_id="pytorch")
    quote = client.preview(request)
    created = client.create(request)
    assert created.id.startswith("rent_") and created.status == "provisioning"
    assert created.host is None and created.port is None
    assert created.price_per_hour_cents == quote.price_per_hour_cents

    rental = client.get(created.id)
    # The full rental: every documented field.
    assert (rental.family_id, rental.gpu_count, rental.name) == ("rtx-4090", 1, "alice/exp-42")
    assert rental.region and rental.provider and rental.total_charged_cents == 0
    assert created.id in [r.id for r in client.list()]
    assert [r.id for r in client.list(status="provisioning")] == [created.id]
    assert client.list(status="running") == []
    after = client.balance()
    hour = created.price_per_hour_cents
    assert after.available_cents == before.available_cents - hour
    assert after.reserved_cents == before.reserved_cents + hour

    stopped = client.stop(created.id)
    assert (stopped.id, stopped.status) == (created.id, "stopping")
    assert (stopped.final_charged_cents, stopped.refunded_cents) == (0, 0)
    # A second stop is the API's 409 already_stopped: callers take it as done.
    with pytest.raises(AlreadyStoppedError):
        client.stop(created.id)
    ledger = sandbox.ledger(account.account_id)
    assert ledger["availableCents"] + ledger["reservedCents"] + ledger["spentCents"] == 10_000


def test_every_reply_has_the_shape_of_the_sheets_example(
    client: RentalsClient, sandbox: Any
) -> None:
    examples = vendor_examples()
    request = RentalRequest.build(family_id="rtx-4090")
    created = client.create(request)
    replies = {
        "rental_preview": client.preview(request),
        "rental_create": created,
        "billing_balance": client.balance(),
        "catalog_facets": client.facets(),
        "auth_me": client.me(),
    }
    for name, reply in replies.items():
        assert set(examples[name]["response"]) <= set(reply.to_json()), name
    ready = client.wait_until_ready(created.id, interval=0.1, max_polls=300)
    meter = client.meter(created.id)
    assert meter.rental_id == created.id
    # The meter's dollars, converted exactly, are the rental's locked rate.
    assert meter.rate_per_hour_cents == ready.price_per_hour_cents
    client.stop(created.id)


def test_families_come_from_the_listings(client: RentalsClient) -> None:
    listings = client.listings()
    assert len({x.family for x in listings}) >= 3
    assert all(x.price_per_hour_cents > 0 and x.gpu_count in (1, 2, 4, 8) for x in listings)
    # Cheapest first, over every page.
    prices = [x.price_per_hour_cents for x in listings]
    assert prices == sorted(prices)
    h100 = client.listings(model="H100_SXM_80GB")
    assert h100 and {x.family for x in h100} == {"h100-80gb"}


def test_a_list_of_130_rentals_is_followed_page_by_page(
    client: RentalsClient, sandbox: Any, account: Any
) -> None:
    made = sandbox.create_rentals(account.account_id, 130, status="stopped")
    listed = client.list()
    assert [r.id for r in listed] == list(reversed(made))  # newest first, every one
    assert all(r.status == "stopped" for r in listed)
    page = client.list_page(page_size=50)
    assert len(page.rentals) == 50 and page.next_cursor


def test_wait_until_ready_reaches_running(client: RentalsClient) -> None:
    rental = client.create(family_id="rtx-4090")
    seen: list[str] = []
    ready = client.wait_until_ready(
        rental.id, interval=0.1, max_polls=300, on_update=lambda r: seen.append(r.status)
    )
    assert ready.status == "running" and ready.host == "127.0.0.1"
    assert isinstance(ready.port, int) and ready.port != 22
    assert seen[-1] == "running"
    client.stop(rental.id)


def test_wait_until_ready_raises_the_providers_error_on_failure(
    client: RentalsClient, sandbox: Any
) -> None:
    rental = client.create(family_id="rtx-4090")
    sandbox.fail_rental(rental.id, "provider: host gpu-fi-07 did not boot (ECC error)")
    with pytest.raises(ProvisioningFailedError) as info:
        client.wait_until_ready(rental.id, interval=0.05, max_polls=20)
    assert "ECC error" in str(info.value) and "refunds" in str(info.value)
    assert info.value.rental.status == "failed"


def test_wait_until_ready_out_of_polls_keeps_the_rental(
    client: RentalsClient, sandbox: Any
) -> None:
    sandbox.set_faults({"neverReady": True})
    rental = client.create(family_id="rtx-4090")
    sleeps = Sleeps()
    client._sleep = sleeps
    with pytest.raises(ProvisioningTimeoutError) as info:
        client.wait_until_ready(rental.id, interval=2.0, max_polls=3)
    assert info.value.rental.id == rental.id and info.value.polls == 3
    assert sleeps.calls == [2.0, 2.0]  # the documented 2 s between polls, none after the last
    assert "still exists" in str(info.value)
    assert client.get(rental.id).status == "provisioning"
    client.stop(rental.id)


# The API's refusals, as it makes them, in the user's words.


def test_an_expired_session_says_how_to_sign_in_again(sandbox: Any, account: Any) -> None:
    sid = sandbox.new_session(account.account_id)
    with RentalsClient(api_url=sandbox.url, sid=sid, retry=FAST) as c:
        assert c.me().user.id == account.account_id
        sandbox.expire_session(sid)
        with pytest.raises(UnauthorizedError) as info:
            c.balance()
    assert info.value.status_code == 401 and info.value.api_message == "Not signed in"
    assert "expired" in str(info.value) and "GPUOUTLET_SID" in str(info.value)
    assert sid not in str(info.value)


def test_a_short_wallet_is_403_with_both_amounts(sandbox: Any) -> None:
    poor = sandbox.create_account(balance_cents=10)
    with RentalsClient(api_url=sandbox.url, sid=poor.sid, retry=FAST) as c:
        quote = c.preview(family_id="rtx-4090")
        with pytest.raises(InsufficientBalanceError) as info:
            c.create(family_id="rtx-4090")
        assert c.list() == []
    err = info.value
    assert isinstance(err, PermissionDeniedError) and err.status_code == 403
    assert (err.needed_cents, err.available_cents) == (quote.price_per_hour_cents, 10)
    assert "$0.10" in str(err) and "Top up" in str(err)
    assert "sign in" not in str(err).lower()
    assert sandbox.ledger(poor.account_id)["availableCents"] == 10


def test_unknown_rental_is_not_found(client: RentalsClient) -> None:
    with pytest.raises(RentalNotFoundError) as info:
        client.get("rent_00000000000000000000000000")
    assert "rent_00000000000000000000000000" in str(info.value)
    assert "%gpu_rentals" in str(info.value)


def test_bad_rental_id_is_refused_before_any_request(client: RentalsClient) -> None:
    with pytest.raises(RequestValidationError, match="not a rental id"):
        client.get("../billing/balance")


def test_invalid_request_never_reaches_the_api(client: RentalsClient) -> None:
    with pytest.raises(RequestValidationError, match="gpuCount"):
        client.create(family_id="rtx-4090", gpu_count=3)
    assert client.list() == []


def test_the_apis_own_refusals(client: RentalsClient, sandbox: Any) -> None:
    # Past our own checks (a raw body), the API answers with its codes.
    with pytest.raises(InvalidCountError, match="1, 2, 4 or 8"):
        client._call(contract.CREATE, body={"familyId": "rtx-4090", "gpuCount": 3})
    with pytest.raises(ValidationFailedError) as info:
        client.create(family_id="no-such-gpu")
    assert info.value.fields and info.value.fields[0][0] == "familyId"
    assert "Nothing was charged" in str(info.value)


def test_no_capacity_is_model_unavailable(client: RentalsClient) -> None:
    listings = client.listings(gpuCount=8)
    family = listings[0].family
    with pytest.raises(ModelUnavailableError) as info:
        client.create(family_id=family, gpu_count=8, region="AQ")  # Antarctica: no listing
    assert info.value.status_code == 400
    assert "another region" in str(info.value)
    assert client.balance().reserved_cents == 0


def test_ssh_keys_list_add_and_duplicate(client: RentalsClient, tmp_path: Path) -> None:
    pair = make_keypair(tmp_path)
    key = client.add_ssh_key("laptop", pair.public_key)
    assert key.fingerprint.startswith("SHA256:") and key.algorithm == "ssh-ed25519"
    assert key.fingerprint in [k.fingerprint for k in client.ssh_keys()]
    with pytest.raises(DuplicateKeyError):
        client.add_ssh_key("again", pair.public_key)


def test_sign_in_takes_the_sid_from_set_cookie(
    sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    email = "signin-client@example.com"
    sandbox.create_account(balance_cents=0, email=email)
    with RentalsClient(Settings(api_url=sandbox.url), retry=FAST) as c:
        assert c.request_code(email).ok
        with pytest.raises(CodeRequestRateLimitedError) as limited:
            c.request_code(email)
        assert 0 < limited.value.retry_after <= 30
        with pytest.raises(CodeInvalidError):
            c.verify_code(email, "000000" if sandbox.sign_in_code(email) != "000000" else "111111")
        signed = c.verify_code(email, sandbox.sign_in_code(email))
    sid = signed.sid.get_secret_value()
    assert signed.session.user.email == email and len(sid) >= 32
    assert sid not in repr(signed) and sid not in caplog.text
    with RentalsClient(api_url=sandbox.url, sid=sid, retry=FAST) as c:
        assert c.me().user.email == email
        assert c.logout().ok
        with pytest.raises(UnauthorizedError):
            c.me()


# Retries: what may be repeated is, never a create.


def test_gets_retry_5xx_with_backoff(client: RentalsClient, sandbox: Any) -> None:
    sleeps = Sleeps()
    client._sleep = sleeps
    sandbox.set_faults({"errorBurst": {"status": 503, "count": 2}})
    assert client.balance().available_cents == 10_000
    assert len(sleeps.calls) == 2
    assert all(0 < s <= FAST.backoff_max for s in sleeps.calls)


def test_gets_give_up_after_the_policys_attempts(client: RentalsClient, sandbox: Any) -> None:
    client._sleep = Sleeps()
    sandbox.set_faults({"errorBurst": {"status": 502, "count": 10}})
    with pytest.raises(ServerError) as info:
        client.facets()
    assert info.value.status_code == 502
    assert "Try again in a minute" in str(info.value)


def test_429_honours_a_short_retry_after(client: RentalsClient, sandbox: Any) -> None:
    sleeps = Sleeps()
    client._sleep = sleeps
    sandbox.set_faults({"rateLimitBurst": {"count": 2, "retryAfterSeconds": 3}})
    client.list()
    assert sleeps.calls == [3.0, 3.0]


def test_429_that_persists_is_raised_with_retry_after(client: RentalsClient, sandbox: Any) -> None:
    client._sleep = Sleeps()
    sandbox.set_faults({"rateLimitBurst": {"count": 10, "retryAfterSeconds": 1}})
    with pytest.raises(RateLimitedError) as info:
        client.balance()
    assert info.value.retry_after == 1.0
    assert "retry in 1 s" in str(info.value)


def test_malformed_get_is_retried(client: RentalsClient, sandbox: Any) -> None:
    client._sleep = Sleeps()
    sandbox.set_faults({"malformedCount": 1})
    assert client.balance().available_cents == 10_000


def test_a_create_with_a_garbled_answer_is_not_sent_again(
    client: RentalsClient, sandbox: Any
) -> None:
    client._sleep = Sleeps()
    sandbox.set_faults({"malformedCount": 1})
    with pytest.raises(MalformedResponseError):
        client.create(family_id="rtx-4090")
    # Sent once: the API made one rental (its answer was garbled), never a second.
    (made,) = client.list()
    client.stop(made.id)


def test_a_create_whose_answer_is_dropped_is_not_sent_again(
    client: RentalsClient, sandbox: Any
) -> None:
    sandbox.set_faults({"dropCreateAnswerCount": 1})
    with pytest.raises(TransportError):
        client.create(family_id="rtx-4090")
    (made,) = client.list()
    assert made.status == "provisioning"
    client.stop(made.id)


def test_a_slow_create_is_a_timeout_not_a_second_rental(sandbox: Any, account: Any) -> None:
    settings = Settings(api_url=sandbox.url, timeout_seconds=0.5).with_sid(account.sid)
    sandbox.set_faults({"slowResponseSeconds": 1.5, "slowCount": 1})
    with RentalsClient(settings, retry=FAST, sleep=Sleeps()) as c:
        with pytest.raises(APITimeoutError):
            c.create(family_id="rtx-4090")
        sandbox.set_faults({})
        listed = c.list()
        assert len(listed) <= 1  # one at most: whether the slow create committed is the API's
        for rental in listed:
            c.stop(rental.id)


def test_the_sid_is_in_no_error_or_log(
    sandbox: Any, account: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sandbox.set_faults({"errorBurst": {"status": 500, "count": 10}})
    with RentalsClient(api_url=sandbox.url, sid=account.sid, retry=FAST, sleep=Sleeps()) as c:
        with pytest.raises(ServerError) as info:
            c.balance()
    assert account.sid not in str(info.value)
    assert account.sid not in json.dumps(info.value.details)
    assert account.sid not in caplog.text


# The async client shares the logic; prove its own I/O paths.


@pytest.mark.asyncio
async def test_async_client_full_cycle(sandbox: Any, account: Any) -> None:
    async with AsyncRentalsClient(api_url=sandbox.url, sid=account.sid, retry=FAST) as c:
        assert (await c.balance()).available_cents == 10_000
        assert any(x.family == "rtx-4090" for x in await c.listings())
        request = RentalRequest.build(family_id="rtx-4090", name="async")
        assert (await c.preview(request)).estimated_provision_seconds > 0
        created = await c.create(request)
        rental: Rental = await c.get(created.id)
        assert rental.name == "async"
        assert [r.id for r in await c.list()] == [created.id]
        ready = await c.wait_until_ready(created.id, interval=0.1, max_polls=300)
        assert ready.is_ready
        assert (await c.stop(created.id)).status == "stopping"


@pytest.mark.asyncio
async def test_async_client_retries_and_raises(sandbox: Any, account: Any) -> None:
    sleeps = Sleeps()
    async with AsyncRentalsClient(
        api_url=sandbox.url, sid=account.sid, retry=FAST, sleep=sleeps.asleep
    ) as c:
        sandbox.set_faults({"rateLimitBurst": {"count": 1, "retryAfterSeconds": 2}})
        await c.balance()
        assert sleeps.calls == [2.0]
    poor = sandbox.create_account(balance_cents=100)
    async with AsyncRentalsClient(api_url=sandbox.url, sid=poor.sid, retry=FAST) as c:
        with pytest.raises(InsufficientBalanceError) as info:
            await c.create(family_id="h100-80gb", gpu_count=1)
    assert info.value.available_cents == 100 and (info.value.needed_cents or 0) > 100
