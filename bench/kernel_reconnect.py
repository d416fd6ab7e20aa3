"""Benchmark a remote kernel's way back: a dropped connection and a Jupyter restart, beside an attach.

Usage: python bench/kernel_reconnect.py [--runs N]   (as root, with openssh-server installed)

Against a real OpenSSH sshd on a free loopback port (tests/helpers/sshd.py), per run and in this order:

* fresh attach (the baseline): ``KernelManager.start_kernel()`` with the rental's kernelspec,
  then the first execute_reply of ``1+1``: a new keeper and kernel on the machine.
* reconnect: kill -9 the kernel's local ssh, send ``1+1`` at once (it waits in the client's
  queue), and time until its reply: the provisioner notices the ssh is gone, starts a new one
  through the same local ports, reattaches to the keeper and the kernel (already running).
* stopped ssh: SIGSTOP the ssh (a laptop that sleeps), send ``1+1`` at once (it is written into
  the stopped ssh and lost with it: the provisioner sends it again on the new connection) and
  time until its reply. With the default keep-alives a silent connection counts as dead after
  30 s; this run uses 1 s x (2 + 1) = 3 s, so the number is that detection time plus the
  reconnect.
* adopt: the kernel left detached as a stopping Jupyter leaves it (``detach_all`` then
  ``shutdown_kernel``), then a new kernel manager starts the kernelspec: it adopts the kernel,
  and the time runs to the first reply of ``1+1``.

Medians are printed side by side, with ratios to the fresh attach of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers.sshd import SSHD, start_sshd  # noqa: E402
from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402
from jupyter_client.manager import AsyncKernelManager  # noqa: E402

from gpuoutlet_jupyter.api import Rental  # noqa: E402
from gpuoutlet_jupyter.kernel.link import end_detached_kernel  # noqa: E402
from gpuoutlet_jupyter.kernel.provisioner import detach_all  # noqa: E402
from gpuoutlet_jupyter.kernel.records import KernelRecords  # noqa: E402
from gpuoutlet_jupyter.kernel.specs import KernelSpecWriter  # noqa: E402
from gpuoutlet_jupyter.sandbox.testing import make_keypair  # noqa: E402
from gpuoutlet_jupyter.ssh import SSHConfigWriter  # noqa: E402

TIMEOUT = 60.0
CONFIG = {"keepalive_interval": 1, "keepalive_count_max": 2, "heartbeat_interval": 0.5}
METRICS = (
    ("attach", "fresh attach → first reply"),
    ("reconnect", "kill -9 ssh → first reply"),
    ("stopped", "SIGSTOP ssh → first reply"),
    ("adopt", "Jupyter restart → first reply"),
)


async def _reply(kc: Any) -> None:
    reply = await kc.execute("1+1", reply=True, timeout=TIMEOUT)
    assert reply["content"]["status"] == "ok", reply


async def _start(ksm: KernelSpecManager, name: str) -> tuple[AsyncKernelManager, Any]:
    km = AsyncKernelManager(kernel_name=name, kernel_spec_manager=ksm)
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    await _reply(kc)
    return km, kc


async def _one_run(ksm: KernelSpecManager, name: str) -> dict[str, float]:
    took: dict[str, float] = {}
    start = time.perf_counter()
    km, kc = await _start(ksm, name)
    took["attach"] = time.perf_counter() - start
    try:
        return await _measure(ksm, name, km, kc, took)
    except BaseException:
        kc.stop_channels()
        await km.shutdown_kernel(now=True)  # ends the kernel on the machine: nothing left
        raise


async def _measure(
    ksm: KernelSpecManager, name: str, km: AsyncKernelManager, kc: Any, took: dict[str, float]
) -> dict[str, float]:
    prov = km.provisioner
    pid = prov.remote_pid

    start = time.perf_counter()
    os.kill(prov.ssh_pid, signal.SIGKILL)
    await _reply(kc)
    took["reconnect"] = time.perf_counter() - start

    stopped = prov.ssh_pid
    start = time.perf_counter()
    os.kill(stopped, signal.SIGSTOP)
    try:
        await _reply(kc)
    finally:
        if prov.ssh_pid == stopped:
            os.kill(stopped, signal.SIGCONT)
    took["stopped"] = time.perf_counter() - start

    kc.stop_channels()
    assert await detach_all() == 1
    await km.shutdown_kernel()
    start = time.perf_counter()
    km, kc = await _start(ksm, name)
    took["adopt"] = time.perf_counter() - start
    kc.stop_channels()
    adopted = km.provisioner.remote_pid == pid
    await km.shutdown_kernel(now=True)
    assert adopted, "not adopted"
    return took


async def run(ksm: KernelSpecManager, name: str, runs: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {metric: [] for metric, _ in METRICS}
    for _ in range(runs):
        for metric, value in (await _one_run(ksm, name)).items():
            results[metric].append(value)
    return results


def _report(results: dict[str, list[float]], runs: int) -> None:
    attach = statistics.median(results["attach"])
    print(f"\nmedian of {runs} runs                  time     / fresh attach")
    for metric, label in METRICS:
        value = statistics.median(results[metric])
        print(f"{label:32} {value * 1000:7.0f} ms   {value / attach:5.2f}")
    print("\nall samples (s):")
    for metric, values in results.items():
        print(f"  {metric:10} " + " ".join(f"{v:.3f}" for v in values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs (default 5)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="kernel-reconnect-") as tmp:
        base = Path(tmp)
        keys = make_keypair(base / "keys")
        server: SSHD = start_sshd(base / "sshd", keys.public_key)
        try:
            entry = SSHConfigWriter(base / "ssh", identity_file=keys.private_key).write(
                "r-bench", "127.0.0.1", server.port
            )
            rental = Rental.model_validate(
                {
                    "id": "r-bench",
                    "status": "running",
                    "host": "127.0.0.1",
                    "port": server.port,
                    "pricePerHourCents": 65,
                    "startedAt": "2026-01-01T00:00:00Z",
                }
            )
            specs = KernelSpecWriter(
                base / "kernels",
                python=sys.executable,
                provisioner_config=CONFIG,
                state_dir=base / "state",
            )
            name = specs.install(rental, entry)
            ksm = KernelSpecManager(kernel_dirs=[str(specs.kernels_dir)])
            # The first login adds the host key to the rental's known_hosts: not part of a run.
            subprocess.run(
                ["ssh", "-F", str(entry.config_file), "-o", "BatchMode=yes", "-o",
                 "LogLevel=ERROR", entry.alias, "true"],
                check=True,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
            print(f"sshd {server.host}:{server.port}, OpenSSH client: ", end="", flush=True)
            subprocess.run(["ssh", "-V"], check=False)
            results = asyncio.run(run(ksm, name, args.runs))
        finally:
            # Whatever a failed run left detached on the machine is ended: nothing is left.
            records = KernelRecords(base / "state")
            for record in records.all():
                asyncio.run(end_detached_kernel(record, records=records))
            server.stop()
    _report(results, args.runs)


if __name__ == "__main__":
    main()
