"""Benchmark one GPU telemetry sample: over the shared connection, beside a fresh ssh each time.

Usage: python bench/telemetry_sample.py [--samples 40]   (as root, with openssh-server)

A real OpenSSH sshd on loopback stands for the pod (bench/remote_pod.py), with a stand-in
``nvidia-smi`` on its PATH that prints two GPUs' CSV lines (the same bytes a real one prints;
the benchmark measures the transport, not the driver). Interleaved, per sample:

* ours: ``telemetry.sample(connection)``: one multiplexed session on the rental's open
  connection, parsed into ``GPUSample``s;
* fresh ssh: ``ssh -F <config> <alias> nvidia-smi --query-gpu=...``, a new login each time
  (what a poller without a shared connection does), parsed the same way.

Medians and p90s of wall time, and the CPU the local side spends (ssh processes included).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import machine, percentile
from remote_pod import bench_pod

from gpuoutlet_jupyter.remote import SharedConnection, parse_csv, sample
from gpuoutlet_jupyter.remote.telemetry import NVIDIA_SMI_COMMAND

FAKE_SMI = """#!/bin/sh
cat <<'EOF'
0, NVIDIA GeForce RTX 4090, 37, 1234, 24564, 45, 120.53
1, NVIDIA GeForce RTX 4090, 100, 24000, 24564, 81, 449.10
EOF
"""


def cpu_seconds() -> float:
    """CPU of this process and its reaped children (the ssh clients), user + system."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


async def fresh_ssh_sample(ssh: list[str], alias: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        *ssh,
        "-o",
        "BatchMode=yes",
        "-o",
        "ControlPath=none",
        alias,
        NVIDIA_SMI_COMMAND,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"ssh failed: {err.decode()}")
    assert len(parse_csv(out.decode())) == 2


async def main_async(samples: int) -> None:
    with tempfile.TemporaryDirectory(prefix="telemetry-bench-") as tmp:
        work = Path(tmp)
        fake = work / "fakebin"
        fake.mkdir()
        (fake / "nvidia-smi").write_text(FAKE_SMI)
        (fake / "nvidia-smi").chmod(0o755)
        with bench_pod(work / "pod", path_prefix=str(fake)) as pod:
            conn = SharedConnection(pod.target, control_dir=pod.control_dir)
            opened = time.perf_counter()
            await conn.open()
            open_cost = time.perf_counter() - opened
            await sample(conn)  # warm both paths once
            await fresh_ssh_sample(pod.ssh, pod.entry.alias)
            wall: dict[str, list[float]] = {"ours": [], "fresh": []}
            cpu: dict[str, list[float]] = {"ours": [], "fresh": []}
            for i in range(samples):
                for kind in ("ours", "fresh") if i % 2 == 0 else ("fresh", "ours"):
                    c0, t0 = cpu_seconds(), time.perf_counter()
                    if kind == "ours":
                        snapshot = await sample(conn)
                        assert len(snapshot.gpus) == 2
                    else:
                        await fresh_ssh_sample(pod.ssh, pod.entry.alias)
                    wall[kind].append(time.perf_counter() - t0)
                    cpu[kind].append(cpu_seconds() - c0)
            logins = pod.sshd.log().count("Accepted publickey")
            await conn.close()
    print(f"# {machine()}")
    print(
        f"# {samples} samples each, interleaved; opening the shared connection took "
        f"{open_cost * 1e3:.0f} ms once; sshd logins: {logins} "
        f"(1 shared + {samples + 1} fresh)"
    )
    print()
    print("| path | wall p50 | wall p90 | local CPU p50 | wall / ours |")
    print("|---|---|---|---|---|")
    base = statistics.median(wall["ours"])
    for kind, label in (("ours", "shared connection"), ("fresh", "fresh `ssh host nvidia-smi`")):
        print(
            f"| {label} | {statistics.median(wall[kind]) * 1e3:.1f} ms "
            f"| {percentile(wall[kind], 90) * 1e3:.1f} ms "
            f"| {statistics.median(cpu[kind]) * 1e3:.1f} ms "
            f"| {statistics.median(wall[kind]) / base:.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=40)
    asyncio.run(main_async(parser.parse_args().samples))


if __name__ == "__main__":
    main()
