"""Upstream requests a minute while rentals provision or run, and the delay until the user is told
a rental runs: RentalService (batched polls within its request budget, issue 14) beside naive
per-rental polling (one GET per rental per interval: the design before it), in the same run, on
two accounts of one sandbox at the same time.

    .venv/bin/python bench/request_budget.py [--window 30] [--running-window 90]

Both designs poll as the vendor asks (every 2 s while provisioning) and refresh running rentals
every 30 s (``running_poll_interval``'s default). The sandbox's limits are off here so that the
naive design's rate is measured, not cut at 100 a minute (with them on, it gets 429s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from harness import machine, sandbox_and_key

from gpuoutlet_jupyter.api import AsyncRentalsClient, RentalRequest
from gpuoutlet_jupyter.sandbox.testing import SandboxProcess
from gpuoutlet_jupyter.service import RentalService, ServiceOptions
from gpuoutlet_jupyter.ssh import SSHConfigWriter

POLL = 2.0
RUNNING_POLL = 30.0
OBSERVER_PERIOD = 0.05
ACTIVE = ("provisioning", "running")


class Counting(httpx.AsyncBaseTransport):
    """A real transport that notes when each request left."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.sent: list[float] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(time.monotonic())
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()

    def between(self, start: float, end: float) -> int:
        return sum(1 for t in self.sent if start <= t < end)


@contextlib.asynccontextmanager
async def ours(
    sandbox: SandboxProcess, sid: str, key: Path, folder: Path
) -> AsyncIterator[tuple[RentalService, Counting]]:
    """RentalService with its default settings (2 s polls, 30 s refreshes, 60 requests a minute)."""
    transport = Counting()
    client = AsyncRentalsClient(api_url=sandbox.url, sid=sid, transport=transport)
    svc = RentalService(
        client,
        state_dir=folder / "state",
        ssh=SSHConfigWriter(folder / "ssh", identity_file=key),
        options=ServiceOptions(),
        owns_client=True,
    )
    await svc.start()  # its reconcile takes in the rentals already there
    try:
        yield svc, transport
    finally:
        await svc.close(warn_running=False)


async def naive(
    sandbox: SandboxProcess, sid: str, transport: Counting, told: dict[str, float]
) -> None:
    """The design before issue 14: the account's list once, then one poller per rental, each
    asking ``GET /v1/rentals/:id`` every 2 s while it provisions and every 30 s while it runs."""
    async with httpx.AsyncClient(
        base_url=sandbox.url, cookies={"sid": sid}, transport=transport, timeout=30
    ) as http:
        listed = (await http.get("/v1/rentals", params={"pageSize": 200})).json()["rentals"]

        async def follow(rental_id: str) -> None:
            while True:
                status = (await http.get(f"/v1/rentals/{rental_id}")).json()["status"]
                if status == "running":
                    told.setdefault(rental_id, time.monotonic())
                elif status != "provisioning":
                    return
                await asyncio.sleep(POLL if status == "provisioning" else RUNNING_POLL)

        await asyncio.gather(*(follow(r["id"]) for r in listed if r["status"] in ACTIVE))


def statuses(sandbox: SandboxProcess, sid: str) -> dict[str, str]:
    with sandbox.client(sid) as http:
        rentals = http.get("/v1/rentals", params={"pageSize": 200}).json()["rentals"]
    return {r["id"]: r["status"] for r in rentals}


def stop_all(sandbox: SandboxProcess, sid: str) -> None:
    with sandbox.client(sid) as http:
        for rental_id, status in statuses(sandbox, sid).items():
            if status in ACTIVE:
                http.post(f"/v1/rentals/{rental_id}/stop")


def accounts(sandbox: SandboxProcess, key: Path) -> tuple[Any, Any]:
    public = key.with_suffix(".pub").read_text()
    return tuple(  # type: ignore[return-value]
        sandbox.create_account(balance_cents=10_000_00, authorized_keys=public) for _ in range(2)
    )


async def rate(
    sandbox: SandboxProcess, key: Path, work: Path, count: int, status: str, window: float
) -> tuple[float, float, dict[str, Any]]:
    """Requests a minute of ours and of the naive design, ``count`` rentals in ``status``."""
    mine, theirs = accounts(sandbox, key)
    if status == "provisioning":
        sandbox.set_faults(neverReady=True)
    for account in (mine, theirs):
        sandbox.create_rentals(account.account_id, count, status="provisioning")
    if status == "running":
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not all(  # noqa: ASYNC110 (another process)
            all(s == "running" for s in statuses(sandbox, a.sid).values()) for a in (mine, theirs)
        ):
            await asyncio.sleep(0.5)
    naive_transport = Counting()
    async with ours(sandbox, mine.sid, key, work / f"{status}-{count}") as (svc, transport):
        baseline = asyncio.create_task(naive(sandbox, theirs.sid, naive_transport, {}))
        await asyncio.sleep(1.0)  # past the start's list calls
        start = time.monotonic()
        await asyncio.sleep(window)
        end = time.monotonic()
        budget = svc.upstream.budget.to_json()
        baseline.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await baseline
    for account in (mine, theirs):
        stop_all(sandbox, account.sid)
    sandbox.set_faults({})
    per_minute = 60.0 / (end - start)
    return (
        transport.between(start, end) * per_minute,
        naive_transport.between(start, end) * per_minute,
        budget,
    )


async def latency(
    sandbox: SandboxProcess, key: Path, work: Path, count: int
) -> tuple[float, float, int]:
    """Mean seconds from a rental running upstream to the user told, ours and naive; and the
    requests ours sent meanwhile."""
    mine, theirs = accounts(sandbox, key)
    flips: dict[str, float] = {}
    told_ours: dict[str, float] = {}
    told_naive: dict[str, float] = {}
    done = asyncio.Event()

    async def observe(sid: str) -> None:
        # One list call every 50 ms on a session of its own: when each rental flipped.
        async with sandbox.async_client(sid) as http:
            while not done.is_set():
                page = (await http.get("/v1/rentals", params={"pageSize": 200})).json()
                now = time.monotonic()
                for rental in page["rentals"]:
                    if rental["status"] == "running":
                        flips.setdefault(rental["id"], now)
                await asyncio.sleep(OBSERVER_PERIOD)

    async with ours(sandbox, mine.sid, key, work / f"latency-{count}") as (svc, transport):

        async def view() -> None:
            since = 0
            while not done.is_set():
                for rental in await svc.wait_for_any_change(since, 5.0):
                    if rental["status"] == "running":
                        told_ours.setdefault(rental["id"], time.monotonic())
                since = svc.version

        watchers = [
            asyncio.create_task(observe(sandbox.new_session(a.account_id))) for a in (mine, theirs)
        ]
        viewer = asyncio.create_task(view())
        start = time.monotonic()
        sandbox.create_rentals(theirs.account_id, count, status="provisioning")
        baseline = asyncio.create_task(naive(sandbox, theirs.sid, Counting(), told_naive))
        for n in range(count):
            await svc.create(RentalRequest.build(family_id="rtx-4090", name=f"bench-{n}"))
        deadline = time.monotonic() + 180
        while len(told_ours) < count or len(told_naive) < count:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        sent = transport.between(start, time.monotonic())
        done.set()
        for task in (*watchers, viewer, baseline):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    for account in (mine, theirs):
        stop_all(sandbox, account.sid)

    def mean_delay(told: dict[str, float]) -> float:
        return statistics.fmean(told[r] - flips[r] for r in told if r in flips)

    return mean_delay(told_ours), mean_delay(told_naive), sent


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=30.0, help="seconds per provisioning size")
    parser.add_argument(
        "--running-window", type=float, default=90.0, help="seconds per running size"
    )
    parser.add_argument("--latency-only", action="store_true", help="skip the request rates")
    args = parser.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with sandbox_and_key(work, provision_seconds=(3.0, 12.0), worker_interval=0.02) as (
            sandbox,
            key,
        ):
            sandbox.set_rate_limits(0, 0)
            print("\n| rentals | ours req/min | naive req/min | naive / ours | ours budget used |")
            print("|---|---|---|---|---|")
            rates = (
                ("provisioning", (1, 4, 16), args.window),
                ("running", (1, 8, 32), args.running_window),
            )
            for status, sizes, window in () if args.latency_only else rates:
                for count in sizes:
                    ours_rate, naive_rate, budget = await rate(
                        sandbox, key, work, count, status, window
                    )
                    print(
                        f"| {count} {status} | {ours_rate:.1f} | {naive_rate:.1f} | "
                        f"{naive_rate / ours_rate if ours_rate else float('nan'):.1f} | "
                        f"{budget['usedLastMinute']}/"
                        f"{budget['perMinute']} a minute, {budget['rateLimitedCount']} 429s |",
                        flush=True,
                    )
            print("\n| rentals provisioning | ours: mean s to told | naive: mean s to told |")
            print("|---|---|---|")
            for count in (1, 4, 16):
                mine, theirs, _sent = await latency(sandbox, key, work, count)
                print(f"| {count} | {mine:.2f} | {theirs:.2f} |", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
