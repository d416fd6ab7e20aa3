"""Shared fixtures: the sandbox API as a subprocess, fresh accounts on it, an SSH key pair."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gpuoutlet_jupyter.sandbox.testing import (
    SandboxAccount,
    SandboxProcess,
    SSHKeypair,
    make_keypair,
    start_sandbox,
)
from gpuoutlet_jupyter.server.env import ENV_SERVER_TOKEN, ENV_SERVER_URL

# pytest-jupyter's fixtures (jp_serverapp, jp_fetch, ...) and the remote layer's test pods
# (gpu_pod, bare_pod, control_dir) for every test module.
pytest_plugins = ["pytest_jupyter.jupyter_server", "helpers.remote_pods"]


@pytest.fixture(scope="session")
def ssh_keypair(tmp_path_factory: pytest.TempPathFactory) -> SSHKeypair:
    """One ed25519 key pair for the session (`private_key`, `public_key_path`, `public_key`
    text); the shared sandbox's default account accepts it."""
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen is not installed")
    return make_keypair(tmp_path_factory.mktemp("ssh-keypair"))


@pytest.fixture(scope="module")
def sandbox(
    tmp_path_factory: pytest.TempPathFactory, ssh_keypair: SSHKeypair
) -> Iterator[SandboxProcess]:
    """One sandbox process per test module, fast enough for tests: pods boot ~1 s after a
    create, the worker polls every 0.2 s. Tests take fresh accounts (`create_account`) and
    reset any faults they set (`set_faults({})`)."""
    with _test_sandbox(tmp_path_factory, ssh_keypair, time_scale=1.0) as process:
        yield process


@pytest.fixture(scope="module")
def fast_sandbox(
    tmp_path_factory: pytest.TempPathFactory, ssh_keypair: SSHKeypair
) -> Iterator[SandboxProcess]:
    """A sandbox whose clock runs 60× fast (an hour of billing in a minute), for the modules
    that time things in fractions of a minute: they name it their `sandbox`."""
    with _test_sandbox(tmp_path_factory, ssh_keypair, time_scale=60.0) as process:
        yield process


def _test_sandbox(
    tmp_path_factory: pytest.TempPathFactory, ssh_keypair: SSHKeypair, *, time_scale: float
) -> SandboxProcess:
    """A sandbox started in a fresh folder, its default account's pods accepting the key."""
    return start_sandbox(
        tmp_path_factory.mktemp("sandbox"),
        balance_cents=100_00,
        time_scale=time_scale,
        provision_seconds=(0.5, 1.5),
        worker_interval=0.2,
        authorized_key=ssh_keypair.public_key_path,
    )


@pytest.fixture(autouse=True)
def _no_unasked_429(request: pytest.FixtureRequest) -> Iterator[None]:
    """No normal flow gets a 429 from the sandbox: the sandbox a test uses must have refused
    none of its requests by the end of it (its ``refusedCount``, the vendor's real limits),
    unless the test is marked ``rate_limited`` (it provokes them on purpose). The faults'
    injected 429s (``rateLimitBurst``) are asked for, and not counted there."""
    names = [n for n in ("sandbox", "fast_sandbox") if n in request.fixturenames]
    if not names or request.node.get_closest_marker("rate_limited") is not None:
        yield
        return
    sandboxes = {id(s): s for s in (request.getfixturevalue(n) for n in names)}.values()
    before = [s.rate_limits()["refusedCount"] for s in sandboxes]
    yield
    for process, was in zip(sandboxes, before, strict=True):
        now = process.rate_limits()["refusedCount"]
        # A PUT of the limits starts the count over.
        provoked = now - was if now >= was else now
        if provoked:
            pytest.fail(
                f"{provoked} request(s) of this test got a 429 from the sandbox (over the "
                "vendor's limits: 100 a minute, 1,000 an hour per session). A normal flow must "
                "stay within them; mark the test `rate_limited` if it provokes them on purpose."
            )


@pytest.fixture
def account(sandbox: SandboxProcess, ssh_keypair: SSHKeypair) -> Iterator[SandboxAccount]:
    """$100 on a fresh account of the module's sandbox, whose pods accept `ssh_keypair`; the
    sandbox's faults are reset afterwards."""
    yield sandbox.create_account(balance_cents=100_00, authorized_keys=ssh_keypair.public_key)
    sandbox.set_faults({})


@pytest.fixture
def server(jp_serverapp: Any, http_server: Any) -> Any:
    """pytest-jupyter's ServerApp, listening (`http_server` binds its port)."""
    return jp_serverapp


@dataclass
class SandboxUser:
    """A fresh funded account on the shared sandbox, with an httpx client for /v1."""

    account: SandboxAccount
    http: httpx.Client

    @property
    def account_id(self) -> str:
        return self.account.account_id

    @property
    def sid(self) -> str:
        return self.account.sid


@pytest.fixture
def sandbox_user(sandbox: SandboxProcess, ssh_keypair: SSHKeypair) -> Iterator[SandboxUser]:
    """$100 on a new account whose pods accept `ssh_keypair`."""
    account = sandbox.create_account(balance_cents=100_00, authorized_keys=ssh_keypair.public_key)
    with sandbox.client(account.sid) as http:
        yield SandboxUser(account, http)


@pytest.fixture
def no_gpuoutlet_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No GPUOUTLET_* variables and no credentials file: only what a test sets itself counts."""
    for name in ("GPUOUTLET_SID", "GPUOUTLET_API_URL", ENV_SERVER_URL, ENV_SERVER_TOKEN):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GPUOUTLET_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
