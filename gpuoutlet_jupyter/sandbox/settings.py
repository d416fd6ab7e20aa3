"""The sandbox's whole configuration, in one dataclass filled in by the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: One hour of sandbox time, the unit of the minimum balance and of the first reservation.
HOUR_SECONDS = 3600
#: Request bodies above this are refused with 413 before they are parsed.
MAX_BODY_BYTES = 64 * 1024
#: The worker never wakes more often than this in real seconds, whatever the time scale.
MIN_WORKER_SLEEP = 0.02


@dataclass(frozen=True)
class SandboxSettings:
    """Everything `gpuoutlet-sandbox serve` can be told; times are sandbox seconds."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    #: Starting balance of the default account; only used when the data dir is new.
    balance_cents: int = 100_00
    #: Sandbox seconds per real second; 0 freezes the clock (only manual advances move it).
    time_scale: float = 1.0
    provision_seconds: tuple[float, float] = (20.0, 60.0)
    worker_interval: float = 2.0
    #: Public key text (one or more authorized_keys lines) for the default account, if given.
    authorized_keys: str | None = None
    #: Multiplies every listing's GPU capacity (benchmarks create thousands of rentals).
    capacity_factor: int = 1
    access_log: bool = False
    #: Seeds the provider's randomness (provision delays, failures, host names) when set.
    seed: int | None = None

    @property
    def db_path(self) -> Path:
        return self.data_dir / "sandbox.sqlite3"

    @property
    def pods_dir(self) -> Path:
        return self.data_dir / "pods"

    def worker_sleep(self) -> float:
        """Real seconds between worker passes: the interval in sandbox time, scaled, floored."""
        if self.time_scale <= 0:
            # A frozen clock still needs stop requests and readiness handled.
            return max(MIN_WORKER_SLEEP, self.worker_interval)
        return max(MIN_WORKER_SLEEP, self.worker_interval / self.time_scale)
