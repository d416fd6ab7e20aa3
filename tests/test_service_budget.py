"""Issue 14 against the sandbox: the request budget (priorities, the 429 pause), batched polls,
and creates sent exactly once (a lost answer settled by the rental's name, the cap counting it).
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from helpers.counting import ONE_RENTAL, CountingTransport, Sent

from gpuoutlet_jupyter.api import (
    AsyncRentalsClient,
    CreateAmbiguousError,
    CreateNotMadeError,
    RentalRequest,
    RequestsHeldError,
    RetryPolicy,
    SpendingCapError,
    TransportError,
)
from gpuoutlet_jupyter.service import RentalService, RentalView, ServiceOptions
from gpuoutlet_jupyter.service.budget import Priority, RequestBudget
from gpuoutlet_jupyter.service.names import local_user
from gpuoutlet_jupyter.ssh import SSHConfigWriter

OPTIONS = ServiceOptions(
    poll_interval=1.0,
    max_polls=60,
    slow_poll_interval=2.0,
    running_poll_interval=1.0,
    backoff_max=2.0,
    reconcile_interval=0,
    create_search_seconds=3.0,
)
FAST_RETRY = RetryPolicy(attempts=3, backoff_initial=0.01, backoff_max=0.05)


class Env:
    """Services on one account, each with a transport that logs every request it sends."""

    def __init__(self, sandbox: Any, account: Any, keypair: Any, tmp_path: Path) -> None:
        self.sandbox = sandbox
        self.account = account
        self.keypair = keypair
        self.tmp_path = tmp_path
        self.services: list[RentalService] = []

    async def service(
        self, options: ServiceOptions = OPTIONS, *, retry: RetryPolicy = FAST_RETRY
    ) -> tuple[RentalService, CountingTransport]:
        transport = CountingTransport()
        client = AsyncRentalsClient(
            api_url=self.sandbox.url, sid=self.account.sid, retry=retry, transport=transport
        )
        svc = RentalService(
            client,
            state_dir=self.tmp_path / "state",
            ssh=SSHConfigWriter(self.tmp_path / "ssh", identity_file=self.keypair.private_key),
            options=options,
            owns_client=True,
        )
        await svc.start()
        self.services.append(svc)
        return svc, transport

    def account_rentals(self) -> list[dict[str, Any]]:
        """The account's rentals as gpuoutlet lists them (newest first), asked directly."""
        with self.sandbox.client(self.account.sid) as http:
            rentals: list[dict[str, Any]] = http.get("/v1/rentals").json()["rentals"]
            return rentals


@pytest_asyncio.fixture
async def env(sandbox: Any, account: Any, ssh_keypair: Any, tmp_path: Path) -> AsyncIterator[Env]:
    e = Env(sandbox, account, ssh_keypair, tmp_path)
    yield e
    sandbox.set_faults({})
    for svc in e.services:
        for view in svc.rentals():
            if view["status"] in ("provisioning", "running"):
                await svc.stop(view["id"])
        await svc.close()


async def until(check: Callable[[], bool], limit: float = 60.0) -> None:
    """Wait (bounded, not timed) until ``check()``."""
    deadline = time.monotonic() + limit
    while not check():
        assert time.monotonic() < deadline, "the expected state never came"
        await asyncio.sleep(0.02)


def view_of(svc: RentalService, rental_id: str) -> RentalView:
    """The service's view of one tracked rental, as its list shows it now."""
    return next(v for v in svc.rentals() if v["id"] == rental_id)


def kind(sent: Sent) -> str:
    """What a request was, in the words of the budget's priorities."""
    if sent.path == "/v1/rentals" and "status=provisioning" in sent.query:
        return "provisioning"
    if sent.path == "/v1/rentals" and "status=running" in sent.query:
        return "running"
    if sent.path == "/v1/billing/balance":
        return "act"
    return "background"


# -- the budget: a 429 holds every caller, then the most urgent go first ----------------------


@pytest.mark.asyncio
async def test_a_429_with_retry_after_6_pauses_every_caller_for_6_s(env: Env) -> None:
    svc, transport = await env.service()
    upstream = svc.upstream
    env.sandbox.set_faults(rateLimitBurst={"count": 1, "retryAfterSeconds": 6})
    mark = len(transport.sent)
    # The first caller gets the 429 (its client retries it, after the pause, like everyone).
    first = asyncio.create_task(upstream.balance(fresh=True))
    await until(lambda: any(s.status == 429 for s in transport.sent[mark:]))
    limited = next(s for s in transport.sent[mark:] if s.status == 429)
    budget = svc.upstream.budget.to_json()
    assert budget["rateLimitedCount"] == 1 and budget["heldUntil"] is not None
    assert budget["lastPause"]["seconds"] == 6 and budget["lastPause"]["retryAfterGiven"]

    others: list[Awaitable[object]] = [
        upstream.listings(fresh=True),
        upstream.ssh_keys(fresh=True),
        upstream.session(),
        upstream.listed("running", Priority.RUNNING),
        upstream.rentals(Priority.BACKGROUND),
    ]
    await asyncio.gather(first, *others)
    later = [s for s in transport.sent[mark:] if s is not limited]
    assert len(later) == 6, later
    # Nobody was sent before the 6 s were over (they count from the 429's answer, which came
    # after its request left), and nobody waited much longer.
    waited = [s.at - limited.at for s in later]
    assert min(waited) >= 6.0, waited
    assert max(waited) < 6.0 + 15.0, waited  # released after it (generous: a loaded machine)
    assert all(s.status == 200 for s in later)


@pytest.mark.asyncio
async def test_after_a_pause_creates_and_stops_go_first_then_polls_then_the_rest(
    env: Env,
) -> None:
    svc, transport = await env.service()
    upstream = svc.upstream
    env.sandbox.set_faults(rateLimitBurst={"count": 1, "retryAfterSeconds": 2})
    mark = len(transport.sent)
    first = asyncio.create_task(upstream.session())  # background: gets the 429, retried later
    await until(lambda: any(s.status == 429 for s in transport.sent[mark:]))
    queued: list[asyncio.Task[object]] = []
    # Queued least urgent first, so that the order they leave in is the budget's doing.
    for call in (
        lambda: upstream.listings(fresh=False),
        lambda: upstream.listed("running", Priority.RUNNING),
        lambda: upstream.listed("provisioning", Priority.PROVISIONING),
        lambda: upstream.balance(fresh=True),
    ):
        queued.append(asyncio.create_task(call()))
        await asyncio.sleep(0.05)
    await asyncio.gather(first, *queued)
    after = [kind(s) for s in transport.sent[mark:] if s.status != 429]
    assert after == ["act", "provisioning", "running", "background", "background"], after


@pytest.mark.asyncio
async def test_a_viewer_is_refused_at_once_when_the_pause_is_longer_than_it_waits(
    env: Env,
) -> None:
    svc, transport = await env.service(
        ServiceOptions(**{**OPTIONS.__dict__, "viewer_patience": 1.0})
    )
    env.sandbox.set_faults(rateLimitBurst={"count": 1, "retryAfterSeconds": 5})
    with pytest.raises(RequestsHeldError):
        await svc.upstream.listings()  # 429, then its retry would wait 5 s > 1 s
    sent = len(transport.sent)
    started = time.monotonic()
    with pytest.raises(RequestsHeldError) as held:
        await svc.wallet_view()
    assert time.monotonic() - started < 1.0  # refused at once: it would wait longer
    assert len(transport.sent) == sent  # nothing was sent
    assert "429" in str(held.value) and "Try again in" in str(held.value)
    assert 1 <= held.value.retry_after <= 5


# -- batched polls ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_polls_do_not_grow_with_the_number_of_rentals(env: Env) -> None:
    svc, transport = await env.service()
    env.sandbox.set_faults(neverReady=True)
    views = [
        await svc.create(RentalRequest.build(family_id="rtx-4090", name=f"batch-{n}"))
        for n in range(5)
    ]
    ids = {v["id"] for v in views}
    await asyncio.sleep(OPTIONS.poll_interval)
    mark, started = len(transport.sent), time.monotonic()
    await asyncio.sleep(4.0)
    window = transport.sent[mark:]
    elapsed = time.monotonic() - started
    # One `GET /v1/rentals?status=provisioning` a poll interval for the five; no GET by id.
    assert [kind(s) for s in window] == ["provisioning"] * len(window), window
    assert elapsed / OPTIONS.poll_interval - 2 <= len(window) <= elapsed / OPTIONS.poll_interval + 1
    assert all(v["polls"] >= 3 for v in svc.rentals() if v["id"] in ids)

    env.sandbox.set_faults({})  # the pods come up now
    await until(lambda: all(v["status"] == "running" for v in svc.rentals() if v["id"] in ids))
    await asyncio.sleep(OPTIONS.running_poll_interval)
    mark, started = len(transport.sent), time.monotonic()
    await asyncio.sleep(4.0)
    window = transport.sent[mark:]
    elapsed = time.monotonic() - started
    # The five running ones: one `GET /v1/rentals?status=running` a refresh interval.
    assert [kind(s) for s in window] == ["running"] * len(window), window
    assert len(window) <= elapsed / OPTIONS.running_poll_interval + 1
    assert not any(ONE_RENTAL.match(s.path) for s in window)

    # A stop made elsewhere is seen from the same list call.
    victim = views[0]["id"]
    with env.sandbox.client(env.account.sid) as http:
        assert http.post(f"/v1/rentals/{victim}/stop").status_code == 200
    await until(lambda: view_of(svc, victim)["status"] in ("stopping", "stopped"), 10)


# -- creates, exactly once ----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_dropped_create_answer_gives_exactly_one_rental_found_by_its_name(
    env: Env,
) -> None:
    svc, transport = await env.service()
    env.sandbox.set_faults(dropCreateAnswerCount=1)
    view = await svc.create(
        RentalRequest.build(family_id="rtx-4090"), notebook="work/Fine tune.ipynb"
    )
    assert transport.count("POST", re.compile(r"^/v1/rentals$")) == 1  # sent once, never again
    name = view["name"]
    user = re.sub(r"[^A-Za-z0-9._-]+", "-", local_user())
    assert re.fullmatch(rf"{re.escape(user)}/Fine-tune-[a-z2-9]{{4}}", name), name
    assert view["note"] and "was lost" in view["note"] and name in view["note"]
    assert view["createdHere"] is True and view["quote"] is not None
    listed = env.account_rentals()
    assert [r["id"] for r in listed] == [view["id"]]
    assert listed[0]["name"] == name
    assert svc.pending.views() == []
    # It is followed like any other: it comes up and gets its SSH entry.
    await until(lambda: view_of(svc, view["id"])["ssh"] is not None)


@pytest.mark.asyncio
async def test_a_create_that_never_reached_the_api_made_nothing_and_says_so(env: Env) -> None:
    svc, transport = await env.service()
    create = ("POST", "/v1/rentals")

    async def no_connection(request: httpx.Request) -> None:
        raise httpx.ConnectError("connection refused", request=request)

    transport.hooks[create] = no_connection
    with pytest.raises(CreateNotMadeError) as refused:
        await svc.create(RentalRequest.build(family_id="rtx-4090"))
    # Known not sent: nothing to look for, and said at once.
    assert str(refused.value).startswith("Not created, nothing charged: no connection")
    cause = refused.value.__cause__
    assert isinstance(cause, TransportError) and cause.sent is False
    assert transport.count("GET", re.compile(r"^/v1/rentals$")) == 1  # the start's list only
    assert svc.pending.views() == [] and svc.spending().burn_cents_per_hour == 0

    async def broken(request: httpx.Request) -> None:
        # Broken on the way: the client cannot tell whether it arrived, so it looks.
        raise httpx.RemoteProtocolError("Server disconnected", request=request)

    transport.hooks[create] = broken
    with pytest.raises(CreateNotMadeError) as not_made:
        await svc.create(RentalRequest.build(family_id="rtx-4090", name="never-made"))
    assert str(not_made.value).startswith("Not created, nothing charged")
    assert "never-made" in str(not_made.value)
    assert env.account_rentals() == []
    assert svc.pending.views() == [] and svc.spending().burn_cents_per_hour == 0
    assert transport.count("POST", re.compile(r"^/v1/rentals$")) == 0  # none ever left


@pytest.mark.asyncio
async def test_a_pending_create_counts_against_the_cap_and_the_same_request_waits_for_it(
    env: Env,
) -> None:
    # rtx-4090 is 65¢/h: the cap holds one, not two.
    svc, transport = await env.service(
        ServiceOptions(**{**OPTIONS.__dict__, "max_hourly_spend_cents": 100})
    )
    env.sandbox.set_faults(dropCreateAnswerCount=1)
    searching = asyncio.Event()
    found = asyncio.Event()

    async def slow_search(request: httpx.Request) -> None:
        if "status=" not in request.url.query.decode():
            searching.set()
            await found.wait()

    transport.hooks[("GET", "/v1/rentals")] = slow_search
    asked = RentalRequest.build(family_id="rtx-4090")
    first = asyncio.create_task(svc.create(asked))
    await asyncio.wait_for(searching.wait(), 30)
    (pending,) = svc.pending.views()
    assert pending["state"] == "looking" and pending["pricePerHourCents"] == 65
    assert "counts against the spending cap" in pending["message"]
    assert svc.spending().burn_cents_per_hour == 65

    # Another create is refused by the cap: the first may exist, and may be costing money.
    with pytest.raises(SpendingCapError):
        await svc.create(RentalRequest.build(family_id="rtx-4090", name="second"))
    # The same request again (a second %gpu_rent, a second click) waits for the first.
    again = asyncio.create_task(svc.create(asked))
    await asyncio.sleep(0.5)
    assert not again.done()
    found.set()
    made, also = await asyncio.gather(first, again)
    assert made["id"] == also["id"]
    assert also["note"] and "already under way" in also["note"]
    assert [r["id"] for r in env.account_rentals()] == [made["id"]]
    assert transport.count("POST", re.compile(r"^/v1/rentals$")) == 1
    assert svc.pending.views() == [] and svc.spending().burn_cents_per_hour == 65


@pytest.mark.asyncio
async def test_several_rentals_matching_a_lost_create_are_all_shown_and_the_user_keeps_one(
    env: Env,
) -> None:
    svc, transport = await env.service()
    twin: dict[str, str] = {}

    async def twin_from_elsewhere(request: httpx.Request) -> None:
        # Another tool on the account rents the same name just then (the dashboard, a script).
        with env.sandbox.client(env.account.sid) as http:
            body = {"familyId": "rtx-4090", "gpuCount": 1, "name": "alice/exp-42"}
            twin["id"] = (await asyncio.to_thread(http.post, "/v1/rentals", json=body)).json()["id"]
        del transport.hooks[("POST", "/v1/rentals")]
        await asyncio.to_thread(env.sandbox.set_faults, dropCreateAnswerCount=1)  # ours is lost

    transport.hooks[("POST", "/v1/rentals")] = twin_from_elsewhere
    with pytest.raises(CreateAmbiguousError) as ambiguous:
        await svc.create(RentalRequest.build(family_id="rtx-4090", name="alice/exp-42"))
    candidates = ambiguous.value.candidates
    assert len(candidates) == 2 and twin["id"] in candidates
    assert "%gpu_creates keep" in str(ambiguous.value)
    # Both are watched (each may cost money) and shown, with the question.
    assert {v["id"] for v in svc.rentals()} == set(candidates)
    (pending,) = svc.pending.views()
    assert pending["state"] == "ambiguous" and sorted(pending["candidates"]) == sorted(candidates)

    keep = next(c for c in candidates if c != twin["id"])
    settled = await svc.settle_create(pending["id"], [keep])
    assert [v["id"] for v in settled["kept"]] == [keep]
    assert [s["id"] for s in settled["stopped"]] == [twin["id"]]
    assert svc.pending.views() == []
    statuses = {r["id"]: r["status"] for r in env.account_rentals()}
    assert statuses[twin["id"]] in ("stopping", "stopped") and statuses[keep] != "stopped"


@pytest.mark.asyncio
async def test_a_burst_of_creates_leaves_room_for_the_polls() -> None:
    # Creates may fill half a window themselves: the 11th of 20 a minute waits, a poll does not.
    budget = RequestBudget(20, 600)
    for _ in range(10):
        await asyncio.wait_for(budget.acquire(Priority.ACT), 1)
    eleventh = asyncio.create_task(budget.acquire(Priority.ACT))
    await asyncio.sleep(0.1)
    assert not eleventh.done()
    await asyncio.wait_for(budget.acquire(Priority.PROVISIONING), 10)
    await asyncio.wait_for(budget.acquire(Priority.STOP), 1)  # a stop always finds room
    assert not eleventh.done() and budget.to_json()["waiting"] == 1
    eleventh.cancel()


@pytest.mark.slow
@pytest.mark.asyncio
async def test_when_the_website_spent_most_of_the_minute_ours_waits_for_gpuoutlets_window(
    env: Env,
) -> None:
    svc, transport = await env.service()
    # The dashboard, on the same session, spends all but 5 of gpuoutlet's 100 for this minute.
    with env.sandbox.client(env.account.sid) as http:
        while int(http.get("/v1/auth/me").headers["X-RateLimit-Remaining"]) > 5:
            pass
    mark = len(transport.sent)
    for _ in range(8):
        await svc.upstream.listed("running", Priority.RUNNING)
    sent = transport.sent[mark:]
    # No 429: the last few of the minute were spread out, then it waited for the next window.
    assert [s.status for s in sent] == [200] * 8
    gaps = [b.at - a.at for a, b in itertools.pairwise(sent)]
    assert max(gaps) > 5.0, gaps
    budget = svc.upstream.budget.to_json()
    assert budget["rateLimitedCount"] == 0 and budget["apiLimit"] == 100


@pytest.mark.asyncio
async def test_while_the_budget_is_tight_a_viewer_gets_the_last_balance_and_it_is_refreshed(
    env: Env,
) -> None:
    # A budget of 6 a minute: past half the background share, the account's reads are held.
    svc, _ = await env.service(ServiceOptions(**{**OPTIONS.__dict__, "balance_ttl": 0.1}))
    first = await svc.balance()
    env.sandbox.deposit(env.account.account_id, 5_00)
    svc.upstream.budget.per_minute = 6  # tight from now on: past half its background share
    await asyncio.sleep(0.2)  # past its TTL
    started = time.monotonic()
    stale = await svc.balance()
    assert time.monotonic() - started < 1.0  # answered at once, not after its turn
    assert stale.available_cents == first.available_cents
    # The refresh waits its turn behind it, and then is what viewers get.
    await until(lambda: svc.upstream._balance.value is not stale, 60)
    assert (await svc.balance()).available_cents == first.available_cents + 5_00
