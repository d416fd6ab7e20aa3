"""Ready latency: from the sandbox flipping a rental to running until the extension's long-poll
answers with the SSH entry written, against the floor that polling every 2 s imposes (mean 1 s).

An observer polls the sandbox directly every 20 ms to time the flip; a viewer long-polls the
extension. The extension polls upstream every 2 s, as the seed prescribes.

    .venv/bin/python bench/ready_latency.py [--rentals 10]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

from harness import API, jupyter_server, machine, percentile, sandbox_and_key

OBSERVER_PERIOD = 0.02


def observe_flip(
    sandbox_url: str, sid: str, rental_id: str, out: dict[str, float], stop: threading.Event
) -> None:
    import httpx

    with httpx.Client(base_url=sandbox_url, cookies={"sid": sid}, timeout=10) as c:
        while not stop.is_set():
            if c.get(f"/v1/rentals/{rental_id}").json()["status"] == "running":
                out["flip"] = time.monotonic()
                return
            time.sleep(OBSERVER_PERIOD)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rentals", type=int, default=10)
    parser.add_argument("--interval", type=float, default=2.0, help="the extension's poll interval")
    args = parser.parse_args()
    latencies: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        # The sandbox's worker runs every 0.02 s here, so flips land at random moments, not in
        # step with the extension's 2 s polls; the observer times each flip.
        with sandbox_and_key(work, provision_seconds=(1.0, 4.0), worker_interval=0.02) as (
            sandbox,
            key,
        ):
            traits = {"poll_interval": args.interval, "reconcile_interval": 0}
            with jupyter_server(
                work, sandbox, sid=sandbox.sid, identity=key, traits=traits
            ) as server:
                with server.client(timeout=60) as rest:
                    for _ in range(args.rentals):
                        view = rest.post(API + "rentals", json={"familyId": "rtx-4090"}).json()
                        rid = view["id"]
                        seen: dict[str, float] = {}
                        stop = threading.Event()
                        observer = threading.Thread(
                            target=observe_flip, args=(sandbox.url, sandbox.sid, rid, seen, stop)
                        )
                        observer.start()
                        while not (view["status"] == "running" and view["ssh"]):
                            view = rest.get(
                                f"{API}rentals/{rid}", params={"wait": 30, "since": view["version"]}
                            ).json()
                        answered = time.monotonic()
                        stop.set()
                        observer.join()
                        entry = server.ssh_dir / "gpuoutlet" / f"{rid}.conf"
                        assert entry.exists(), "the SSH entry must exist when the long-poll answers"
                        latencies.append(answered - seen["flip"])
                        rest.post(f"{API}rentals/{rid}/stop")
    print(
        f"# ready latency · {args.rentals} rentals · extension polls every {args.interval} s · {machine()}"
    )
    print(f"{'':>12} | {'measured':>9} | {'polling floor (uniform 0..interval)':>35}")
    floor_mean = args.interval / 2
    print(f"{'mean':>12} | {statistics.mean(latencies):8.3f}s | {floor_mean:34.3f}s")
    print(f"{'p50':>12} | {statistics.median(latencies):8.3f}s | {args.interval * 0.5:34.3f}s")
    print(f"{'p90':>12} | {percentile(latencies, 90):8.3f}s | {args.interval * 0.9:34.3f}s")
    print(f"{'max':>12} | {max(latencies):8.3f}s | {args.interval:34.3f}s")
    print(f"mean measured / mean floor = {statistics.mean(latencies) / floor_mean:.2f}")


if __name__ == "__main__":
    main()
