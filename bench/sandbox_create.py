"""Benchmark POST /v1/rentals on the sandbox: one contended wallet versus one wallet per client.

Usage: python bench/sandbox_create.py [--requests N] [--concurrency C] [--provider-latency S]

Starts `gpuoutlet-sandbox serve` as a subprocess (on a free port, in a temporary data dir),
then runs the same load twice: every client creating on ONE account, and each client on its
own account (MANY). Pods never boot during the run (the provision delay is an hour), so this
measures the create path only: validation, the wallet transaction, allocation, the insert.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from gpuoutlet_jupyter.sandbox.testing import SandboxProcess, start_sandbox

BODY = {"familyId": "rtx-4090", "gpuCount": 1}
PRICE_CENTS = 65


@dataclass(frozen=True)
class Result:
    label: str
    creates: int
    seconds: float
    latencies: list[float]

    @property
    def per_second(self) -> float:
        return self.creates / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


class _Connection:
    """A bare HTTP/1.1 keep-alive connection: the load generator shares the machine with the
    sandbox, and httpx's own CPU cost per request would be measured along with the server's."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, url: str) -> _Connection:
        parsed = httpx.URL(url)
        reader, writer = await asyncio.open_connection(parsed.host, parsed.port)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        self._writer.write(raw)
        head = await self._reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = next(
            int(line.split(":", 1)[1])
            for line in lines
            if line.lower().startswith("content-length:")
        )
        return status, await self._reader.readexactly(length)

    async def close(self) -> None:
        self._writer.close()
        await self._writer.wait_closed()


def _create_request(url: str, sid: str) -> bytes:
    body = json.dumps(BODY).encode()
    host = httpx.URL(url).netloc.decode()
    head = (
        f"POST /v1/rentals HTTP/1.1\r\nHost: {host}\r\nCookie: sid={sid}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _run(label: str, url: str, sids: list[str], requests: int) -> Result:
    per_client = requests // len(sids)
    # Connections are open before the clock starts: connection setup is not a create.
    connections = [await _Connection.open(url) for _ in sids]
    latencies: list[float] = []

    async def client(connection: _Connection, raw: bytes) -> None:
        for _ in range(per_client):
            start = time.perf_counter()
            status, body = await connection.request(raw)
            latencies.append(time.perf_counter() - start)
            if status != 200:
                raise SystemExit(f"create failed: {status} {body.decode(errors='replace')}")

    start = time.perf_counter()
    await asyncio.gather(
        *(client(c, _create_request(url, sid)) for c, sid in zip(connections, sids, strict=True))
    )
    elapsed = time.perf_counter() - start
    for connection in connections:
        await connection.close()
    return Result(label, per_client * len(sids), elapsed, latencies)


def _accounts(sandbox: SandboxProcess, n: int, creates_each: int) -> list[str]:
    return [sandbox.create_account(balance_cents=PRICE_CENTS * creates_each).sid for _ in range(n)]


def bench(
    sandbox: SandboxProcess, requests: int, concurrency: int, warmup: int, rounds: int
) -> list[Result]:
    """`rounds` runs of each shape, alternating which goes first (the database grows as the
    runs go, so a fixed order would favour the first); results pooled per shape."""
    per_client = requests // concurrency
    # Warm up the server (code paths, the SQLite page cache) on a throwaway account.
    asyncio.run(_run("warmup", sandbox.url, _accounts(sandbox, 1, warmup), warmup))
    pooled: dict[str, list[Result]] = {"ONE wallet": [], "MANY wallets": []}
    for round_ in range(rounds):
        shapes = ["ONE wallet", "MANY wallets"]
        for label in shapes if round_ % 2 == 0 else reversed(shapes):
            if label == "ONE wallet":
                sids = _accounts(sandbox, 1, per_client * concurrency) * concurrency
            else:
                sids = _accounts(sandbox, concurrency, per_client)
            pooled[label].append(asyncio.run(_run(label, sandbox.url, sids, requests)))
    return [
        Result(
            label,
            sum(r.creates for r in runs),
            sum(r.seconds for r in runs),
            [x for r in runs for x in r.latencies],
        )
        for label, runs in pooled.items()
    ]


def report(results: list[Result], args: argparse.Namespace) -> str:
    one, many = results
    rows = [
        ("", one.label, many.label, "many/one"),
        (
            "creates/s",
            f"{one.per_second:.0f}",
            f"{many.per_second:.0f}",
            f"{many.per_second / one.per_second:.2f}",
        ),
        (
            "p50 ms",
            f"{one.percentile(0.50):.1f}",
            f"{many.percentile(0.50):.1f}",
            f"{many.percentile(0.50) / one.percentile(0.50):.2f}",
        ),
        (
            "p99 ms",
            f"{one.percentile(0.99):.1f}",
            f"{many.percentile(0.99):.1f}",
            f"{many.percentile(0.99) / one.percentile(0.99):.2f}",
        ),
        (
            "mean ms",
            f"{statistics.fmean(one.latencies) * 1000:.1f}",
            f"{statistics.fmean(many.latencies) * 1000:.1f}",
            "",
        ),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        f"POST /v1/rentals: {one.creates} creates per shape ({args.rounds} round(s)), "
        f"{args.concurrency} concurrent clients, provider latency "
        f"{args.provider_latency * 1000:.0f} ms",
    ]
    lines += ["  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="creates per run (2000)")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent clients (32)")
    parser.add_argument(
        "--provider-latency",
        type=float,
        default=0.0,
        metavar="S",
        help="seconds the provider takes to allocate, inside the wallet transaction (0)",
    )
    parser.add_argument("--warmup", type=int, default=100, help="creates before measuring (100)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each shape (2)")
    args = parser.parse_args(argv)
    if args.requests < args.concurrency:
        parser.error("--requests must be at least --concurrency")
    with tempfile.TemporaryDirectory(prefix="sandbox-bench-") as tmp:
        total = 2 * args.rounds * args.requests + args.warmup
        capacity_factor = str(total // 64 + 1)  # the cheapest listing has 64 machines
        with start_sandbox(
            Path(tmp),
            provision_seconds=(3600.0, 3600.0),
            # The create path is measured, not the vendor's request limits (off here).
            requests_per_minute=0,
            requests_per_hour=0,
            extra_args=["--capacity-factor", capacity_factor, "--log-level", "warning"],
        ) as sandbox:
            if args.provider_latency:
                sandbox.set_faults({"providerLatencySeconds": args.provider_latency})
            results = bench(sandbox, args.requests, args.concurrency, args.warmup, args.rounds)
    print(report(results, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
