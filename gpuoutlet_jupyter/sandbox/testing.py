"""Start the sandbox as a subprocess for tests and benchmarks, with a client for its controls."""

from __future__ import annotations

import json
import os
import selectors
import signal
import site
import subprocess
import sys
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

import gpuoutlet_jupyter

STARTUP_TIMEOUT = 30.0
_HTTP_TIMEOUT = 30.0


class SandboxStartError(RuntimeError):
    """The sandbox process did not print its JSON line in time (its log tail is included)."""


@dataclass(frozen=True)
class SandboxAccount:
    account_id: str
    sid: str


class SandboxProcess:
    """A running `gpuoutlet-sandbox serve --print-json`; a context manager that ends it."""

    def __init__(self, proc: subprocess.Popen[bytes], info: dict[str, Any], log_path: Path) -> None:
        self.proc = proc
        self.url: str = info["url"]
        self.sid: str = info["sid"]
        self.admin_token: str = info["adminToken"]
        self.account_id: str = info["accountId"]
        self.data_dir = Path(info["dataDir"])
        self.pid: int = info["pid"]
        self.log_path = log_path
        self.admin = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=_HTTP_TIMEOUT,
        )

    # -- clients ----------------------------------------------------------------------

    def client(self, sid: str | None = None, **kwargs: Any) -> httpx.Client:
        """An httpx client for /v1 with the `sid` cookie (the default account's by default)."""
        kwargs.setdefault("timeout", _HTTP_TIMEOUT)
        return httpx.Client(base_url=self.url, cookies={"sid": sid or self.sid}, **kwargs)

    def async_client(self, sid: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
        kwargs.setdefault("timeout", _HTTP_TIMEOUT)
        return httpx.AsyncClient(base_url=self.url, cookies={"sid": sid or self.sid}, **kwargs)

    # -- the /sandbox controls --------------------------------------------------------

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.admin.request(method, path, json=body)
        response.raise_for_status()
        return response.json()

    def create_account(
        self, balance_cents: int = 0, authorized_keys: str | None = None
    ) -> SandboxAccount:
        data = self._call(
            "POST",
            "/sandbox/accounts",
            {"balanceCents": balance_cents, "authorizedKeys": authorized_keys},
        )
        return SandboxAccount(data["accountId"], data["sid"])

    def deposit(self, account_id: str, cents: int) -> dict[str, int]:
        result: dict[str, int] = self._call(
            "POST", f"/sandbox/accounts/{account_id}/deposit", {"cents": cents}
        )
        return result

    def ledger(self, account_id: str | None = None) -> dict[str, int]:
        """depositedCents, availableCents, reservedCents, spentCents."""
        result: dict[str, int] = self._call(
            "GET", f"/sandbox/accounts/{account_id or self.account_id}/ledger"
        )
        return result

    def set_faults(self, faults: Mapping[str, Any] | None = None, /, **more: Any) -> dict[str, Any]:
        """Replace every fault, by wire name: `set_faults({"errorBurst": {"status": 503,
        "count": 2}})` or `set_faults(neverReady=True)`; `set_faults({})` clears them all."""
        body = {**(faults or {}), **more}
        result: dict[str, Any] = self._call("PUT", "/sandbox/faults", body)
        return result

    def faults(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/sandbox/faults")
        return result

    def clock(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/sandbox/clock")
        return result

    def advance(self, seconds: float) -> dict[str, Any]:
        """Move the sandbox clock forward, then run one worker pass."""
        result: dict[str, Any] = self._call("POST", "/sandbox/clock/advance", {"seconds": seconds})
        return result

    def tick(self) -> dict[str, Any]:
        """Run one worker pass now."""
        result: dict[str, Any] = self._call("POST", "/sandbox/tick")
        return result

    def fail_rental(self, rental_id: str, error: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "POST", f"/sandbox/rentals/{rental_id}/fail", {"error": error}
        )
        return result

    def delete_rental(self, rental_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("DELETE", f"/sandbox/rentals/{rental_id}")
        return result

    # -- lifetime ---------------------------------------------------------------------

    def terminate(self, timeout: float = 10.0) -> int:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit status."""
        self.admin.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.proc.returncode

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.terminate()


@dataclass(frozen=True)
class SSHKeypair:
    private_key: Path
    public_key_path: Path
    #: The one-line public key, as an authorized_keys entry.
    public_key: str


def make_keypair(folder: Path, name: str = "id_ed25519") -> SSHKeypair:
    """A passphrase-less ed25519 key pair made with ssh-keygen."""
    folder.mkdir(parents=True, exist_ok=True)
    key = folder / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "gpuoutlet-test", "-f", str(key)],
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
    )
    pub = key.with_name(key.name + ".pub")
    return SSHKeypair(key, pub, pub.read_text(encoding="utf-8").strip())


def wait_for_status(
    client: httpx.Client,
    rental_id: str,
    statuses: Collection[str],
    *,
    timeout: float = 30.0,
    interval: float = 0.05,
) -> dict[str, Any]:
    """Poll GET /v1/rentals/{id} until its status is one of `statuses`; TimeoutError if not."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/v1/rentals/{rental_id}")
        response.raise_for_status()
        rental: dict[str, Any] = response.json()
        if rental["status"] in statuses:
            return rental
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"rental {rental_id} is still {rental['status']}, not one of {sorted(statuses)}, "
                f"after {timeout} s"
            )
        time.sleep(interval)


def _throwaway_public_key(data_dir: Path) -> Path:
    """A public key whose private half is discarded: the default account exists, nobody logs in."""
    import asyncssh

    path = data_dir / "throwaway_key.pub"
    if not path.exists():
        key = asyncssh.generate_private_key("ssh-ed25519", comment="nobody")
        path.write_bytes(key.export_public_key())
    return path


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    # The child must import this very package, also from a source checkout that is not
    # installed; site-packages is on its path already and must not move ahead of the stdlib.
    root = str(Path(gpuoutlet_jupyter.__file__).resolve().parent.parent)
    if root not in {str(Path(p).resolve()) for p in site.getsitepackages()}:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env


def _read_json_line(proc: subprocess.Popen[bytes], timeout: float) -> dict[str, Any] | None:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                return None
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                return None
            buffer += chunk
    line = buffer.split(b"\n", 1)[0]
    info: dict[str, Any] = json.loads(line)
    return info


def start_sandbox(
    data_dir: Path,
    *,
    balance_cents: int = 100_00,
    time_scale: float = 1.0,
    provision_seconds: tuple[float, float] = (20.0, 60.0),
    worker_interval: float | None = None,
    authorized_key: Path | None = None,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    startup_timeout: float = STARTUP_TIMEOUT,
) -> SandboxProcess:
    """Run `python -m gpuoutlet_jupyter.sandbox serve --port 0 --print-json` on `data_dir`.

    Without `authorized_key` the default account gets a throwaway key (never your own);
    `env` entries override the child's environment."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable,
        "-m",
        "gpuoutlet_jupyter.sandbox",
        "serve",
        "--port",
        "0",
        "--print-json",
        "--data-dir",
        str(data_dir),
        "--balance-cents",
        str(balance_cents),
        "--time-scale",
        repr(time_scale),
        "--provision-seconds",
        f"{provision_seconds[0]!r}-{provision_seconds[1]!r}",
    ]
    if worker_interval is not None:
        argv += ["--worker-interval", repr(worker_interval)]
    if authorized_key is None:
        # Never fall back to the user's own ~/.ssh key (or generate one there) from a test.
        authorized_key = _throwaway_public_key(data_dir)
    argv += ["--authorized-key", str(authorized_key)]
    argv += list(extra_args)
    log_path = data_dir / "sandbox.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            env={**_environment(), **(env or {})},
        )
    try:
        info = _read_json_line(proc, startup_timeout)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if info is None:
        proc.kill()
        proc.wait()
        tail = log_path.read_text(encoding="utf-8", errors="replace")[-4000:]
        raise SandboxStartError(
            f"the sandbox did not start within {startup_timeout} s (exit status "
            f"{proc.returncode}); its log ends with:\n{tail}"
        )
    return SandboxProcess(proc, info, log_path)
