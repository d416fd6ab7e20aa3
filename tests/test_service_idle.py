"""Idle auto-stop in RentalService: the rule, the setting, and whole runs against the sandbox.

The kernels' activity comes from a stand-in here (the Jupyter server's kernel manager is the
real source; tests/test_server_idle.py runs real remote kernels). Idle times are fractions of
a minute and the sandbox's clock runs 60× fast, so a run takes seconds; nothing is timed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
import pytest_asyncio

from gpuoutlet_jupyter.api import (
    AsyncRentalsClient,
    RentalNotActiveError,
    RentalRequest,
    RequestValidationError,
    RetryPolicy,
)
from gpuoutlet_jupyter.rest.layer import parse_create
from gpuoutlet_jupyter.sandbox.testing import SandboxProcess
from gpuoutlet_jupyter.service import RentalRecord, RentalService, ServiceOptions
from gpuoutlet_jupyter.service.hooks import StopRequest
from gpuoutlet_jupyter.service.idle import (
    MAX_IDLE_MINUTES,
    KernelActivity,
    decide,
    parse_idle_minutes,
)

FAST_RETRY = RetryPolicy(attempts=3, backoff_initial=0.01, backoff_max=0.05)
#: 2.4 s idle, of which the last 1.2 s warned.
IDLE = 0.04
WARN = 0.02
#: No kernels, nothing ever ran.
NOT = KernelActivity()


# --- the rule ---------------------------------------------------------------------------


def test_not_idle_long_enough_no_warning() -> None:
    d = decide(minutes=10, warn_minutes=2, last_active=0, warned_at=None, activity=NOT, now=479)
    assert (d.warning, d.stop_now, d.stop_at, d.warned_at) == (False, False, 600, None)


def test_warning_starts_warn_minutes_before_the_stop() -> None:
    d = decide(minutes=10, warn_minutes=2, last_active=0, warned_at=None, activity=NOT, now=480)
    assert (d.warning, d.stop_now, d.stop_at, d.warned_at) == (True, False, 600, 480)
    d = decide(minutes=10, warn_minutes=2, last_active=0, warned_at=480, activity=NOT, now=600)
    assert (d.warning, d.stop_now) == (True, True)


def test_a_busy_kernel_is_activity_now() -> None:
    busy = KernelActivity(kernels=1, busy=1, last_activity=5)
    d = decide(minutes=10, warn_minutes=2, last_active=0, warned_at=500, activity=busy, now=10_000)
    assert (d.warning, d.stop_now, d.last_active, d.warned_at) == (False, False, 10_000, None)


def test_kernel_activity_moves_the_deadline_and_withdraws_the_warning() -> None:
    ran = KernelActivity(kernels=2, busy=0, last_activity=550)
    d = decide(minutes=10, warn_minutes=2, last_active=0, warned_at=500, activity=ran, now=560)
    assert (d.warning, d.stop_now, d.last_active, d.stop_at) == (False, False, 550, 1150)
    # Activity older than what is known never moves the timer back.
    old = KernelActivity(kernels=1, busy=0, last_activity=10)
    d = decide(minutes=10, warn_minutes=2, last_active=550, warned_at=None, activity=old, now=560)
    assert d.last_active == 550


def test_an_overdue_rental_is_warned_for_the_full_warning_time_first() -> None:
    """After a server restart, say: the idle time is long over, yet the warning comes first."""
    d = decide(minutes=10, warn_minutes=2, last_active=0, warned_at=None, activity=NOT, now=5000)
    assert (d.warning, d.stop_now, d.stop_at) == (True, False, 5120)
    d = decide(minutes=10, warn_minutes=2, last_active=0, warned_at=5000, activity=NOT, now=5120)
    assert d.stop_now


def test_the_warning_is_never_longer_than_the_idle_time() -> None:
    d = decide(minutes=1, warn_minutes=5, last_active=0, warned_at=None, activity=NOT, now=0)
    assert (d.warning, d.stop_at) == (True, 60)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), (0, 0.0), (5, 5.0), (0.25, 0.25), ("30", 30.0), (MAX_IDLE_MINUTES, 10080.0)],
)
def test_idle_minutes_accepted(value: Any, expected: float | None) -> None:
    assert parse_idle_minutes(value) == expected


@pytest.mark.parametrize(
    "value", [-1, "soon", math.nan, math.inf, True, [5], {"m": 5}, MAX_IDLE_MINUTES + 1]
)
def test_idle_minutes_refused_with_the_field_named(value: Any) -> None:
    with pytest.raises(RequestValidationError) as caught:
        parse_idle_minutes(value)
    ((field, problem),) = caught.value.problems
    assert field == "idleStopMinutes"
    assert "minutes" in problem


def test_create_body_split_and_every_problem_reported_at_once() -> None:
    body = {"familyId": "rtx-4090", "gpuCount": 1, "idleStopMinutes": 30, "notebook": "a.ipynb"}
    create = parse_create(body)
    assert create.request.family_id == "rtx-4090" and create.idle_stop_minutes == 30
    assert create.notebook == "a.ipynb"
    assert "idleStopMinutes" in body  # the caller's body is left as it was
    assert parse_create({"familyId": "rtx-4090", "gpuCount": 1}).idle_stop_minutes is None
    assert "idleStopMinutes" not in create.request.to_wire()
    assert "notebook" not in create.request.to_wire()
    with pytest.raises(RequestValidationError) as caught:
        parse_create({"familyId": "rtx-4090", "gpuCount": 3, "idleStopMinutes": -2, "notebook": 7})
    problems = sorted(field for field, _ in caught.value.problems)
    assert problems == ["gpuCount", "idleStopMinutes", "notebook"]


# --- against the sandbox ----------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox(fast_sandbox: SandboxProcess) -> SandboxProcess:
    return fast_sandbox


@dataclass
class FakeKernels:
    """The kernels on each rental, as a Jupyter server's kernel manager would report them."""

    busy: int = 0
    kernels: int = 0
    last_activity: float | None = None
    asked: int = 0

    def __call__(self, rental_ids: Collection[str]) -> dict[str, KernelActivity]:
        self.asked += 1
        return {
            rid: KernelActivity(self.kernels, self.busy, self.last_activity) for rid in rental_ids
        }


class Services:
    """Services on one fresh sandbox account, closed at the end of the test."""

    def __init__(self, sandbox: Any, account: Any, tmp_path: Path) -> None:
        self.sandbox = sandbox
        self.account = account
        self.state_dir = tmp_path / "state"
        self.made: list[RentalService] = []

    async def start(
        self,
        activity: FakeKernels | None,
        *,
        default: float = 0.0,
        check: float = 0.05,
    ) -> RentalService:
        # A session of its own per server (as two sign-ins): the vendor allows 100 requests a
        # minute per session, and these pollers are fast for the test's sake.
        sid = self.sandbox.new_session(self.account.account_id)
        client = AsyncRentalsClient(api_url=self.sandbox.url, sid=sid, retry=FAST_RETRY)
        svc = RentalService(
            client,
            state_dir=self.state_dir,
            options=ServiceOptions(
                poll_interval=0.2,
                running_poll_interval=1.0,
                reconcile_interval=0,
                idle_stop_minutes=default,
                idle_warning_minutes=WARN,
                idle_check_interval=check,
            ),
            activity=activity,
            owns_client=True,
        )
        await svc.start()
        self.made.append(svc)
        return svc

    def upstream(self) -> list[dict[str, Any]]:
        with self.sandbox.client(self.account.sid) as http:
            return cast("list[dict[str, Any]]", http.get("/v1/rentals").json()["rentals"])


@pytest_asyncio.fixture
async def services(sandbox: Any, account: Any, tmp_path: Path) -> AsyncIterator[Services]:
    made = Services(sandbox, account, tmp_path)
    yield made
    for svc in made.made:
        await svc.close(warn_running=False)


def request() -> RentalRequest:
    return RentalRequest.build(family_id="rtx-4090", gpu_count=1, name="idle-test")


async def history(
    svc: RentalService, rental_id: str, done: Callable[[dict[str, Any]], bool], timeout: float = 30
) -> list[dict[str, Any]]:
    """Every announced state of a rental until `done` (bounded: an assertion, not a timing)."""
    seen = [await svc.rental(rental_id)]
    deadline = time.monotonic() + timeout
    while not done(seen[-1]):
        assert time.monotonic() < deadline, f"not done within {timeout} s: {seen[-1]}"
        seen.append(await svc.wait_for_change(rental_id, seen[-1]["version"], 1.0))
    return seen


def warned(view: dict[str, Any]) -> bool:
    return bool(view["idleStop"] and view["idleStop"]["warning"])


def running(view: dict[str, Any]) -> bool:
    return bool(view["status"] == "running")


def final(view: dict[str, Any]) -> bool:
    return bool(view["status"] in ("stopped", "failed"))


@pytest.mark.asyncio
async def test_an_idle_rental_is_warned_then_stopped(services: Services) -> None:
    svc = await services.start(FakeKernels())
    reasons: list[str] = []

    async def before_stop(record: RentalRecord, stop: StopRequest) -> None:
        reasons.append(stop.reason)

    svc.hooks.before_stop.append(before_stop)
    created = await svc.create(request(), idle_stop_minutes=IDLE)
    assert created["idleStop"]["minutes"] == IDLE
    assert created["idleStop"]["stopAt"] is None  # the timer starts once it runs
    seen = await history(svc, created["id"], final)
    assert reasons == ["idle"]  # what runs before the stop knows nobody asked for it

    first_running = next(i for i, v in enumerate(seen) if running(v))
    first_warning = next(i for i, v in enumerate(seen) if warned(v))
    first_stopping = next(i for i, v in enumerate(seen) if v["status"] in ("stopping", "stopped"))
    assert first_running < first_warning < first_stopping, [
        (v["status"], v["idleStop"]) for v in seen
    ]
    idle = seen[first_running]["idleStop"]
    assert idle["warning"] is False and idle["lastActiveAt"] and idle["stopAt"]
    assert 0 < idle["secondsLeft"] <= IDLE * 60
    warning = seen[first_warning]["idleStop"]
    assert warning["secondsLeft"] <= WARN * 60 and warning["warnMinutes"] == WARN
    assert "Idle: it will be stopped at" in seen[first_warning]["phase"]
    assert f"%gpu_keep {created['id']}" in seen[first_warning]["phase"]
    stopped = seen[-1]
    assert stopped["status"] == "stopped" and stopped["stopReason"] == "idle"
    assert "idle auto-stop" in stopped["phase"]
    assert stopped["idleStop"]["stopAt"] is None and stopped["idleStop"]["warning"] is False
    assert [r["status"] for r in services.upstream() if r["id"] == created["id"]] == ["stopped"]


@pytest.mark.asyncio
async def test_a_busy_kernel_keeps_it_running_and_the_stop_follows_once_it_is_done(
    services: Services,
) -> None:
    kernels = FakeKernels(kernels=1, busy=1)
    svc = await services.start(kernels)
    created = await svc.create(request(), idle_stop_minutes=IDLE)
    seen = await history(svc, created["id"], running)
    # Three idle times with a kernel mid-execution: many looks, no warning, no stop.
    asked = kernels.asked
    await asyncio.sleep(3 * IDLE * 60)
    assert kernels.asked > asked + 10
    view = await svc.rental(created["id"])
    assert view["status"] == "running" and view["stopReason"] is None
    assert view["idleStop"]["warning"] is False
    assert view["idleStop"]["busyKernels"] == 1 and view["idleStop"]["kernels"] == 1
    assert view["idleStop"]["secondsLeft"] > WARN * 60

    kernels.busy = 0  # the cell finished
    seen = await history(svc, created["id"], final)
    assert any(warned(v) for v in seen)
    assert seen[-1]["stopReason"] == "idle"


@pytest.mark.asyncio
async def test_keep_it_restarts_the_timer_and_can_turn_it_off(services: Services) -> None:
    svc = await services.start(FakeKernels())
    created = await svc.create(request(), idle_stop_minutes=IDLE)
    seen = await history(svc, created["id"], warned)
    before = seen[-1]["idleStop"]
    kept = await svc.keep(created["id"])
    after = kept["idleStop"]
    assert kept["status"] == "running" and after["warning"] is False
    assert after["stopAt"] > before["stopAt"] and after["lastActiveAt"] > before["lastActiveAt"]
    assert after["secondsLeft"] > WARN * 60
    assert kept["version"] > seen[-1]["version"]

    # Warned again later, and this time told to stop idling: no idle stop any more.
    await history(svc, created["id"], warned)
    off = await svc.keep(created["id"], idle_stop_minutes=0)
    assert off["idleStop"] is None
    await asyncio.sleep(3 * IDLE * 60)
    assert (await svc.rental(created["id"]))["status"] == "running"

    stopped = await svc.stop(created["id"])
    await history(svc, created["id"], final)
    assert stopped["stopReason"] is None
    with pytest.raises(RentalNotActiveError, match="nothing more"):
        await svc.keep(created["id"])


@pytest.mark.asyncio
async def test_kernel_activity_moves_the_deadline(services: Services) -> None:
    kernels = FakeKernels(kernels=1)
    svc = await services.start(kernels)
    created = await svc.create(request(), idle_stop_minutes=IDLE)
    first = (await history(svc, created["id"], running))[-1]["idleStop"]
    kernels.last_activity = time.time() + 0.5  # a cell ran just now
    moved = await history(svc, created["id"], lambda v: v["idleStop"]["stopAt"] > first["stopAt"])
    assert moved[-1]["idleStop"]["lastActiveAt"] > first["lastActiveAt"]
    assert moved[-1]["status"] == "running"


@pytest.mark.asyncio
async def test_without_kernels_to_judge_by_no_idle_stop_is_accepted(services: Services) -> None:
    """The magics' in-process host runs no kernels: it refuses an idle stop before any create."""
    svc = await services.start(None)
    with pytest.raises(RequestValidationError) as caught:
        await svc.create(request(), idle_stop_minutes=5)
    ((field, problem),) = caught.value.problems
    assert field == "idleStopMinutes" and "Jupyter server" in problem and "--auto-stop" in problem
    assert services.upstream() == []
    plain = await svc.create(request())
    off = await svc.create(request(), idle_stop_minutes=0)
    assert plain["idleStop"] is None and off["idleStop"] is None
    with pytest.raises(RequestValidationError):
        await svc.keep(plain["id"], idle_stop_minutes=5)
    assert (await svc.keep(plain["id"]))["idleStop"] is None


@pytest.mark.asyncio
async def test_the_server_default_applies_to_rentals_made_here_only(services: Services) -> None:
    svc = await services.start(FakeKernels(), default=30)
    mine = await svc.create(request())
    assert mine["idleStop"]["minutes"] == 30
    # A rental made elsewhere (another machine may use it) is never idle-stopped unasked.
    with services.sandbox.client(services.account.sid) as http:
        elsewhere = http.post("/v1/rentals", json={"familyId": "rtx-4090", "gpuCount": 1}).json()
    await svc.reconcile()
    adopted = await svc.rental(elsewhere["id"])
    assert adopted["createdHere"] is False and adopted["idleStop"] is None
    # ...unless asked to.
    asked = await svc.keep(elsewhere["id"], idle_stop_minutes=45)
    assert asked["idleStop"]["minutes"] == 45


@pytest.mark.asyncio
async def test_a_restarted_service_warns_before_it_stops_an_overdue_rental(
    services: Services,
) -> None:
    first = await services.start(FakeKernels(), check=3600)  # never looks
    created = await first.create(request(), idle_stop_minutes=IDLE)
    await history(first, created["id"], running)
    await first.close(warn_running=False)
    services.made.remove(first)
    await asyncio.sleep(IDLE * 60 + 0.5)  # idle for longer than its idle time while down

    second = await services.start(FakeKernels())
    resumed = await second.rental(created["id"])
    assert resumed["idleStop"]["minutes"] == IDLE and resumed["status"] == "running"
    seen = await history(second, created["id"], final)
    assert any(warned(v) and v["status"] == "running" for v in seen)
    assert seen[-1]["stopReason"] == "idle"


@pytest.mark.asyncio
async def test_a_failed_idle_stop_is_shown_and_retried(services: Services) -> None:
    svc = await services.start(FakeKernels())
    created = await svc.create(request(), idle_stop_minutes=IDLE)
    await history(svc, created["id"], warned)
    # The API fails for a while (the client's own retries included): the stop is tried again.
    services.sandbox.set_faults({"errorBurst": {"status": 503, "count": 12}})
    try:
        seen = await history(svc, created["id"], final)
    finally:
        services.sandbox.set_faults({})
    errors = [v["upstreamError"] or "" for v in seen]
    assert any("idle auto-stop could not stop it" in e for e in errors), errors
    assert seen[-1]["stopReason"] == "idle" and seen[-1]["upstreamError"] is None


@pytest.mark.asyncio
async def test_the_shutdown_warning_says_idle_stop_pauses_with_the_server(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    svc = await services.start(FakeKernels())
    idle = await svc.create(request(), idle_stop_minutes=30)
    plain = await svc.create(request())
    caplog.set_level(logging.WARNING, logger="gpuoutlet_jupyter")
    await svc.close(warn_running=True)
    services.made.remove(svc)
    (warning,) = [r.getMessage() for r in caplog.records if "shutting down" in r.getMessage()]
    assert f"The idle auto-stop of {idle['id']} does not run while Jupyter is down." in warning
    assert plain["id"] in warning and f"of {plain['id']}" not in warning


# --- two servers on one state dir: who decides an idle stop, and settings that stay -------


def decided_here(view: dict[str, Any]) -> bool:
    return bool(view["idleStop"]["decidedHere"])


@pytest.mark.asyncio
async def test_a_second_server_never_stops_a_rental_busy_in_the_first(services: Services) -> None:
    a_kernels = FakeKernels(kernels=1, busy=1)
    a = await services.start(a_kernels)
    created = await a.create(request(), idle_stop_minutes=IDLE)
    await history(a, created["id"], running)
    # Server B starts with the same home: it sees the rental and its idle stop, not its kernel.
    b = await services.start(FakeKernels())
    await asyncio.sleep(3 * IDLE * 60)  # three idle times with the kernel busy in A
    for svc in (a, b):
        view = await svc.rental(created["id"])
        assert view["status"] == "running" and view["stopReason"] is None, view
    assert [r["status"] for r in services.upstream()] == ["running"]
    seen = await b.rental(created["id"])
    assert seen["idleStop"]["minutes"] == IDLE and not decided_here(seen)
    assert "decided by another Jupyter server" in seen["phase"]
    assert decided_here(await a.rental(created["id"]))

    a_kernels.busy = 0  # the cell is done: the owner warns, then stops it
    seen = await history(a, created["id"], final)
    assert any(warned(v) for v in seen) and seen[-1]["stopReason"] == "idle"


@pytest.mark.asyncio
async def test_a_kernel_busy_in_another_server_counts_as_activity(services: Services) -> None:
    a = await services.start(FakeKernels())  # no kernel on it in the server that decides
    created = await a.create(request(), idle_stop_minutes=IDLE)
    await history(a, created["id"], running)
    b_kernels = FakeKernels(kernels=1, busy=1)
    await services.start(b_kernels)

    await asyncio.sleep(3 * IDLE * 60)
    view = await a.rental(created["id"])
    assert view["status"] == "running" and view["stopReason"] is None, view
    assert view["idleStop"]["busyKernels"] == 1 and not view["idleStop"]["warning"]

    b_kernels.busy = 0
    seen = await history(a, created["id"], final)
    assert any(warned(v) for v in seen) and seen[-1]["stopReason"] == "idle"


@pytest.mark.asyncio
async def test_when_the_deciding_server_ends_another_takes_over(services: Services) -> None:
    a = await services.start(FakeKernels(kernels=1, busy=1))
    created = await a.create(request(), idle_stop_minutes=IDLE)
    await history(a, created["id"], running)
    b = await services.start(FakeKernels())
    assert not decided_here(await b.rental(created["id"]))

    await a.close(warn_running=False)
    services.made.remove(a)
    seen = await history(b, created["id"], final)
    assert any(warned(v) and decided_here(v) for v in seen)
    assert seen[-1]["stopReason"] == "idle"


@pytest.mark.asyncio
async def test_a_crashed_deciding_server_is_taken_over(services: Services) -> None:
    """A server killed outright leaves its lock file, unheld: that is how it is known gone."""
    a = await services.start(FakeKernels(), check=3600)
    created = await a.create(request(), idle_stop_minutes=IDLE)
    await history(a, created["id"], running)
    await a.close(warn_running=False)
    services.made.remove(a)
    crashed = "crashed-host-4242-0badcafe"
    state_file = services.state_dir / "rentals.json"
    data = json.loads(state_file.read_text())
    data["rentals"][0]["owner"] = crashed
    state_file.write_text(json.dumps(data))
    owners = services.state_dir / "owners"
    (owners / f"{crashed}.lock").write_text("")
    (owners / f"{crashed}.activity.json").write_text(
        json.dumps(
            {
                "owner": crashed,
                "at": time.time(),
                "staleAfter": time.time() + 3600,
                "rentals": {created["id"]: {"kernels": 1, "busy": 1, "lastActivity": None}},
            }
        )
    )

    b = await services.start(FakeKernels())
    seen = await history(b, created["id"], final)
    assert seen[-1]["stopReason"] == "idle" and decided_here(seen[-1])
    assert not (owners / f"{crashed}.lock").exists()
    assert not (owners / f"{crashed}.activity.json").exists()


@pytest.mark.asyncio
async def test_a_setting_made_in_one_server_is_never_undone_by_anothers_stale_view(
    services: Services,
) -> None:
    busy = FakeKernels(kernels=1, busy=1)
    a = await services.start(busy)
    b = await services.start(busy)
    created = await a.create(request(), idle_stop_minutes=30)
    # B adopts it from the API's list, knowing nothing of its idle stop yet, and saves.
    await b.reconcile()
    await history(b, created["id"], running)
    await a.close(warn_running=False)
    services.made.remove(a)
    await b.close(warn_running=False)  # the last save is B's
    services.made.remove(b)
    c = await services.start(FakeKernels())
    assert (await c.rental(created["id"]))["idleStop"]["minutes"] == 30

    # A change made in one server reaches the other, which never writes its old value back.
    d = await services.start(busy)
    kept = await d.keep(created["id"], idle_stop_minutes=45)
    assert kept["idleStop"]["minutes"] == 45 and decided_here(kept)
    await c.check_idle()
    view = await c.rental(created["id"])
    assert view["idleStop"]["minutes"] == 45 and not decided_here(view)
    await c.keep(created["id"])  # a plain "keep it" in C restarts the timer, nothing more
    await c.close(warn_running=False)
    services.made.remove(c)
    off = await d.keep(created["id"], idle_stop_minutes=0)
    assert off["idleStop"] is None
    await d.close(warn_running=False)
    services.made.remove(d)
    e = await services.start(FakeKernels(), check=3600)
    assert (await e.rental(created["id"]))["idleStop"] is None
