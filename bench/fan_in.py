"""Fan-in: upstream GETs per rental per poll interval with 1-50 viewers, extension vs. naive polling.

The extension runs one poller per rental whatever the number of viewers (notebooks, tabs,
widgets long-polling it). The naive design has every viewer poll the rentals API itself. Both are
measured here in one run against the same sandbox, whose access log counts the upstream GETs.

    .venv/bin/python bench/fan_in.py [--interval 0.5] [--seconds 6]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import tempfile
import time
from pathlib import Path

import httpx
from harness import API, jupyter_server, machine, sandbox_and_key

VIEWERS = (1, 5, 20, 50)


def upstream_gets(log: str, rental_id: str) -> int:
    return len(re.findall(rf'"GET /v1/rentals/{rental_id} HTTP', log))


async def extension_viewers(
    server_url: str, token: str, rental_id: str, n: int, seconds: float
) -> int:
    """n viewers long-polling the extension for `seconds`; returns how many answers they got."""
    answers = 0
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=n + 5)
    headers = {"Authorization": f"token {token}"}
    async with httpx.AsyncClient(
        base_url=server_url, headers=headers, timeout=30, limits=limits
    ) as c:

        async def viewer() -> None:
            nonlocal answers
            since = -1
            while time.monotonic() < deadline:
                wait = max(0.1, deadline - time.monotonic())
                r = await c.get(
                    f"{API}rentals/{rental_id}", params={"wait": f"{wait:.2f}", "since": since}
                )
                r.raise_for_status()
                since = r.json()["version"]
                answers += 1

        await asyncio.gather(*(viewer() for _ in range(n)))
    return answers


async def naive_viewers(
    api_url: str, sid: str, rental_id: str, n: int, seconds: float, interval: float
) -> None:
    """n viewers each polling the rentals API itself every `interval`, as the seed's loop does."""
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=n + 5)
    async with httpx.AsyncClient(
        base_url=api_url, headers={"Cookie": f"sid={sid}"}, limits=limits
    ) as c:

        async def viewer() -> None:
            while time.monotonic() < deadline:
                (await c.get(f"/v1/rentals/{rental_id}")).raise_for_status()
                await asyncio.sleep(interval)

        await asyncio.gather(*(viewer() for _ in range(n)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--interval", type=float, default=0.5, help="poll interval (s) of both designs"
    )
    parser.add_argument("--seconds", type=float, default=6.0, help="how long each measurement runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        # Pods that never boot keep every rental provisioning, polled at the full rate. The
        # vendor's rate limits are off: the naive design goes far over them (that is the point),
        # and what is measured here is how many requests each design sends, not the refusals.
        unlimited = ("--requests-per-minute", "0", "--requests-per-hour", "0")
        with sandbox_and_key(
            work, provision_seconds=(1e6, 1e6), extra_args=("--access-log", *unlimited)
        ) as (sandbox, key):
            traits = {"poll_interval": args.interval, "reconcile_interval": 0, "max_polls": 10**6}
            with jupyter_server(
                work, sandbox, sid=sandbox.sid, identity=key, traits=traits
            ) as server:
                print(
                    f"# fan-in · interval {args.interval} s · {args.seconds} s per row · {machine()}"
                )
                print(
                    f"{'viewers':>7} | {'extension GETs/interval':>23} | {'naive GETs/interval':>19} | {'naive/extension':>15} | viewer answers"
                )
                with server.client(timeout=30) as rest:
                    for n in VIEWERS:
                        rental = rest.post(API + "rentals", json={"familyId": "rtx-4090"}).json()
                        rid = rental["id"]
                        before = upstream_gets(sandbox.log(), rid)
                        answers = asyncio.run(
                            extension_viewers(server.url, server.token, rid, n, args.seconds)
                        )
                        ext = upstream_gets(sandbox.log(), rid) - before
                        rest.post(f"{API}rentals/{rid}/stop")
                        # The naive viewers watch a rental the extension does not know about,
                        # so its poller's GETs are not counted twice.
                        with sandbox.client(sandbox.sid) as direct:
                            made = direct.post(
                                "/v1/rentals", json={"familyId": "rtx-4090", "gpuCount": 1}
                            )
                            made.raise_for_status()
                            other = made.json()["id"]
                        asyncio.run(
                            naive_viewers(
                                sandbox.url, sandbox.sid, other, n, args.seconds, args.interval
                            )
                        )
                        naive = upstream_gets(sandbox.log(), other)
                        with sandbox.client(sandbox.sid) as direct:
                            direct.post(f"/v1/rentals/{other}/stop")
                        intervals = args.seconds / args.interval
                        print(
                            f"{n:>7} | {ext / intervals:>23.2f} | {naive / intervals:>19.2f} | "
                            f"{naive / max(ext, 1):>15.1f} | {answers}"
                        )


if __name__ == "__main__":
    main()
