"""The rentals API client against the sandbox over real HTTP: every method, every error, retries."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from gpuoutlet_jupyter.api import (
    APITimeoutError,
    AsyncRentalsClient,
    AuthenticationError,
    BadRequestError,
    EndpointUnavailableError,
    InsufficientBalanceError,
    MalformedResponseError,
    NoCapacityError,
    NotFoundError,
    ProvisioningFailedError,
    ProvisioningTimeoutError,
    RateLimitedError,
    RentalRequest,
    RentalsClient,
    RequestValidationError,
    RetryPolicy,
    ServerError,
    Settings,
    TransportError,
)

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
def account(sandbox: Any) -> Any:
    """A fresh account with $100 on the shared sandbox."""
    return sandbox.create_account(balance_cents=10_000)


@pytest.fixture
def client(sandbox: Any, account: Any) -> Iterator[RentalsClient]:
    with RentalsClient(api_url=sandbox.url, sid=account.sid, retry=FAST) as c:
        yield c


@pytest.fixture(autouse=True)
def _no_faults_left(sandbox: Any) -> Iterator[None]:
    yield
    sandbox.set_faults({})


def test_create_get_list_stop(client: RentalsClient, sandbox: Any, account: Any) -> None:
    before = client.wallet()
    rental = client.create(family_id="rtx-4090", gpu_count=1, name="alice/exp-42")
    assert rental.id.startswith("rent_")
    assert rental.status == "provisioning"
    assert rental.host is None and rental.port is None
    assert rental.price_per_hour_cents == 65
    assert rental.name == "alice/exp-42"

    assert client.get(rental.id).id == rental.id
    assert rental.id in [r.id for r in client.list()]
    after = client.wallet()
    assert after.available_cents == before.available_cents - 65
    assert after.reserved_cents == before.reserved_cents + 65

    stopped = client.stop(rental.id)
    assert stopped.status in ("stopping", "stopped")
    ledger = sandbox.ledger(account.account_id)
    assert ledger["availableCents"] + ledger["reservedCents"] + ledger["spentCents"] == 10_000


def test_create_takes_a_request_object(client: RentalsClient) -> None:
    request = RentalRequest.build(family_id="rtx-4090", gpu_count=2, region="EU")
    rental = client.create(request)
    assert rental.gpu_count == 2
    assert rental.price_per_hour_cents >= 2 * 65
    client.stop(rental.id)


def test_families_and_wallet(client: RentalsClient) -> None:
    families = {f.id: f for f in client.families()}
    assert families["rtx-4090"].price_per_hour_cents == 65
    assert families["h100-80gb"].price_per_hour_cents == 280
    assert all(f.regions for f in families.values())
    wallet = client.wallet()
    assert wallet.available_cents == 10_000
    assert wallet.currency == "USD"


def test_wait_until_ready_reaches_running(client: RentalsClient, sandbox: Any) -> None:
    rental = client.create(family_id="rtx-4090")
    seen: list[str] = []
    ready = client.wait_until_ready(
        rental.id, interval=0.1, max_polls=300, on_update=lambda r: seen.append(r.status)
    )
    assert ready.status == "running"
    assert ready.host == "127.0.0.1"
    assert isinstance(ready.port, int)
    assert seen[-1] == "running"
    client.stop(rental.id)


def test_wait_until_ready_raises_the_servers_error_on_failure(
    client: RentalsClient, sandbox: Any
) -> None:
    rental = client.create(family_id="rtx-4090")
    sandbox.fail_rental(rental.id, "provider: host gpu-fi-07 did not boot (ECC error)")
    with pytest.raises(ProvisioningFailedError) as info:
        client.wait_until_ready(rental.id, interval=0.05, max_polls=20)
    assert "ECC error" in str(info.value)
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
    assert info.value.rental.id == rental.id
    assert info.value.polls == 3
    assert sleeps.calls == [2.0, 2.0]  # the seed's 2 s between polls, none after the last
    assert "still exists and may be billed" in str(info.value)
    assert client.get(rental.id).status == "provisioning"
    client.stop(rental.id)


def test_stopped_while_waiting_is_reported(client: RentalsClient) -> None:
    rental = client.create(family_id="rtx-4090")
    client.stop(rental.id)
    with pytest.raises(ProvisioningFailedError, match="before it became ready"):
        client.wait_until_ready(rental.id, interval=0.01, max_polls=5)


# Errors, each with the message a user sees.


def test_wrong_sid_is_an_authentication_error_without_the_sid(sandbox: Any) -> None:
    wrong = "not-a-real-session-0123456789abcdef"
    with RentalsClient(api_url=sandbox.url, sid=wrong, retry=FAST) as c:
        with pytest.raises(AuthenticationError) as info:
            c.wallet()
    assert info.value.status_code == 401
    assert "GPUOUTLET_SID" in str(info.value)
    assert wrong not in str(info.value)


def test_insufficient_balance_carries_both_amounts(sandbox: Any) -> None:
    poor = sandbox.create_account(balance_cents=10)
    with RentalsClient(api_url=sandbox.url, sid=poor.sid, retry=FAST) as c:
        with pytest.raises(InsufficientBalanceError) as info:
            c.create(family_id="rtx-4090")
        assert c.list() == []
    err = info.value
    assert (err.required_cents, err.available_cents) == (65, 10)
    assert "$0.65" in str(err) and "$0.10" in str(err)
    assert "Top up" in str(err)
    assert sandbox.ledger(poor.account_id)["availableCents"] == 10


def test_unknown_rental_is_not_found(client: RentalsClient) -> None:
    with pytest.raises(NotFoundError) as info:
        client.get("rent_00000000000000000000000000")
    assert not isinstance(info.value, EndpointUnavailableError)
    assert "list your rentals" in str(info.value)


def test_bad_rental_id_is_refused_before_any_request(client: RentalsClient) -> None:
    with pytest.raises(RequestValidationError, match="not a rental id"):
        client.get("../wallet")


def test_invalid_request_never_reaches_the_api(client: RentalsClient, sandbox: Any) -> None:
    with pytest.raises(RequestValidationError, match="gpuCount"):
        client.create(family_id="rtx-4090", gpu_count=3)
    assert client.list() == []


def test_unknown_family_is_the_servers_bad_request(client: RentalsClient) -> None:
    with pytest.raises(BadRequestError) as info:
        client.create(family_id="no-such-gpu")
    assert info.value.status_code == 400
    assert "rtx-4090" in str(info.value)  # the sandbox names the families it knows
    assert "Nothing was charged" in str(info.value)


def test_no_capacity(client: RentalsClient) -> None:
    families = client.families()
    everywhere = {region for f in families for region in f.regions}
    family = next(f for f in families if everywhere - set(f.regions))
    region = sorted(everywhere - set(family.regions))[0]
    with pytest.raises(NoCapacityError) as info:
        client.create(family_id=family.id, region=region)
    assert info.value.status_code == 409
    assert "another region" in str(info.value)
    assert client.wallet().reserved_cents == 0


# Retries.


def test_gets_retry_5xx_with_backoff(client: RentalsClient, sandbox: Any) -> None:
    sleeps = Sleeps()
    client._sleep = sleeps
    sandbox.set_faults({"errorBurst": {"status": 503, "count": 2}})
    assert client.wallet().available_cents == 10_000
    assert len(sleeps.calls) == 2
    assert all(0 < s <= FAST.backoff_max for s in sleeps.calls)


def test_gets_give_up_after_the_policys_attempts(client: RentalsClient, sandbox: Any) -> None:
    client._sleep = Sleeps()
    sandbox.set_faults({"errorBurst": {"status": 502, "count": 10}})
    with pytest.raises(ServerError) as info:
        client.families()
    assert info.value.status_code == 502
    assert "Try again in a minute" in str(info.value)


def test_429_honours_retry_after(client: RentalsClient, sandbox: Any) -> None:
    sleeps = Sleeps()
    client._sleep = sleeps
    sandbox.set_faults({"rateLimitBurst": {"count": 2, "retryAfterSeconds": 3}})
    client.list()
    assert sleeps.calls == [3.0, 3.0]


def test_429_that_persists_is_raised_with_retry_after(client: RentalsClient, sandbox: Any) -> None:
    client._sleep = Sleeps()
    sandbox.set_faults({"rateLimitBurst": {"count": 10, "retryAfterSeconds": 1}})
    with pytest.raises(RateLimitedError) as info:
        client.wallet()
    assert info.value.retry_after == 1.0
    assert "retry after 1 s" in str(info.value)


def test_malformed_get_is_retried(client: RentalsClient, sandbox: Any) -> None:
    client._sleep = Sleeps()
    sandbox.set_faults({"malformedCount": 1})
    assert client.wallet().available_cents == 10_000


def test_malformed_create_is_retried_with_the_same_key(client: RentalsClient, sandbox: Any) -> None:
    client._sleep = Sleeps()
    sandbox.set_faults({"malformedCount": 1})
    rental = client.create(family_id="rtx-4090")
    assert [r.id for r in client.list()] == [rental.id]
    assert client.wallet().reserved_cents == 65
    client.stop(rental.id)


def test_create_after_a_timeout_reuses_its_key(sandbox: Any, account: Any) -> None:
    settings = Settings(api_url=sandbox.url, timeout_seconds=0.5).with_sid(account.sid)
    sandbox.set_faults({"slowResponseSeconds": 1.5, "slowCount": 1})
    with RentalsClient(settings, retry=FAST, sleep=Sleeps()) as c:
        rental = c.create(family_id="rtx-4090")
        assert [r.id for r in c.list()] == [rental.id]
        assert c.wallet().reserved_cents == 65
        c.stop(rental.id)


def test_same_idempotency_key_gives_one_rental(client: RentalsClient) -> None:
    first = client.create(family_id="rtx-4090", idempotency_key="key-1")
    again = client.create(family_id="rtx-4090", idempotency_key="key-1")
    assert first.id == again.id
    assert len(client.list()) == 1
    client.stop(first.id)


def test_unreachable_server_names_the_url(sandbox: Any, account: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    sleeps = Sleeps()
    with RentalsClient(api_url=url, sid=account.sid, retry=FAST, sleep=sleeps) as c:
        with pytest.raises(TransportError) as info:
            c.wallet()
    assert url in str(info.value)
    assert "GPUOUTLET_API_URL" in str(info.value)
    assert len(sleeps.calls) == FAST.attempts - 1


# Servers that are not the sandbox: a vendor without the assumed endpoints, a connection that
# breaks after the request was sent.


@contextmanager
def http_server(handler: Callable[[BaseHTTPRequestHandler], None]) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            handler(self)

        def do_POST(self) -> None:
            handler(self)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


SEED_RENTAL = {
    "id": "rent_01HSEED",
    "status": "provisioning",
    "host": None,
    "port": None,
    "pricePerHourCents": 65,
    "startedAt": "2026-06-07T08:14:22Z",
}


def _reply(h: BaseHTTPRequestHandler, status: int, body: Any) -> None:
    data = json.dumps(body).encode() if not isinstance(body, bytes) else body
    h.send_response(status)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    h.wfile.write(data)


def test_assumed_endpoints_missing_is_feature_off() -> None:
    def seed_only(h: BaseHTTPRequestHandler) -> None:
        if h.path == "/v1/rentals/rent_01HSEED" and h.command == "GET":
            _reply(h, 200, SEED_RENTAL)
        else:
            _reply(h, 404, b"<html>Not Found</html>")

    with http_server(seed_only) as url, RentalsClient(api_url=url, sid="s", retry=FAST) as c:
        assert c.get("rent_01HSEED").price_per_hour_cents == 65
        for call in (c.list, c.families, c.wallet):
            with pytest.raises(EndpointUnavailableError, match="feature is unavailable"):
                call()
        with pytest.raises(EndpointUnavailableError):
            c.stop("rent_01HSEED")


def test_reset_after_sending_retries_create_with_the_same_key() -> None:
    keys: list[str | None] = []

    def flaky(h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length", "0"))
        h.rfile.read(length)
        keys.append(h.headers.get("Idempotency-Key"))
        if len(keys) == 1:
            # The request arrived; the answer never does: the ambiguous case.
            h.connection.shutdown(socket.SHUT_RDWR)
            h.close_connection = True
            return
        _reply(h, 200, SEED_RENTAL)

    with http_server(flaky) as url:
        with RentalsClient(api_url=url, sid="s", retry=FAST, sleep=Sleeps()) as c:
            rental = c.create(family_id="rtx-4090")
    assert rental.id == "rent_01HSEED"
    assert len(keys) == 2
    assert keys[0] is not None and keys[0] == keys[1]


def test_a_response_with_a_hostile_port_type_is_malformed() -> None:
    def hostile(h: BaseHTTPRequestHandler) -> None:
        _reply(h, 200, {**SEED_RENTAL, "port": "22\nProxyCommand x"})

    with http_server(hostile) as url:
        with RentalsClient(api_url=url, sid="s", retry=FAST, sleep=Sleeps()) as c:
            with pytest.raises(MalformedResponseError, match="port"):
                c.get("rent_01HSEED")


def test_a_slow_server_is_a_timeout() -> None:
    release = threading.Event()

    def stuck(h: BaseHTTPRequestHandler) -> None:
        release.wait(5)

    settings = Settings(api_url="http://127.0.0.1:1", timeout_seconds=0.2).with_sid("s")
    with http_server(stuck) as url:
        try:
            with RentalsClient(settings, api_url=url, retry=FAST, sleep=Sleeps()) as c:
                with pytest.raises(APITimeoutError, match="did not answer in time"):
                    c.wallet()
        finally:
            release.set()


def test_the_sid_is_in_no_error_or_log(
    sandbox: Any, account: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sandbox.set_faults({"errorBurst": {"status": 500, "count": 10}})
    with RentalsClient(api_url=sandbox.url, sid=account.sid, retry=FAST, sleep=Sleeps()) as c:
        with pytest.raises(ServerError) as info:
            c.wallet()
    assert account.sid not in str(info.value)
    assert account.sid not in repr(info.value.details)
    assert account.sid not in caplog.text


# The async client shares the logic; prove its own I/O paths.


@pytest.mark.asyncio
async def test_async_client_full_cycle(sandbox: Any, account: Any) -> None:
    async with AsyncRentalsClient(api_url=sandbox.url, sid=account.sid, retry=FAST) as c:
        assert (await c.wallet()).available_cents == 10_000
        assert any(f.id == "rtx-4090" for f in await c.families())
        rental = await c.create(family_id="rtx-4090", name="async")
        assert (await c.get(rental.id)).name == "async"
        assert [r.id for r in await c.list()] == [rental.id]
        ready = await c.wait_until_ready(rental.id, interval=0.1, max_polls=300)
        assert ready.is_ready
        assert (await c.stop(rental.id)).status in ("stopping", "stopped")


@pytest.mark.asyncio
async def test_async_client_retries_and_raises(sandbox: Any, account: Any) -> None:
    sleeps = Sleeps()
    async with AsyncRentalsClient(
        api_url=sandbox.url, sid=account.sid, retry=FAST, sleep=sleeps.asleep
    ) as c:
        sandbox.set_faults({"rateLimitBurst": {"count": 1, "retryAfterSeconds": 2}})
        await c.wallet()
        assert sleeps.calls == [2.0]
    poor = sandbox.create_account(balance_cents=100)
    async with AsyncRentalsClient(api_url=sandbox.url, sid=poor.sid, retry=FAST) as c:
        with pytest.raises(InsufficientBalanceError) as info:
            await c.create(family_id="h100-80gb", gpu_count=1)
    assert (info.value.required_cents, info.value.available_cents) == (280, 100)
