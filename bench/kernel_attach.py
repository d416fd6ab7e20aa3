"""Benchmark attaching to a remote kernel: gpuoutlet-ssh versus jupyter_client's own ssh tunnels.

Usage: python bench/kernel_attach.py [--runs N]   (as root, with openssh-server installed)

Starts a real OpenSSH sshd on a free loopback port (tests/helpers/sshd.py) and measures, per run:

* attach: from nothing running on the machine to the first execute_reply of ``1+1``.
  gpuoutlet-ssh: ``KernelManager.start_kernel()`` with the rental's kernelspec (one ssh).
  jupyter_client: one ``ssh <alias> python -m ipykernel_launcher -f <file>`` to start the kernel,
  then ``tunnel_to_kernel()`` (a passwordless check plus one ``ssh -f`` per port). The kernel's
  connection file is read straight from the machine's filesystem (it is this machine), which
  spares the baseline the copy a real remote needs.
* interrupt: from the interrupt request to the KeyboardInterrupt execute_reply of a
  ``time.sleep``. gpuoutlet-ssh: signal mode (SIGINT through the wrapper) and message mode;
  jupyter_client: an interrupt_request over the tunnelled control channel, and SIGINT sent by
  a new ``ssh <alias> kill -INT <pid>`` (what a user without a wrapper would do). Each kernel
  gets one warm-up interrupt first (its first traceback imports a lot), then three measured.

jupyter_client's tunnels run ``ssh`` from PATH under a pty (pexpect) and know no ``-F``: a shim
``ssh`` on PATH adds ``-F <config>`` and ignores SIGHUP (else the backgrounded tunnels die of the
pty's hangup before they detach). Medians are printed side by side, with ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
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

from helpers.sshd import SSHD, process_alive, process_cmdlines, start_sshd  # noqa: E402
from jupyter_client import BlockingKernelClient  # noqa: E402
from jupyter_client.connect import tunnel_to_kernel  # noqa: E402
from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402
from jupyter_client.manager import AsyncKernelManager  # noqa: E402

from gpuoutlet_jupyter.api import Rental  # noqa: E402
from gpuoutlet_jupyter.kernel.specs import KERNEL_FILE, KernelSpecWriter  # noqa: E402
from gpuoutlet_jupyter.sandbox.testing import make_keypair  # noqa: E402
from gpuoutlet_jupyter.ssh import SSHConfigWriter, SSHEntry  # noqa: E402

TIMEOUT = 30.0
INTERRUPTS = 3  # measured per kernel, after one warm-up interrupt
SLEEP_CELL = "import time\nprint('sleeping', flush=True)\ntime.sleep(300)"
# A SIGINT that lands while ipykernel still flushes the cell's print is lost (local kernels
# too): interrupts are sent this long after the print arrived, when the cell is in time.sleep.
SETTLE = 0.05
# Executed with stop_on_error=False: else ipykernel may abort the next request, which races
# with its abort window after the KeyboardInterrupt reply (for any kernel, local ones too).


def _median_ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:7.0f} ms"


def _is_output(msg: dict[str, Any], msg_id: str, text: str) -> bool:
    # The printed line, not the echo of the code (execute_input): the sleep has begun.
    return (
        msg["parent_header"].get("msg_id") == msg_id
        and msg["msg_type"] == "stream"
        and text in msg["content"]["text"]
    )


# gpuoutlet-ssh.


async def _ours_attach(ksm: KernelSpecManager, name: str) -> tuple[float, AsyncKernelManager, Any]:
    start = time.perf_counter()
    km = AsyncKernelManager(kernel_name=name, kernel_spec_manager=ksm)
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    reply = await kc.execute("1+1", reply=True, timeout=TIMEOUT)
    elapsed = time.perf_counter() - start
    assert reply["content"]["status"] == "ok", reply
    return elapsed, km, kc


async def _await_output(kc: Any, msg_id: str, text: str) -> None:
    while True:
        msg = await kc.get_iopub_msg(timeout=TIMEOUT)
        if _is_output(msg, msg_id, text):
            return


async def _await_reply(kc: Any, msg_id: str) -> dict[str, Any]:
    while True:
        reply: dict[str, Any] = await kc.get_shell_msg(timeout=TIMEOUT)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply


async def _ours_interrupt(km: AsyncKernelManager, kc: Any) -> float:
    msg_id = kc.execute(SLEEP_CELL, stop_on_error=False)
    await _await_output(kc, msg_id, "sleeping")
    await asyncio.sleep(SETTLE)
    start = time.perf_counter()
    await km.interrupt_kernel()
    reply = await _await_reply(kc, msg_id)
    elapsed = time.perf_counter() - start
    assert reply["content"].get("ename") == "KeyboardInterrupt", reply["content"]
    return elapsed


async def run_ours(
    ksm: KernelSpecManager, names: dict[str, str], runs: int
) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {
        "attach": [],
        "interrupt signal": [],
        "interrupt message": [],
    }
    for mode, name in names.items():
        for _ in range(runs):
            attach, km, kc = await _ours_attach(ksm, name)
            if mode == "signal":
                results["attach"].append(attach)
            await _ours_interrupt(km, kc)  # warm-up: the first traceback imports a lot
            for _ in range(INTERRUPTS):
                results[f"interrupt {mode}"].append(await _ours_interrupt(km, kc))
            kc.stop_channels()
            await km.shutdown_kernel(now=True)
    return results


# jupyter_client's tunnels.


def _shim_ssh(folder: Path, config: Path) -> Path:
    """An ``ssh`` for PATH that knows the managed config and survives the pty's hangup."""
    real = shutil.which("ssh")
    if real is None:
        raise SystemExit("the OpenSSH client is not installed")
    shim = folder / "ssh"
    shim.write_text(f"#!/bin/sh\ntrap '' HUP\nexec {real} -F {config} \"$@\"\n")
    shim.chmod(0o755)
    return folder


def _read_when_written(path: Path) -> dict[str, Any]:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError, ValueError):
            info: dict[str, Any] = json.loads(path.read_text())
            if info.get("hb_port"):
                return info
        time.sleep(0.005)
    raise RuntimeError(f"the baseline kernel did not write {path}")


def _await_reply_sync(kc: BlockingKernelClient, msg_id: str) -> dict[str, Any]:
    while True:
        reply: dict[str, Any] = kc.get_shell_msg(timeout=TIMEOUT)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply


def _await_output_sync(kc: BlockingKernelClient, msg_id: str, text: str) -> None:
    while True:
        msg = kc.get_iopub_msg(timeout=TIMEOUT)
        if _is_output(msg, msg_id, text):
            return


class Baseline:
    """One remote kernel started over ssh and reached through tunnel_to_kernel()."""

    def __init__(self, entry: SSHEntry, workdir: Path) -> None:
        self.entry = entry
        self.workdir = workdir
        self.kernel_ssh: subprocess.Popen[bytes] | None = None
        self.kc: BlockingKernelClient | None = None
        self.local_ports: tuple[int, ...] = ()
        self.connection_file = ""

    def attach(self) -> float:
        start = time.perf_counter()
        # The kernel picks its ports and writes the file (reading it here spares the baseline
        # the `ssh cat` a real remote needs).
        path = self.workdir / f"kernel-{time.monotonic_ns()}.json"
        self.connection_file = str(path)
        self.kernel_ssh = subprocess.Popen(
            [
                "ssh",
                "-F",
                str(self.entry.config_file),
                "-T",
                "-o",
                "BatchMode=yes",
                self.entry.alias,
                f"exec {sys.executable} -m ipykernel_launcher -f {self.connection_file}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        info = _read_when_written(path)
        self.local_ports = tunnel_to_kernel(self.connection_file, self.entry.alias)
        kc = BlockingKernelClient()
        kc.load_connection_info(info)
        kc.shell_port, kc.iopub_port, kc.stdin_port, kc.hb_port, kc.control_port = self.local_ports
        kc.start_channels()
        self.kc = kc
        reply = kc.execute("1+1", reply=True, timeout=TIMEOUT)
        elapsed = time.perf_counter() - start
        assert reply["content"]["status"] == "ok", reply
        return elapsed

    def interrupt(self, how: str) -> float:
        kc = self.kc
        assert kc is not None
        msg_id = kc.execute(SLEEP_CELL, stop_on_error=False)
        _await_output_sync(kc, msg_id, "sleeping")
        time.sleep(SETTLE)
        start = time.perf_counter()
        if how == "message":
            kc.control_channel.send(kc.session.msg("interrupt_request", {}))
        else:
            pid = self._kernel_pid()
            subprocess.run(
                ["ssh", "-F", str(self.entry.config_file), self.entry.alias, f"kill -INT {pid}"],
                check=True,
                stdin=subprocess.DEVNULL,
            )
        reply = _await_reply_sync(kc, msg_id)
        elapsed = time.perf_counter() - start
        assert reply["content"].get("ename") == "KeyboardInterrupt", reply["content"]
        return elapsed

    def _kernel_pid(self) -> int:
        for pid, cmdline in process_cmdlines().items():
            ours = self.connection_file.encode() in cmdline and b"ipykernel_launcher" in cmdline
            if ours and b"exec " not in cmdline:  # not the login shell's -c line
                return pid
        raise RuntimeError("the baseline kernel is not running")

    def close(self) -> None:
        """Stop what this run started: the kernel, its ssh, the five tunnel ssh processes."""
        kernel_pid = None
        with contextlib.suppress(RuntimeError):
            kernel_pid = self._kernel_pid()
        if self.kc is not None:
            with contextlib.suppress(Exception):
                self.kc.shutdown()
            self.kc.stop_channels()
        if self.kernel_ssh is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.kernel_ssh.wait(10)
            if self.kernel_ssh.poll() is None:
                self.kernel_ssh.kill()
                self.kernel_ssh.wait()
        if kernel_pid is not None and process_alive(kernel_pid):
            os.kill(kernel_pid, signal.SIGKILL)
        # The tunnels were forked into the background by ssh -f: find ours by their -L specs.
        specs = [f"127.0.0.1:{port}:".encode() for port in self.local_ports]
        for pid, cmdline in process_cmdlines().items():
            is_ssh = cmdline.startswith(b"ssh\0") or b"/ssh\0" in cmdline
            if is_ssh and any(spec in cmdline for spec in specs):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)


def run_baseline(entry: SSHEntry, workdir: Path, runs: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {
        "attach": [],
        "interrupt signal": [],
        "interrupt message": [],
    }
    for _ in range(runs):
        for how in ("message", "signal"):
            baseline = Baseline(entry, workdir)
            try:
                attach = baseline.attach()
                if how == "message":
                    results["attach"].append(attach)
                baseline.interrupt(how)  # warm-up, as for gpuoutlet-ssh
                for _ in range(INTERRUPTS):
                    results[f"interrupt {how}"].append(baseline.interrupt(how))
            finally:
                baseline.close()
    return results


# Setup and report.


def _variant(specs: KernelSpecWriter, name: str, new_name: str, **changes: Any) -> str:
    spec = json.loads((specs.kernels_dir / name / KERNEL_FILE).read_text())
    spec.update(changes)
    (specs.kernels_dir / new_name).mkdir(exist_ok=True)
    (specs.kernels_dir / new_name / KERNEL_FILE).write_text(json.dumps(spec))
    return new_name


def _report(ours: dict[str, list[float]], theirs: dict[str, list[float]], runs: int) -> None:
    print(
        f"\nmedian of {runs} runs          gpuoutlet-ssh   jupyter_client tunnels   ratio (theirs/ours)"
    )
    for metric, label in (
        ("attach", "attach to first reply"),
        ("interrupt signal", "interrupt, SIGINT"),
        ("interrupt message", "interrupt, message"),
    ):
        a, b = statistics.median(ours[metric]), statistics.median(theirs[metric])
        print(
            f"{label:28} {_median_ms(ours[metric])}   {_median_ms(theirs[metric])}           {b / a:5.1f}x"
        )
    print("\nall samples (s):")
    for name, data in (("gpuoutlet-ssh", ours), ("jupyter_client", theirs)):
        for metric, values in data.items():
            print(f"  {name:15} {metric:18} " + " ".join(f"{v:.3f}" for v in values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement (default 5)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="kernel-attach-") as tmp:
        base = Path(tmp)
        keys = make_keypair(base / "keys")
        server: SSHD = start_sshd(base / "sshd", keys.public_key)
        try:
            ssh = SSHConfigWriter(base / "ssh", identity_file=keys.private_key)
            entry = ssh.write("r-bench", "127.0.0.1", server.port)
            rental = Rental.model_validate(
                {
                    "id": "r-bench",
                    "status": "running",
                    "host": "127.0.0.1",
                    "port": server.port,
                    "pricePerHourCents": 65,
                    "startedAt": "2026-01-01T00:00:00Z",
                    "familyId": "rtx-4090",
                    "gpuCount": 1,
                }
            )
            specs = KernelSpecWriter(
                base / "kernels", python=sys.executable, state_dir=base / "state"
            )
            name = specs.install(rental, entry)
            names = {
                "signal": name,
                "message": _variant(specs, name, "gpuoutlet-msg", interrupt_mode="message"),
            }
            ksm = KernelSpecManager(kernel_dirs=[str(specs.kernels_dir)])
            # The first login adds the host key to the rental's known_hosts: not part of a run.
            subprocess.run(
                [
                    "ssh",
                    "-F",
                    str(entry.config_file),
                    "-o",
                    "BatchMode=yes",
                    "-o",
                    "LogLevel=ERROR",
                    entry.alias,
                    "true",
                ],
                check=True,
                stdin=subprocess.DEVNULL,
            )
            print(f"sshd {server.host}:{server.port}, OpenSSH client: ", end="", flush=True)
            subprocess.run(["ssh", "-V"], check=False)
            ours = asyncio.run(run_ours(ksm, names, args.runs))

            (base / "bin").mkdir()
            shim_dir = _shim_ssh(base / "bin", entry.config_file)
            os.environ["PATH"] = f"{shim_dir}{os.pathsep}{os.environ['PATH']}"
            theirs = run_baseline(entry, base, args.runs)
        finally:
            server.stop()
    _report(ours, theirs, args.runs)


if __name__ == "__main__":
    main()
