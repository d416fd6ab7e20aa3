"""RentalService against the sandbox: one poller per rental, long-polls, SSH on running, faults, restart."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from helpers.counting import CountingTransport

from gpuoutlet_jupyter.api import (
    AsyncRentalsClient,
    Rental,
    RentalRequest,
    RetryPolicy,
    Settings,
)
from gpuoutlet_jupyter.kernel.specs import KernelSpecWriter
from gpuoutlet_jupyter.service import RentalRecord, RentalService, RentalView, ServiceOptions
from gpuoutlet_jupyter.service.hooks import StopRequest
from gpuoutlet_jupyter.service.store import Held, StateStore
from gpuoutlet_jupyter.ssh import SSHConfigWriter

FAST_RETRY = RetryPolicy(attempts=3, backoff_initial=0.01, backoff_max=0.05)
FAST = ServiceOptions(
    poll_interval=0.1,
    max_polls=60,
    slow_poll_interval=0.3,
    running_poll_interval=1.0,
    backoff_max=0.5,
    reconcile_interval=0,
)
REQUEST = RentalRequest.build(family_id="rtx-4090", name="service-test")


class Env:
    """Builds services that share one account, state dir and ssh dir (a 'server' and its restart)."""

    def __init__(self, sandbox: Any, account: Any, keypair: Any, tmp_path: Path) -> None:
        self.sandbox = sandbox
        self.account = account
        self.keypair = keypair
        self.state_dir = tmp_path / "state"
        self.ssh_dir = tmp_path / "ssh"
        self.services: list[RentalService] = []

    def writer(self) -> SSHConfigWriter:
        return SSHConfigWriter(self.ssh_dir, identity_file=self.keypair.private_key)

    def client(self, transport: CountingTransport | None = None) -> AsyncRentalsClient:
        return AsyncRentalsClient(
            api_url=self.sandbox.url, sid=self.account.sid, retry=FAST_RETRY, transport=transport
        )

    async def service(
        self,
        options: ServiceOptions = FAST,
        kernelspecs: KernelSpecWriter | None = None,
        client: AsyncRentalsClient | None = None,
    ) -> RentalService:
        svc = RentalService(
            client or self.client(),
            state_dir=self.state_dir,
            ssh=self.writer(),
            kernelspecs=kernelspecs,
            options=options,
            owns_client=True,
        )
        await svc.start()
        self.services.append(svc)
        return svc

    def managed_files(self) -> list[str]:
        folder = self.ssh_dir / "gpuoutlet"
        if not folder.exists():
            return []
        return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


@pytest_asyncio.fixture
async def env(sandbox: Any, account: Any, ssh_keypair: Any, tmp_path: Path) -> AsyncIterator[Env]:
    e = Env(sandbox, account, ssh_keypair, tmp_path)
    yield e
    for svc in e.services:
        await svc.close()
    sandbox.set_faults({})


async def until(
    svc: RentalService,
    rental_id: str,
    done: Callable[[RentalView], bool],
    *,
    limit: float = 60.0,
) -> RentalView:
    """Follow the rental through the service's long-poll until `done` (bounded, not timed)."""
    view = await svc.rental(rental_id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not done(view):
        assert loop.time() < deadline, f"rental never reached the expected state: {view}"
        view = await svc.wait_for_change(rental_id, view["version"], timeout=5)
    return view


def running(view: RentalView) -> bool:
    return view["status"] == "running" and view["ssh"] is not None


@pytest.mark.asyncio
async def test_create_watch_ssh_stop(env: Env) -> None:
    svc = await env.service()
    view = await svc.create(REQUEST)
    assert view["status"] == "provisioning"
    assert view["createdHere"] is True
    assert view["phase"].startswith("Provisioning")

    view = await until(svc, view["id"], running)
    ssh = view["ssh"]
    assert ssh["alias"] == f"gpuoutlet-{view['id']}"
    assert "error" not in ssh
    assert view["phase"].startswith("Running: connect with")
    assert env.managed_files() == [f"{view['id']}.conf", f"{view['id']}.known_hosts"]

    out = await asyncio.to_thread(
        subprocess.run,
        ["ssh", "-F", ssh["configFile"], ssh["alias"], "python3", "-c", "'print(42)'"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert out.stdout.strip() == "42", out.stderr

    await svc.stop(view["id"])
    view = await until(svc, view["id"], lambda v: v["status"] == "stopped")
    assert view["ssh"] is None
    assert env.managed_files() == []
    assert view["id"] not in svc.watching()


@pytest.mark.asyncio
async def test_hooks_run_before_the_stop_and_once_the_rental_ended(env: Env) -> None:
    svc = await env.service()
    seen: list[tuple[str, ...]] = []

    async def save_first(record: RentalRecord, stop: StopRequest) -> None:
        # The pod is still there when it runs: where its work is saved before it goes.
        seen.append(("before", record.id, stop.reason, record.rental.status))

    async def broken(record: RentalRecord, stop: StopRequest) -> None:
        raise RuntimeError("the save failed")

    async def ended(record: RentalRecord) -> None:
        seen.append(("ended", record.id, record.rental.status, str(record.gone)))

    svc.hooks.before_stop += [broken, save_first]
    svc.hooks.ended.append(ended)
    created = await svc.create(REQUEST)
    rental_id = created["id"]
    await until(svc, rental_id, running)
    assert seen == []

    await svc.stop(rental_id)  # a failing hook never keeps a rental running (and billed)
    await until(svc, rental_id, lambda v: v["status"] == "stopped")
    assert seen == [
        ("before", rental_id, "user", "running"),
        ("ended", rental_id, "stopped", "False"),
    ]
    again = await svc.stop(rental_id)  # nothing left to save, nothing ends twice
    assert again["alreadyStopped"] is True and len(seen) == 2

    # A rental the API stops reporting ends too (and nothing was stopped here).
    async with env.client() as direct:
        elsewhere = await direct.create(family_id="rtx-4090", name="made elsewhere")
    await svc.reconcile()
    env.sandbox.delete_rental(elsewhere.id)
    await svc.reconcile()
    ((what, rental, _status, gone),) = seen[2:]
    assert (what, rental, gone) == ("ended", elsewhere.id, "True")


@pytest.mark.asyncio
async def test_many_viewers_one_poller(env: Env) -> None:
    env.sandbox.set_faults({"neverReady": True})
    # Counted on the wire, as the API sees them.
    upstream = CountingTransport()
    svc = await env.service(client=env.client(upstream))
    view = await svc.create(REQUEST)
    rental_id = view["id"]
    before = upstream.polls()
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def viewer() -> int:
        seen, since = 0, view["version"]
        while seen < 8:
            current = await svc.wait_for_change(rental_id, since, timeout=5)
            assert current["version"] > since
            since = current["version"]
            seen += 1
        return seen

    results = await asyncio.gather(*(viewer() for _ in range(20)))
    elapsed = loop.time() - started
    polls = upstream.polls() - before
    assert results == [8] * 20
    # One upstream GET per interval, whatever the number of viewers: 20 pollers of their own
    # would have made at least 20 * 8 requests.
    assert polls <= elapsed / FAST.poll_interval + 2
    assert polls < 20 * 8 / 4


@pytest.mark.asyncio
async def test_transient_errors_are_shown_and_survived(env: Env) -> None:
    svc = await env.service()
    view = await svc.create(REQUEST)
    env.sandbox.set_faults({"errorBurst": {"status": 503, "count": 3}})
    view = await until(svc, view["id"], lambda v: v["upstreamError"] is not None)
    assert "503" in view["upstreamError"]
    assert "retrying" in view["phase"]
    view = await until(svc, view["id"], running)
    assert view["upstreamError"] is None


@pytest.mark.asyncio
async def test_upstream_timeouts_are_shown_and_survived(env: Env) -> None:
    # A client that gives up on an answer after 0.3 s, against an API that answers in 1 s.
    settings = Settings(api_url=env.sandbox.url, timeout_seconds=0.3).with_sid(env.account.sid)
    svc = await env.service(client=AsyncRentalsClient(settings, retry=FAST_RETRY))
    view = await svc.create(REQUEST)
    env.sandbox.set_faults({"slowResponseSeconds": 1.0, "slowCount": 2})
    view = await until(svc, view["id"], lambda v: v["upstreamError"] is not None)
    assert "did not answer in time" in view["upstreamError"]
    view = await until(svc, view["id"], running)
    assert view["upstreamError"] is None


@pytest.mark.asyncio
async def test_rate_limits_and_garbage_do_not_drop_the_rental(env: Env) -> None:
    svc = await env.service()
    view = await svc.create(REQUEST)
    env.sandbox.set_faults(
        {"rateLimitBurst": {"count": 2, "retryAfterSeconds": 1}, "malformedCount": 2}
    )
    view = await until(svc, view["id"], running)
    assert view["id"] in {v["id"] for v in svc.rentals()}


@pytest.mark.asyncio
async def test_provider_failure_is_reported_and_nothing_written(env: Env) -> None:
    svc = await env.service()
    view = await svc.create(REQUEST)
    env.sandbox.fail_rental(view["id"], "provider: host gpu-fi-07 did not boot (ECC error)")
    view = await until(svc, view["id"], lambda v: v["status"] == "failed")
    assert "ECC error" in view["phase"]
    assert view["ssh"] is None
    assert env.managed_files() == []
    assert view["id"] not in svc.watching()


@pytest.mark.asyncio
async def test_never_ready_is_reported_and_still_watched(env: Env) -> None:
    env.sandbox.set_faults({"neverReady": True})
    options = ServiceOptions(
        poll_interval=0.05, max_polls=3, slow_poll_interval=0.1, reconcile_interval=0
    )
    svc = await env.service(options)
    view = await svc.create(REQUEST)
    view = await until(svc, view["id"], lambda v: v["polls"] >= 5)
    assert view["phase"].startswith("Provisioning")
    assert "Still watching, more slowly" in view["phase"] and "stop it" in view["phase"]
    assert view["id"] in svc.watching()


@pytest.mark.asyncio
async def test_hostile_host_fails_the_ssh_step_and_writes_nothing(env: Env) -> None:
    env.sandbox.set_faults({"hostileHost": "evil\nProxyCommand nc attacker 22"})
    svc = await env.service()
    view = await svc.create(REQUEST)
    view = await until(svc, view["id"], running)
    assert "error" in view["ssh"]
    assert "alias" not in view["ssh"]
    assert "no SSH entry was written" in view["phase"]
    assert env.managed_files() == []
    assert (
        not (env.ssh_dir / "config").exists()
        or "ProxyCommand" not in (env.ssh_dir / "config").read_text()
    )


@pytest.mark.asyncio
async def test_restart_while_provisioning_finishes_the_job(env: Env) -> None:
    env.sandbox.set_faults({"neverReady": True})
    first = await env.service()
    view = await first.create(REQUEST)
    await first.close()
    env.services.remove(first)
    env.sandbox.set_faults({})

    second = await env.service()
    assert view["id"] in second.watching()
    # Listed at once from the saved state, before any poll has changed it.
    assert [v["id"] for v in second.rentals()] == [view["id"]]
    view = await until(second, view["id"], running)
    assert view["createdHere"] is True
    assert env.managed_files()[0] == f"{view['id']}.conf"


@pytest.mark.asyncio
async def test_reconcile_adopts_and_forgets(env: Env) -> None:
    svc = await env.service()
    async with env.client() as direct:
        elsewhere = await direct.create(family_id="rtx-4090", name="made elsewhere")
    await svc.reconcile()
    view = await svc.rental(elsewhere.id)
    assert view["createdHere"] is False
    view = await until(svc, elsewhere.id, running)
    assert env.managed_files()

    env.sandbox.delete_rental(elsewhere.id)
    await svc.reconcile()
    view = await svc.rental(elsewhere.id)
    assert view["gone"] is True
    assert view["ssh"] is None
    assert env.managed_files() == []
    assert elsewhere.id not in svc.watching()


@pytest.mark.asyncio
async def test_stop_of_an_untracked_rental_is_tracked(env: Env) -> None:
    svc = await env.service()
    async with env.client() as direct:
        rental = await direct.create(family_id="rtx-4090")
    view = await svc.stop(rental.id)
    assert view["status"] in ("stopping", "stopped")
    view = await until(svc, rental.id, lambda v: v["status"] == "stopped")
    assert view["createdHere"] is False


@pytest.mark.asyncio
async def test_list_long_poll_wakes_on_any_rental(env: Env) -> None:
    svc = await env.service()
    since = svc.version
    waiter = asyncio.create_task(svc.wait_for_any_change(since, timeout=10))
    await asyncio.sleep(0)
    view = await svc.create(REQUEST)
    listed = await waiter
    assert view["id"] in [v["id"] for v in listed]


def _running_as(rental_id: str) -> Rental:
    return Rental.model_validate(
        {
            "id": rental_id,
            "status": "running",
            "host": "127.0.0.1",
            "port": 2222,
            "pricePerHourCents": 65,
            "startedAt": "2026-06-07T08:14:22Z",
        }
    )


@pytest.mark.asyncio
async def test_kernelspec_follows_the_rental_and_only_those_of_ended_rentals_are_swept(
    env: Env, tmp_path: Path
) -> None:
    specs = KernelSpecWriter(tmp_path / "kernels")
    # A rental of this account that stopped while nothing watched it left its spec behind.
    async with env.client() as direct:
        ended = await direct.create(family_id="rtx-4090", name="ended unwatched")
        await direct.stop(ended.id)
        for _ in range(100):
            if (await direct.get(ended.id)).status == "stopped":
                break
            await asyncio.sleep(0.1)
    for rental_id in (ended.id, "rent_OTHERPROCESS"):
        specs.install(_running_as(rental_id), env.writer().write(rental_id, "127.0.0.1", 2222))
    # rent_OTHERPROCESS: a rental this account's list does not know (another account's, or a
    # kernel's that rents by itself): never this service's to remove.
    assert set(specs.installed().values()) == {ended.id, "rent_OTHERPROCESS"}

    # The list fails at start (every try): nothing at all is swept.
    env.sandbox.set_faults({"errorBurst": {"status": 503, "count": FAST_RETRY.attempts}})
    first = await env.service(kernelspecs=specs)
    assert set(specs.installed().values()) == {ended.id, "rent_OTHERPROCESS"}
    await first.close()
    env.services.remove(first)

    # The list answers: the spec of the stopped rental goes, the unknown one stays.
    svc = await env.service(kernelspecs=specs)
    assert set(specs.installed().values()) == {"rent_OTHERPROCESS"}
    view = await svc.create(REQUEST)
    view = await until(svc, view["id"], lambda v: v["kernel"] is not None)
    assert specs.installed()[view["kernel"]] == view["id"]
    await svc.stop(view["id"])
    view = await until(svc, view["id"], lambda v: v["status"] == "stopped")
    assert view["kernel"] is None
    assert set(specs.installed().values()) == {"rent_OTHERPROCESS"}


@pytest.mark.asyncio
async def test_periodic_reconcile_shows_rentals_made_elsewhere_and_forgets_vanished_ones(
    env: Env,
) -> None:
    options = ServiceOptions(poll_interval=0.1, running_poll_interval=60.0, reconcile_interval=0.3)
    svc = await env.service(options)

    async def listed_until(done: Callable[[list[RentalView]], bool]) -> list[RentalView]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        views = svc.rentals()
        while not done(views):
            assert loop.time() < deadline, f"never reconciled: {views}"
            views = await svc.wait_for_any_change(svc.version, timeout=2)
        return views

    async with env.client() as direct:
        elsewhere = await direct.create(family_id="rtx-4090", name="made on the website")
    # No call from here: the periodic reconcile finds it, and its watcher takes it to running.
    views = await listed_until(lambda vs: any(v["id"] == elsewhere.id and v["ssh"] for v in vs))
    assert next(v for v in views if v["id"] == elsewhere.id)["createdHere"] is False
    assert env.managed_files()

    env.sandbox.delete_rental(elsewhere.id)
    views = await listed_until(lambda vs: any(v["id"] == elsewhere.id and v["gone"] for v in vs))
    assert next(v for v in views if v["id"] == elsewhere.id)["ssh"] is None
    assert env.managed_files() == []


# --- failing disks and unexpected errors never end a watcher, the reconcile loop or the start ---


def _broken_ssh_dir(env: Env) -> Path:
    """An ~/.ssh whose parent folder is missing: every write there raises FileNotFoundError
    (as a read-only ~/.ssh raises PermissionError for a user who is not root)."""
    env.ssh_dir = env.ssh_dir.parent / "no-such-home" / ".ssh"
    return env.ssh_dir


@pytest.mark.asyncio
async def test_an_os_error_writing_the_ssh_entry_is_shown_and_the_watch_goes_on(env: Env) -> None:
    ssh_dir = _broken_ssh_dir(env)
    svc = await env.service()
    created = await svc.create(REQUEST)
    view = await until(svc, created["id"], lambda v: v["status"] == "running" and v["ssh"])
    error = view["ssh"]["error"]
    assert "alias" not in view["ssh"]
    assert str(ssh_dir) in error and "No such file or directory" in error
    assert "no SSH entry was written" in view["phase"]
    assert created["id"] in svc.watching()

    # Once the folder is there, the next poll writes the entry.
    ssh_dir.parent.mkdir()
    view = await until(svc, created["id"], lambda v: bool(v["ssh"] and v["ssh"].get("alias")))
    assert "error" not in view["ssh"]
    await svc.stop(created["id"])
    view = await until(svc, created["id"], lambda v: v["status"] == "stopped")
    assert view["ssh"] is None


@pytest.mark.asyncio
async def test_a_failing_ssh_write_at_start_does_not_stop_the_service(env: Env) -> None:
    first = await env.service()
    created = await first.create(REQUEST)
    await until(first, created["id"], running)
    await first.close()
    env.services.remove(first)

    # Restarted with an ~/.ssh that cannot be written: it starts, and says why there is no alias.
    _broken_ssh_dir(env)
    second = await env.service()
    view = await second.rental(created["id"])
    assert view["status"] == "running" and "No such file or directory" in view["ssh"]["error"]
    assert created["id"] in second.watching()
    stopped = await second.stop(created["id"])
    assert stopped["status"] in ("stopping", "stopped")


class ExplodingActivity:
    """An activity source that fails (a kernel manager in flux) a number of times."""

    def __init__(self, failures: int) -> None:
        self.failures = failures

    def __call__(self, rental_ids: Any) -> dict[str, Any]:
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("kernel manager in flux")
        return {}


@pytest.mark.asyncio
async def test_an_unexpected_error_ends_neither_a_watcher_nor_the_reconcile_loop(env: Env) -> None:
    activity = ExplodingActivity(failures=1_000_000)
    options = ServiceOptions(
        poll_interval=0.1,
        running_poll_interval=0.2,
        reconcile_interval=0.2,
        idle_stop_minutes=30,
        idle_check_interval=3600,
    )
    svc = RentalService(
        env.client(),
        state_dir=env.state_dir,
        ssh=env.writer(),
        options=options,
        activity=activity,
        owns_client=True,
    )
    env.services.append(svc)
    await svc.start()
    created = await svc.create(REQUEST)
    # Each poll that sees it running fails while judging its idle timer, as does each reconcile.
    for _ in range(30):
        await asyncio.sleep(0.2)
        if activity.failures < 1_000_000 - 6:
            break
    assert created["id"] in svc.watching()
    assert svc._watcher.reconciling
    activity.failures = 0  # fixed: the next poll goes through
    view = await until(svc, created["id"], running)
    assert view["idleStop"]["minutes"] == 30


@pytest.mark.asyncio
async def test_an_os_error_removing_the_ssh_entry_is_shown_on_the_stopped_rental(
    env: Env,
) -> None:
    svc = await env.service()
    created = await svc.create(REQUEST)
    await until(svc, created["id"], running)
    # The managed folder's lock file cannot be opened any more (a directory in its place).
    lock = env.ssh_dir / "gpuoutlet" / ".lock"
    lock.unlink(missing_ok=True)
    lock.mkdir()
    await svc.stop(created["id"])
    view = await until(svc, created["id"], lambda v: v["status"] == "stopped")
    error = view["ssh"]["error"]
    assert "could not be removed" in error and f"{created['id']}.conf" in error
    assert error in view["phase"] and view["phase"].startswith(
        "Stopped: the pod and its disk are gone."
    )
    assert created["id"] not in svc.watching()


# --- a damaged state file: record by record, copies numbered, recovery claimed only if true ---


def _state_file(env: Env) -> Path:
    return env.state_dir / "rentals.json"


def _damage(env: Env, change: Callable[[dict[str, Any]], None]) -> bytes:
    """Rewrite the state file as `change` leaves it (Python's json writes Infinity, as a
    hand edit or another tool might); returns the damaged bytes."""
    data = json.loads(_state_file(env).read_text())
    change(data)
    raw = json.dumps(data, indent=1).encode()
    _state_file(env).write_bytes(raw)
    return raw


def _first(data: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = data["rentals"][0]
    return record


DAMAGES: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "null record": (lambda d: d["rentals"].insert(0, None), "record 0 was skipped"),
    "record without a rental": (
        lambda d: d["rentals"].append({"rental": {"status": "running"}, "version": 3}),
        "record 1 was skipped",
    ),
    "version Infinity": (lambda d: _first(d).update(version=math.inf), "version inf"),
    "sshTarget of one item": (lambda d: _first(d).update(sshTarget=["x"]), "sshTarget ['x']"),
    "endedAt 1e300": (lambda d: _first(d).update(endedAt=1e300), "endedAt 1e+300"),
    "a string for idleStopMinutes": (
        lambda d: _first(d).update(idleStopMinutes="30"),
        "idleStopMinutes '30'",
    ),
}


@pytest.mark.asyncio
@pytest.mark.parametrize("damage", DAMAGES, ids=list(DAMAGES))
async def test_a_damaged_record_is_skipped_and_named_and_the_others_kept(
    env: Env, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    first = await env.service()
    created = await first.create(REQUEST)
    await until(first, created["id"], running)
    await first.close()
    env.services.remove(first)
    change, named = DAMAGES[damage]
    raw = _damage(env, change)

    caplog.set_level(logging.ERROR, logger="gpuoutlet_jupyter")
    second = await env.service()
    # The good rental is watched, shown, and costs what it costs.
    assert created["id"] in second.watching()
    (view,) = [v for v in second.rentals() if v["id"] == created["id"]]
    assert view["status"] == "running" and view["costCents"] >= 0
    # What was wrong is named (its index, its id where one could be read), and kept aside.
    problems = " ".join(second.state_problems)
    assert named in problems, problems
    if "record 0" not in named and "record 1" not in named:
        assert f"record 0 ({created['id']})" in problems
    assert "recovered from the API's list" in problems
    aside = env.state_dir / "rentals.damaged.1.json"
    assert aside.read_bytes() == raw
    assert named in caplog.text and str(aside) in caplog.text
    # The file was rewritten with what could be read: the next start finds nothing wrong.
    await second.close()
    env.services.remove(second)
    third = await env.service()
    assert third.state_problems == [] and created["id"] in third.watching()
    assert not (env.state_dir / "rentals.damaged.2.json").exists()


@pytest.mark.asyncio
async def test_set_aside_copies_are_numbered_never_overwritten(env: Env) -> None:
    svc = await env.service()
    await svc.create(REQUEST)
    await svc.close()
    env.services.remove(svc)
    copies = []
    for number in (1, 2, 3):
        raw = _damage(env, lambda d, n=number: d["rentals"].append({"damage": n}))
        svc = await env.service()
        assert "record 1 was skipped" in " ".join(svc.state_problems)
        await svc.close()
        env.services.remove(svc)
        copies.append(raw)
    for number, raw in enumerate(copies, 1):
        assert (env.state_dir / f"rentals.damaged.{number}.json").read_bytes() == raw


@pytest.mark.asyncio
async def test_a_file_that_is_not_json_is_set_aside_and_recovery_is_claimed_only_if_true(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    first = await env.service()
    created = await first.create(REQUEST)
    await first.close()
    env.services.remove(first)
    caplog.set_level(logging.ERROR, logger="gpuoutlet_jupyter")

    # The API's list fails too: nothing may claim the rentals were recovered.
    _state_file(env).write_bytes(b'{"rentals": [ {"rental": ')
    env.sandbox.set_faults({"errorBurst": {"status": 503, "count": FAST_RETRY.attempts}})
    blind = await env.service()
    problems = " ".join(blind.state_problems)
    assert "not JSON" in problems and "could not be read" in problems
    assert "recovered" not in problems and "recovered" not in caplog.text
    assert blind.rentals() == []
    assert (env.state_dir / "rentals.damaged.1.json").read_bytes().startswith(b'{"rentals": [')
    await blind.close()
    env.services.remove(blind)

    # With the list, the rental is back (adopted from it) and the claim is made.
    _state_file(env).write_bytes(b"\x00garbage")
    recovered = await env.service()
    assert "recovered from the API's list" in " ".join(recovered.state_problems)
    assert created["id"] in recovered.watching()
    assert (env.state_dir / "rentals.damaged.2.json").read_bytes() == b"\x00garbage"


# --- the store's merge, without a service -------------------------------------------------


def _record(rental_id: str, **fields: Any) -> RentalRecord:
    record = RentalRecord(rental=_running_as(rental_id), version=1, phase="")
    for name, value in fields.items():
        setattr(record, name, value)
    return record


def _held(record: RentalRecord, *, changed: bool = True, settings: bool = False) -> Held:
    return Held(record.to_state(), changed, settings)


def test_a_save_keeps_other_processes_records_and_their_settings(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    # Process A saves two rentals, one with an idle stop it owns; a newer version's field too.
    a_idle = _record("rent_A", idle_stop_minutes=30.0, owner="a-1-x")
    store.save([_held(a_idle, settings=True), _held(_record("rent_A2"))])
    data = json.loads(store.path.read_text())
    data["rentals"][1]["futureField"] = {"kept": True}
    store.path.write_text(json.dumps(data))

    # Process B holds rent_A with a stale view (no idle stop) and changed it (a poll), and
    # holds rent_B of its own; it knows nothing of rent_A2.
    stale = _record("rent_A", phase="polled by B")
    saved_by_b = store.save([_held(stale), _held(_record("rent_B"))])
    written = saved_by_b.written
    assert written["rent_A"]["idleStopMinutes"] == 30.0
    assert written["rent_A"]["owner"] == "a-1-x"
    assert written["rent_A"]["phase"] == "polled by B"
    assert not saved_by_b.found.damaged
    assert saved_by_b.signature == store.signature() is not None
    saved = {r["rental"]["id"]: r for r in json.loads(store.path.read_text())["rentals"]}
    assert set(saved) == {"rent_A", "rent_A2", "rent_B"}
    assert saved["rent_A2"]["futureField"] == {"kept": True}

    # A setting B makes itself wins; A's unchanged view does not undo it.
    mine = _record("rent_A", idle_stop_minutes=45.0, owner="b-2-y")
    store.save([_held(mine, settings=True)])
    store.save([_held(a_idle, changed=False)])
    store.save([_held(a_idle, changed=True)])
    saved = {r["rental"]["id"]: r for r in json.loads(store.path.read_text())["rentals"]}
    assert (saved["rent_A"]["idleStopMinutes"], saved["rent_A"]["owner"]) == (45.0, "b-2-y")


def test_activity_only_moves_forward_and_an_ended_rental_stays_ended(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    ended = _record("rent_E", last_active_at=2000.0)
    ended.rental = ended.rental.model_copy(update={"status": "stopped"})
    store.save([_held(ended)])
    stale = _record("rent_E", last_active_at=1000.0)  # still thinks it runs
    written = store.save([_held(stale)]).written
    assert written["rent_E"]["rental"]["status"] == "stopped"
    assert written["rent_E"]["lastActiveAt"] == 2000.0


def test_a_file_damaged_while_running_is_repaired_by_the_next_save(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    store.save([_held(_record("rent_1")), _held(_record("rent_2"))])
    store.path.write_bytes(b'{"format": 1, "rentals": [null, {"rental": {"id": "x"}}]}')
    found = store.save([_held(_record("rent_1"), changed=False)]).found
    assert found.set_aside == tmp_path / "state" / "rentals.damaged.1.json"
    skipped = [p.split(":")[0] for p in found.problems]
    assert skipped == ["record 0 was skipped", "record 1 (x) was skipped"]
    assert [r["rental"]["id"] for r in json.loads(store.path.read_text())["rentals"]] == ["rent_1"]
    assert StateStore(tmp_path / "state").load().problems == []


def test_a_non_finite_number_in_an_unknown_member_is_dropped_not_fatal(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    store.save([_held(_record("rent_1"))])
    data = json.loads(store.path.read_text())
    data["rentals"][0]["futureField"] = math.nan
    store.path.write_text(json.dumps(data))
    loaded = store.load()
    assert [r.id for r in loaded.records] == ["rent_1"]
    assert "not a finite number" in loaded.problems[0]
    assert "NaN" not in store.path.read_text()
    store.save([_held(_record("rent_1"))])  # and saves go on
