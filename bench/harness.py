"""Shared set-up for the benchmarks: a sandbox and a real Jupyter server with the extension."""

from __future__ import annotations

import os
import platform
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from gpuoutlet_jupyter.sandbox.testing import SandboxProcess, make_keypair, start_sandbox

API = "gpuoutlet/api/"


def free_port() -> int:
    """A port the OS says is free now (bind 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def machine() -> str:
    """One line describing where the numbers came from."""
    return f"{platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()} · {platform.platform()}"


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100), nearest-rank."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary_ms(values: Sequence[float]) -> str:
    """Median and p99 of seconds, printed in ms."""
    return (
        f"p50 {statistics.median(values) * 1e3:7.2f} ms  p99 {percentile(values, 99) * 1e3:7.2f} ms"
    )


@dataclass
class JupyterServer:
    """A jupyter server subprocess with the extension enabled; REST helpers with its token."""

    url: str
    token: str
    proc: subprocess.Popen[bytes]
    ssh_dir: Path

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"token {self.token}"}, **kwargs
        )

    def async_client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.url, headers={"Authorization": f"token {self.token}"}, **kwargs
        )


@contextmanager
def jupyter_server(
    workdir: Path,
    sandbox: SandboxProcess,
    *,
    sid: str,
    identity: Path,
    traits: dict[str, Any],
    extra_args: Sequence[str] = (),
) -> Iterator[JupyterServer]:
    """Start `jupyter server` on a free port pointed at `sandbox`; stop it by pid."""
    port = free_port()
    token = secrets.token_hex(16)
    ssh_dir = workdir / "ssh"
    args = [
        sys.executable,
        "-m",
        "jupyter_server",
        f"--ServerApp.port={port}",
        "--ServerApp.ip=127.0.0.1",
        f"--IdentityProvider.token={token}",
        "--ServerApp.open_browser=False",
        "--ServerApp.allow_root=True",
        f"--ServerApp.root_dir={workdir}",
        "--ServerApp.jpserver_extensions=gpuoutlet_jupyter=True",
        f"--GpuOutletApp.ssh_dir={ssh_dir}",
        f"--GpuOutletApp.state_dir={workdir / 'state'}",
        f"--GpuOutletApp.identity_file={identity}",
        *(f"--GpuOutletApp.{k}={v}" for k, v in traits.items()),
        *extra_args,
    ]
    env = {
        **os.environ,
        "GPUOUTLET_API_URL": sandbox.url,
        "GPUOUTLET_SID": sid,
        "JUPYTER_RUNTIME_DIR": str(workdir / "runtime"),
    }
    log = (workdir / "jupyter.log").open("wb")
    proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    server = JupyterServer(url=url, token=token, proc=proc, ssh_dir=ssh_dir)
    try:
        with server.client(timeout=5) as c:
            for _ in range(300):
                if proc.poll() is not None:
                    raise RuntimeError(f"jupyter server exited; see {workdir / 'jupyter.log'}")
                try:
                    status = c.get(API + "status").json()
                    if status.get("state") == "running":
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            else:
                raise RuntimeError("jupyter server did not become ready in 30 s")
        yield server
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


@contextmanager
def sandbox_and_key(
    workdir: Path,
    *,
    provision_seconds: tuple[float, float],
    worker_interval: float = 2.0,
    extra_args: Sequence[str] = (),
) -> Iterator[tuple[SandboxProcess, Path]]:
    """A sandbox whose default account's pods accept a fresh key; yields (sandbox, key path)."""
    keypair = make_keypair(workdir / "key")
    with start_sandbox(
        workdir / "sandbox",
        balance_cents=1_000_000_00,
        time_scale=1.0,
        provision_seconds=provision_seconds,
        worker_interval=worker_interval,
        authorized_key=keypair.public_key_path,
        extra_args=("--capacity-factor", "50", *extra_args),
    ) as sandbox:
        yield sandbox, keypair.private_key
