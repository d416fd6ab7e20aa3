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
    """A user of the sandbox (`usr_…`) and one session of it."""

    account_id: str
    sid: str
    email: str = ""


class SandboxProcess:
    """A running `gpuoutlet-sandbox serve --print-json`; a context manager that ends it."""

    def __init__(self, proc: subprocess.Popen[bytes], info: dict[str, Any], log_path: Path) -> None:
        self.proc = proc
        self.url: str = info["url"]
        #: The default account's session ("" when the sandbox started signed out).
        self.sid: str = info["sid"] or ""
        self.admin_token: str = info["adminToken"]
        self.account_id: str = info["accountId"]
        self.email: str = info["email"]
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
        self,
        balance_cents: int = 0,
        authorized_keys: str | None = None,
        *,
        email: str | None = None,
    ) -> SandboxAccount:
        """A new user with `balance_cents` (a top-up), `authorized_keys` (one or more public
        key lines) registered as its SSH keys as if POSTed to /v1/ssh-keys, and a session."""
        data = self._call(
            "POST",
            "/sandbox/accounts",
            {"balanceCents": balance_cents, "authorizedKeys": authorized_keys, "email": email},
        )
        return SandboxAccount(data["accountId"], data["sid"], data["email"])

    def new_session(self, account_id: str) -> str:
        """Another sid of the same account (its own rate-limit bucket)."""
        result: str = self._call("POST", f"/sandbox/accounts/{account_id}/sessions")["sid"]
        return result

    def expire_session(self, sid: str) -> bool:
        """End a session now, as 30 idle days would; False if it was not live."""
        result: bool = self._call("POST", "/sandbox/sessions/expire", {"sid": sid})["ok"]
        return result

    def deposit(self, account_id: str, cents: int, *, kind: str = "stripe_topup") -> dict[str, int]:
        """Top up (`stripe_topup`) or credit (`adjustment`) the wallet; returns ledger()."""
        result: dict[str, int] = self._call(
            "POST", f"/sandbox/accounts/{account_id}/deposit", {"cents": cents, "type": kind}
        )
        return result

    def ledger(self, account_id: str | None = None) -> dict[str, int]:
        """The wallet from the sandbox's side: depositedCents, availableCents, reservedCents,
        spentCents (available + reserved + spent == deposited), totalCents,
        openInvoicesCents, openInvoiceCount."""
        result: dict[str, int] = self._call(
            "GET", f"/sandbox/accounts/{account_id or self.account_id}/wallet"
        )
        return result

    wallet = ledger

    def open_invoice(
        self,
        account_id: str,
        amount_cents: int,
        *,
        reason: str = "manual",
        rental_id: str | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        """An open invoice on the account (reason manual, topup_failed or overage)."""
        result: dict[str, Any] = self._call(
            "POST",
            f"/sandbox/accounts/{account_id}/invoices",
            {
                "amountCents": amount_cents,
                "reason": reason,
                "rentalId": rental_id,
                "description": description,
            },
        )
        return result

    def pay_invoice(self, invoice_id: str) -> dict[str, Any]:
        """What Stripe's invoice.paid does (a failed top-up's amount reaches the wallet)."""
        result: dict[str, Any] = self._call("POST", f"/sandbox/invoices/{invoice_id}/pay")
        return result

    def create_rentals(
        self,
        account_id: str,
        count: int,
        *,
        status: str = "stopped",
        family_id: str = "rtx-4090",
        gpu_count: int = 1,
        name_prefix: str | None = None,
    ) -> list[str]:
        """`count` rentals at once, oldest first: `stopped` ones straight into the history
        (no pods, no money; for paging), or `provisioning` ones by real creates."""
        result: list[str] = self._call(
            "POST",
            f"/sandbox/accounts/{account_id}/rentals",
            {
                "count": count,
                "status": status,
                "familyId": family_id,
                "gpuCount": gpu_count,
                "namePrefix": name_prefix,
            },
        )["ids"]
        return result

    def mailbox(self, email: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """What the sandbox would have emailed (sign-in codes, $0 notices), newest first."""
        params: dict[str, Any] = {"limit": limit}
        if email is not None:
            params["email"] = email
        response = self.admin.get("/sandbox/mailbox", params=params)
        response.raise_for_status()
        messages: list[dict[str, Any]] = response.json()["messages"]
        return messages

    def sign_in_code(self, email: str) -> str:
        """The newest sign-in code sent to `email`."""
        for message in self.mailbox(email):
            if message["code"]:
                return str(message["code"])
        raise LookupError(f"no sign-in code was sent to {email}")

    def sign_in(self, email: str) -> str:
        """Sign in through the API as a client would (request-code, the mailbox,
        verify-code); returns the new session's sid."""
        with httpx.Client(base_url=self.url, timeout=_HTTP_TIMEOUT) as http:
            http.post("/v1/auth/request-code", json={"email": email}).raise_for_status()
            code = self.sign_in_code(email)
            response = http.post("/v1/auth/verify-code", json={"email": email, "code": code})
            response.raise_for_status()
            sid = response.cookies.get("sid") or _sid_from(response)
        return sid

    def rate_limits(self) -> dict[str, int]:
        """perMinute, perHour (0: off) and refusedCount (429s since they were set)."""
        result: dict[str, int] = self._call("GET", "/sandbox/rate-limits")
        return result

    def set_rate_limits(self, per_minute: int, per_hour: int) -> dict[str, int]:
        """New limits per session (0 turns a window off); every window starts over."""
        result: dict[str, int] = self._call(
            "PUT", "/sandbox/rate-limits", {"perMinute": per_minute, "perHour": per_hour}
        )
        return result

    def pod_info(self, rental_id: str) -> dict[str, Any]:
        """rentalId, running, home (the pod's disk folder), homeExists, port,
        authorizedKeyFingerprints (the keys it took at create)."""
        result: dict[str, Any] = self._call("GET", f"/sandbox/rentals/{rental_id}/pod")
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
        """The provider reports the rental's machine broken: failed and refunded."""
        result: dict[str, Any] = self._call(
            "POST", f"/sandbox/rentals/{rental_id}/fail", {"error": error}
        )
        return result

    def delete_rental(self, rental_id: str) -> dict[str, Any]:
        """The vendor loses the rental: settled, torn down, gone from /v1."""
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


def _sid_from(response: httpx.Response) -> str:
    # httpx's jar keeps a Secure cookie but never sends it over http; read the header.
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name.strip() == "sid":
            return rest.split(";", 1)[0]
    raise LookupError("verify-code set no sid cookie")


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
    interval: float = 0.5,
) -> dict[str, Any]:
    """Poll GET /v1/rentals/{id} until its status is one of `statuses`; TimeoutError if not.
    The default interval keeps a 30 s wait within the vendor's 100 requests a minute; a 429
    is waited out as its Retry-After says."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/v1/rentals/{rental_id}")
        if response.status_code == 429:
            time.sleep(float(response.headers.get("Retry-After", "1")))
            continue
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
    requests_per_minute: int | None = None,
    requests_per_hour: int | None = None,
    signed_out: bool = False,
    new_user_balance_cents: int | None = None,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    startup_timeout: float = STARTUP_TIMEOUT,
) -> SandboxProcess:
    """Run `python -m gpuoutlet_jupyter.sandbox serve --port 0 --print-json` on `data_dir`.

    Without `authorized_key` the default account gets a throwaway key (never your own).
    The vendor's rate limits (100 a minute, 1,000 an hour per session) hold unless
    `requests_per_minute` / `requests_per_hour` say otherwise (0: none). `env` entries
    override the child's environment."""
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
    if requests_per_minute is not None:
        argv += ["--requests-per-minute", str(requests_per_minute)]
    if requests_per_hour is not None:
        argv += ["--requests-per-hour", str(requests_per_hour)]
    if signed_out:
        argv.append("--signed-out")
    if new_user_balance_cents is not None:
        argv += ["--new-user-balance-cents", str(new_user_balance_cents)]
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
