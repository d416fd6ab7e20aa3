"""Benchmark how long a stop takes with a 1 GB save: the save before it beside plain rsync.

Usage: python bench/stop_save.py [--mb 1000] [--rounds 3]   (as root, with openssh-server and
rsync installed)

A stop the product makes first saves the rental's save paths, then sends the stop (one API
request, tens of milliseconds against the vendor's budget, not measured here). So the time a
stop takes is the save's: ``saves.saving.save_paths`` of the pod's ``~/work`` (``--mb``
megabytes: 80 % in eight checkpoints, 20 % in 100 kB files) into a fresh saves folder, over the
host's RemoteManager, the way the Saver runs it (byte cap and deadline on, at their defaults):

* save (cold): the rental's connection opened inside the timing (nothing had used the pod);
* save (warm): the connection already open (telemetry or an earlier sync opened it);
* rsync: ``rsync -a -e 'ssh -F <config>' alias:work/ dst/``, what a careful person would run by
  hand before stopping.

The pod is a real OpenSSH sshd on loopback (bench/remote_pod.py). Every copy is checked byte
count for byte count, deleted, and the dirty pages flushed before the next; the order rotates
per round and the ratio to rsync is taken per round (paired), its median reported.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import machine
from remote_pod import BenchPod, bench_pod
from sync_throughput import make_tree, run, tree_bytes

from gpuoutlet_jupyter.remote import RemoteManager
from gpuoutlet_jupyter.saves.saving import save_paths
from gpuoutlet_jupyter.saves.traits import SaveOptions

TOOLS = ("save (cold)", "save (warm)", "rsync")


async def one_copy(tool: str, pod: BenchPod, warm: RemoteManager, dst: Path) -> float:
    options = SaveOptions()
    started = time.perf_counter()
    if tool == "rsync":
        argv = [
            "rsync",
            "-a",
            "-e",
            " ".join(pod.ssh),
            f"{pod.entry.alias}:{pod.home / 'work'}/",
            f"{dst}/",
        ]
        await asyncio.to_thread(run, argv)
        return time.perf_counter() - started
    manager = warm if tool == "save (warm)" else RemoteManager(pod.control_dir / "cold")
    remote = await manager.rental(pod.target)
    saved = await save_paths(
        remote,
        (str(pod.home / "work"),),  # ~/work: the pod's login folder is not its HOME here
        dst,
        reason="user",
        max_bytes=options.byte_cap,
        timeout=options.time_cap,
    )
    took = time.perf_counter() - started
    if manager is not warm:
        await manager.close()
    if saved.error or not saved.complete:
        raise RuntimeError(f"{tool}: {saved.summary}")
    return took


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="stop-save-bench-") as tmp:
        work = Path(tmp)
        with bench_pod(work / "pod") as pod:
            files, size = make_tree(pod.home / "work", args.mb)
            print(f"# {machine()}")
            print(f"# ~/work on the pod: {files} files, {size / 1e6:.0f} MB; {args.rounds} rounds")
            warm = RemoteManager(pod.control_dir / "warm")
            await (await warm.rental(pod.target)).connection.open()
            results: dict[str, list[float]] = {}
            for rnd in range(-1, args.rounds):  # round -1 warms the page cache, not counted
                order = list(TOOLS[rnd % len(TOOLS) :] + TOOLS[: rnd % len(TOOLS)])
                times: dict[str, float] = {}
                for tool in order:
                    dst = work / f"saved-{tool.split()[0]}-{len(times)}-{rnd}"
                    times[tool] = await one_copy(tool, pod, warm, dst)
                    copied = dst / "work" if tool != "rsync" else dst
                    if tree_bytes(copied) != size:
                        raise RuntimeError(f"{tool} copied {tree_bytes(copied)} of {size} bytes")
                    shutil.rmtree(dst)
                    os.sync()
                if rnd >= 0:
                    for tool, took in times.items():
                        results.setdefault(tool, []).append(took)
                    print(
                        f"# round {rnd + 1}: "
                        + ", ".join(f"{t} {s:.2f} s" for t, s in times.items()),
                        flush=True,
                    )
            await warm.close()
        print()
        print("| tool | median s | MB/s | throughput / rsync | per round |")
        print("|---|---|---|---|---|")
        for tool in TOOLS:
            times = results[tool]
            ratios = [b / x for b, x in zip(results["rsync"], times, strict=True)]
            t = statistics.median(times)
            print(
                f"| {tool} | {t:.2f} | {size / 1e6 / t:.0f} | {statistics.median(ratios):.2f} "
                f"| {' / '.join(f'{r:.2f}' for r in ratios)} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=1000, help="the pod's ~/work in MB (1000)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("rsync") is None:
        sys.exit("rsync is not installed (scripts/setup installs it)")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
