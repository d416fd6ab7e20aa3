"""The sandbox's whole configuration, in one dataclass filled in by the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: One hour of sandbox time, the unit of the reserve and of the rates.
HOUR_SECONDS = 3600
#: Request bodies above this are refused before they are parsed.
MAX_BODY_BYTES = 64 * 1024
#: The worker never wakes more often than this in real seconds, whatever the time scale.
MIN_WORKER_SLEEP = 0.02
#: Sandbox seconds between metering passes: each running pod "heartbeats every second".
HEARTBEAT_SECONDS = 1.0
#: The vendor's limits per session (sheet 1.8).
REQUESTS_PER_MINUTE = 100
REQUESTS_PER_HOUR = 1000
#: The email of the account the sandbox makes on first start (the sheet's example address).
DEFAULT_EMAIL = "you@example.com"


@dataclass(frozen=True)
class SandboxSettings:
    """Everything `gpuoutlet-sandbox serve` can be told; times are sandbox seconds."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    #: Starting balance of the default account; only used when the data dir is new.
    balance_cents: int = 100_00
    #: Balance given to a user that signing in creates (the real service gives nothing).
    new_user_balance_cents: int = 0
    default_email: str = DEFAULT_EMAIL
    #: Do not open a session for the default account: a client has to sign in.
    signed_out: bool = False
    #: Sandbox seconds per real second; 0 freezes the clock (only manual advances move it).
    time_scale: float = 1.0
    provision_seconds: tuple[float, float] = (20.0, 60.0)
    #: Sandbox seconds between two polls of the provider (boots, finished stops).
    worker_interval: float = 2.0
    #: Public key text (one or more authorized_keys lines) registered on the default account.
    authorized_keys: str | None = None
    #: Multiplies every listing's stock (benchmarks create thousands of rentals).
    capacity_factor: int = 1
    #: Requests per session per minute and per hour (real time); 0 turns a window off.
    requests_per_minute: int = REQUESTS_PER_MINUTE
    requests_per_hour: int = REQUESTS_PER_HOUR
    access_log: bool = False
    #: Seeds the provider's randomness (provision delays, failures, host names) when set.
    seed: int | None = None

    @property
    def db_path(self) -> Path:
        return self.data_dir / "sandbox.sqlite3"

    @property
    def pods_dir(self) -> Path:
        return self.data_dir / "pods"

    @property
    def heartbeat(self) -> float:
        """Sandbox seconds between worker passes: metering every second, or the provider
        interval when that is shorter."""
        return min(HEARTBEAT_SECONDS, self.worker_interval)

    def worker_sleep(self) -> float:
        """Real seconds between worker passes: the heartbeat in sandbox time, scaled, floored."""
        if self.time_scale <= 0:
            # A frozen clock still needs stop requests and readiness handled.
            return max(MIN_WORKER_SLEEP, self.heartbeat)
        return max(MIN_WORKER_SLEEP, self.heartbeat / self.time_scale)
