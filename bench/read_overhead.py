"""Read overhead: one rental read through the extension, against the same read sent straight to
the sandbox, and against jupyter-server-proxy forwarding it to the sandbox.

The extension answers from the service's state (no upstream request per read); the proxy
forwards every read upstream. All three are timed in one run, sequentially, on one machine.

    .venv/bin/python bench/read_overhead.py [--requests 500]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from harness import API, jupyter_server, machine, percentile, sandbox_and_key


def timed(client: httpx.Client, path: str, n: int, **kwargs: object) -> list[float]:
    for _ in range(20):  # warm the connection and any caches
        client.get(path, **kwargs).raise_for_status()
    out = []
    for _ in range(n):
        started = time.perf_counter()
        client.get(path, **kwargs).raise_for_status()
        out.append(time.perf_counter() - started)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with sandbox_and_key(work, provision_seconds=(0.5, 1.0), worker_interval=0.2) as (
            sandbox,
            key,
        ):
            traits = {"poll_interval": 2.0, "reconcile_interval": 0}
            extra = ("--ServerApp.jpserver_extensions=jupyter_server_proxy=True",)
            with jupyter_server(
                work, sandbox, sid=sandbox.sid, identity=key, traits=traits, extra_args=extra
            ) as server:
                with server.client(timeout=30) as rest, sandbox.client(sandbox.sid) as direct:
                    rid = rest.post(API + "rentals", json={"familyId": "rtx-4090"}).json()["id"]
                    port = sandbox.url.rsplit(":", 1)[1]
                    results = {
                        "sandbox, direct": timed(direct, f"/v1/rentals/{rid}", args.requests),
                        "extension": timed(rest, f"{API}rentals/{rid}", args.requests),
                        "jupyter-server-proxy": timed(
                            rest,
                            f"proxy/{port}/v1/rentals/{rid}",
                            args.requests,
                            headers={"Cookie": f"sid={sandbox.sid}"},
                        ),
                    }
                    rest.post(f"{API}rentals/{rid}/stop")
    base = statistics.median(results["sandbox, direct"])
    print(f"# read overhead · {args.requests} sequential GETs each · {machine()}")
    print(f"{'path':>22} | {'p50':>9} | {'p99':>9} | p50 / direct")
    for name, values in results.items():
        p50 = statistics.median(values)
        print(
            f"{name:>22} | {p50 * 1e3:7.2f}ms | {percentile(values, 99) * 1e3:7.2f}ms | {p50 / base:.2f}"
        )


if __name__ == "__main__":
    main()
