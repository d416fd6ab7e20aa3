"""Benchmark syncing a 500 MB tree: ours beside plain ``rsync -e ssh`` and ``scp -r``, same run.

Usage: python bench/sync_throughput.py [--mb 500] [--rounds 3]   (as root, with openssh-server
and rsync installed)

A real OpenSSH sshd on loopback stands for the pod (bench/remote_pod.py). The tree is
``--mb`` megabytes of random bytes: 80 % in eight large files (checkpoints), 20 % in 100 kB files
spread over 20 folders. Every round uploads it to a fresh folder on the pod with each tool, back
to back, then downloads a copy already on the pod to a fresh local folder with each tool, the
tools in a rotating order; every copy's bytes are checked, the copy deleted and the page cache's
dirty pages flushed (``sync``) before the next. One warm-up round is not counted:

* ours, warm: ``sync_up`` / ``sync_down`` over the rental's shared connection, already open
  (the usual case: telemetry or an earlier sync opened it);
* ours, cold: the same with the connection opened inside the timing;
* rsync: ``rsync -a -e 'ssh -F <config>' src/ alias:dst/`` (one login per run);
* rsync (shared): the same rsync over our shared connection (``-e`` is our ssh argv): it
  separates what the connection saves from what our listing and checking cost;
* scp: ``scp -F <config> -r -q src alias:dst`` (SFTP, one login per run).

Ours does more than the baselines: it lists both ends, applies the ignore rules, plans, and
lists the destination again to say what arrived. Medians per tool and direction; the ratio to
rsync is taken per round (each tool against rsync's run in the same round, since the machine's
load drifts between rounds) and its median reported.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import machine
from remote_pod import BenchPod, bench_pod

from gpuoutlet_jupyter.remote import SharedConnection, sync_down, sync_up

TOOLS = ("ours (warm)", "ours (cold)", "rsync", "rsync (shared)", "scp")


def make_tree(root: Path, megabytes: int) -> tuple[int, int]:
    """Write the tree; returns (files, bytes)."""
    total = megabytes * 1_000_000
    big = total * 8 // 10 // 8
    files = 0
    for i in range(8):
        path = root / "checkpoints" / f"epoch-{i}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as out:
            for _ in range(big // 1_000_000):
                out.write(os.urandom(1_000_000))
            out.write(os.urandom(big % 1_000_000))
        files += 1
    small = 100_000
    for i in range((total - 8 * big) // small):
        path = root / "data" / f"part-{i % 20:02d}" / f"sample-{i:05d}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(small))
        files += 1
    return files, tree_bytes(root)


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def run(argv: list[str]) -> None:
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, capture_output=True)


def run_text(argv: list[str]) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


async def timed(action: Awaitable[object]) -> float:
    started = time.perf_counter()
    await action
    return time.perf_counter() - started


async def transfer(
    tool: str, direction: str, pod: BenchPod, warm: SharedConnection, src: Path, dst: Path
) -> float:
    """One timed copy: up from ``src`` to the pod's ``dst``, or down from ``src`` on the pod."""
    alias = pod.entry.alias
    if tool.startswith("ours"):
        conn = warm
        if tool == "ours (cold)":
            conn = SharedConnection(pod.target, control_dir=pod.control_dir / "cold")
        if direction == "up":
            took = await timed(sync_up(conn, src, str(dst)))
        else:
            took = await timed(sync_down(conn, dst, str(src)))
        if conn is not warm:
            await conn.close()
        return took
    if tool.startswith("rsync"):
        rsh = warm.rsh() if tool == "rsync (shared)" else " ".join(pod.ssh)
        argv = ["rsync", "-a", "-e", rsh]
        pair = (
            [f"{src}/", f"{alias}:{dst}/"] if direction == "up" else [f"{alias}:{src}/", f"{dst}/"]
        )
    else:
        argv = ["scp", "-F", str(pod.entry.config_file), "-r", "-q"]
        pair = [str(src), f"{alias}:{dst}"] if direction == "up" else [f"{alias}:{src}", str(dst)]
    return await timed(asyncio.to_thread(run, [*argv, *pair]))


async def one_round(
    pod: BenchPod,
    warm: SharedConnection,
    src: Path,
    on_pod: Path,
    work: Path,
    order: list[str],
    rnd: int,
) -> dict[tuple[str, str], float]:
    """Each direction with every tool back to back (the compared runs stay close in time)."""
    times: dict[tuple[str, str], float] = {}
    expected = tree_bytes(src)
    for direction in ("up", "down"):
        for tool in order:
            tag = tool.split()[0] + ("-" + tool.split()[1].strip("()") if " " in tool else "")
            if direction == "up":  # a fresh folder on the pod (which is this machine)
                source, dst = src, pod.home / "up" / f"{tag}-{rnd}"
            else:  # from the tree already on the pod to a fresh local folder
                source, dst = on_pod, work / f"down-{tag}-{rnd}"
            times[(tool, direction)] = await transfer(tool, direction, pod, warm, source, dst)
            got = tree_bytes(dst)
            if got != expected:
                raise RuntimeError(f"{tool} copied {got} bytes to {dst}, expected {expected}")
            shutil.rmtree(dst)
            os.sync()  # the next tool does not pay for this one's writeback
    return times


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="sync-bench-") as tmp:
        work = Path(tmp)
        src = work / "tree"
        files, size = make_tree(src, args.mb)
        print(f"# {machine()}")
        version = (await asyncio.to_thread(run_text, ["rsync", "--version"])).strip()
        print(f"# tree: {files} files, {size / 1e6:.0f} MB; {args.rounds} rounds")
        print(f"# {version.splitlines()[0]}", flush=True)
        with bench_pod(work / "pod") as pod:
            warm = SharedConnection(pod.target, control_dir=pod.control_dir / "warm")
            await warm.open()
            on_pod = pod.home / "tree"  # the downloads' source, put there once
            await asyncio.to_thread(run, ["cp", "-a", str(src), str(on_pod)])
            results: dict[tuple[str, str], list[float]] = {}
            os.sync()
            await one_round(pod, warm, src, on_pod, work, list(TOOLS), -1)  # warm-up, not counted
            for rnd in range(args.rounds):
                order = list(TOOLS[rnd % len(TOOLS) :] + TOOLS[: rnd % len(TOOLS)])
                times = await one_round(pod, warm, src, on_pod, work, order, rnd)
                for key, value in times.items():
                    results.setdefault(key, []).append(value)
                print(
                    f"# round {rnd + 1}: "
                    + ", ".join(f"{tool} {way} {t:.2f} s" for (tool, way), t in times.items()),
                    flush=True,
                )
            await warm.close()
        print()
        print("| direction | tool | median s | MB/s | throughput / rsync | per round |")
        print("|---|---|---|---|---|---|")
        for direction in ("up", "down"):
            base = results[("rsync", direction)]
            for tool in TOOLS:
                times = results[(tool, direction)]
                t = statistics.median(times)
                # Paired with rsync's run of the same round: the load drifts between rounds.
                ratios = [b / x for b, x in zip(base, times, strict=True)]
                print(
                    f"| {direction} | {tool} | {t:.2f} | {size / 1e6 / t:.0f} "
                    f"| {statistics.median(ratios):.2f} | {' / '.join(f'{r:.2f}' for r in ratios)} |"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=500, help="tree size in MB (default 500)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if shutil.which("rsync") is None:
        sys.exit("rsync is not installed (scripts/setup installs it)")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
