"""Fault injection for the client's tests: provider failures and latency, bursts, hostile
values, a create whose answer is lost."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class ErrorBurst(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: int = Field(503, ge=500, le=599, description="HTTP status of each failed response.")
    count: int = Field(ge=0, le=1_000_000, description="How many /v1 requests fail.")


class RateLimitBurst(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(ge=0, le=1_000_000, description="How many /v1 requests get 429.")
    retryAfterSeconds: int = Field(1, ge=0, le=3600)


class Faults(BaseModel):
    """The fault knobs (wire names). Seconds here are real seconds, not sandbox seconds:
    they model network and provider latency as a client experiences it."""

    model_config = ConfigDict(extra="forbid")

    providerFailureRate: float = Field(0.0, ge=0, le=1, allow_inf_nan=False)
    providerLatencySeconds: float = Field(0.0, ge=0, le=60, allow_inf_nan=False)
    errorBurst: ErrorBurst | None = None
    rateLimitBurst: RateLimitBurst | None = None
    slowResponseSeconds: float = Field(0.0, ge=0, le=300, allow_inf_nan=False)
    slowCount: int = Field(0, ge=0, le=1_000_000)
    malformedCount: int = Field(0, ge=0, le=1_000_000)
    hostileHost: str | None = None
    hostilePort: int | None = None
    neverReady: bool = False
    #: Answer /v1 rentals with `stoppedAt` null (a client must not depend on it to end costs).
    omitStoppedAt: bool = False
    #: How many creates (POST /v1/rentals) are committed and then answered with nothing: the
    #: connection is dropped, so the client sees a lost answer while the rental exists.
    dropCreateAnswerCount: int = Field(0, ge=0, le=1_000_000)
    #: Commands missing from the PATH of pods that boot while this is set (e.g. ["rsync"]).
    podHiddenCommands: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9._+-]+$")]] = Field(
        default_factory=list, max_length=100
    )


class FaultState:
    """The current faults; the burst-like ones count down as /v1 requests consume them."""

    def __init__(self) -> None:
        self.current = Faults()

    def replace(self, faults: Faults) -> None:
        self.current = faults.model_copy(deep=True)

    def take_rate_limit(self) -> int | None:
        """Retry-After seconds if this request is to be rate limited."""
        burst = self.current.rateLimitBurst
        if burst is None or burst.count <= 0:
            return None
        burst.count -= 1
        return burst.retryAfterSeconds

    def take_error(self) -> int | None:
        """The 5xx status this request is to fail with, if any."""
        burst = self.current.errorBurst
        if burst is None or burst.count <= 0:
            return None
        burst.count -= 1
        return burst.status

    def take_slow(self) -> float:
        if self.current.slowCount <= 0:
            return 0.0
        self.current.slowCount -= 1
        return self.current.slowResponseSeconds

    def take_drop_create(self) -> bool:
        if self.current.dropCreateAnswerCount <= 0:
            return False
        self.current.dropCreateAnswerCount -= 1
        return True

    def take_malformed(self) -> bool:
        if self.current.malformedCount <= 0:
            return False
        self.current.malformedCount -= 1
        return True
