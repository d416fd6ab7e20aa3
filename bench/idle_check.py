"""Idle auto-stop's cost on the server's loop: one look at every rental's kernels, against the
server's own kernel listing (``GET /api/kernels``, which every JupyterLab page polls).

Both walk the same jupyter_server kernel manager holding K kernels, R rentals' worth of them
on rented GPUs (the rest local). The kernels are registered kernel managers that are not
started: what both sides read is the manager's bookkeeping (name, last activity, execution
state), never the kernel process. Timed in one run, interleaved, medians reported.

    .venv/bin/python bench/idle_check.py [--rounds 300]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from harness import machine
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager

from gpuoutlet_jupyter.api import AsyncRentalsClient, Rental
from gpuoutlet_jupyter.kernel.specs import kernel_name_for
from gpuoutlet_jupyter.server.activity import KernelManagerActivity
from gpuoutlet_jupyter.service import RentalRecord, RentalService, ServiceOptions

SHAPES = ((5, 20), (20, 100), (50, 500))


def kernel_manager(rentals: list[str], kernels: int) -> AsyncMappingKernelManager:
    km = AsyncMappingKernelManager()
    now = datetime.now(timezone.utc)
    for i in range(kernels):
        # Half the kernels on rented GPUs, spread over the rentals; the others local.
        name = kernel_name_for(rentals[i % len(rentals)]) if i % 2 == 0 else "python3"
        kernel = km.kernel_manager_factory(kernel_name=name)
        kernel.last_activity = now
        kernel.execution_state = "busy" if i % 7 == 0 else "idle"
        km._kernels[f"k{i}"] = kernel
    return km


def rental(rental_id: str) -> Rental:
    return Rental.model_validate(
        {
            "id": rental_id,
            "status": "running",
            "host": "127.0.0.1",
            "port": 2222,
            "pricePerHourCents": 65,
            "startedAt": "2026-11-26T08:00:00Z",
        }
    )


async def measure(n_rentals: int, n_kernels: int, rounds: int, state: Path) -> dict[str, float]:
    ids = [f"rent_bench{i:04d}" for i in range(n_rentals)]
    km = kernel_manager(ids, n_kernels)
    # Never called: an idle look reads local state only (a stop would be the one API call).
    client = AsyncRentalsClient(api_url="http://127.0.0.1:9", sid="unused")
    service = RentalService(
        client,
        state_dir=state,
        options=ServiceOptions(idle_stop_minutes=60, reconcile_interval=0),
        activity=KernelManagerActivity(km),
        owns_client=True,
    )
    for rental_id in ids:
        record = RentalRecord(rental=rental(rental_id), version=1, phase="")
        record.idle_stop_minutes, record.last_active_at = 60.0, time.time()
        service._tracker.restore(record)
    await service.check_idle()  # the first look announces every timer; then steady state
    ours, theirs = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        await service.check_idle()
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        km.list_kernels()
        theirs.append(time.perf_counter() - started)
    await client.aclose()
    return {"ours": statistics.median(ours), "theirs": statistics.median(theirs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    print(machine())
    print(
        f"{'rentals':>7} {'kernels':>7} {'idle look µs':>13} {'/api/kernels µs':>16} {'ratio':>6}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for i, (n_rentals, n_kernels) in enumerate(SHAPES):
            result = asyncio.run(
                measure(n_rentals, n_kernels, args.rounds, Path(tmp) / f"state-{i}")
            )
            ratio = result["ours"] / result["theirs"]
            print(
                f"{n_rentals:>7} {n_kernels:>7} {result['ours'] * 1e6:>13.1f} "
                f"{result['theirs'] * 1e6:>16.1f} {ratio:>6.2f}"
            )


if __name__ == "__main__":
    main()
