"""When to retry a request and how long to wait: exponential backoff with jitter, honouring Retry-After."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

from . import errors
from .contract import Endpoint

log = logging.getLogger("gpuoutlet_jupyter.api")

# Failures after which the same request may succeed: the network, the server's own trouble,
# rate limiting, and a garbled body (a proxy cut it short).
TRANSIENT: tuple[type[errors.GpuOutletError], ...] = (
    errors.TransportError,
    errors.ServerError,
    errors.RateLimitedError,
    errors.MalformedResponseError,
)


@dataclass(frozen=True)
class RetryPolicy:
    """At most `attempts` tries; waits double from `backoff_initial` up to `backoff_max`."""

    attempts: int = 4
    backoff_initial: float = 0.5
    backoff_max: float = 8.0
    # A Retry-After beyond this is not waited out inside one call: the caller sees the 429
    # (a request from a viewer must not hang for the vendor's default of 30 s).
    retry_after_max: float = 10.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before try `attempt + 1`."""
        if retry_after is not None:
            return retry_after
        base = min(self.backoff_max, self.backoff_initial * 2.0 ** (attempt - 1))
        # Full jitter keeps many clients that failed together from retrying together.
        return base * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not cryptography


class Attempts:
    """The retry bookkeeping of one call, shared by the sync and the async client."""

    def __init__(self, policy: RetryPolicy, endpoint: Endpoint) -> None:
        self.policy = policy
        self.endpoint = endpoint
        # Only what cannot act twice is repeated: never a create (the API has no idempotency
        # key, so a second send may rent and bill a second pod).
        self.safe = endpoint.retry_safe
        self.count = 0

    def start(self) -> None:
        """Count one more try."""
        self.count += 1

    def next_delay(self, error: errors.GpuOutletError) -> float:
        """Seconds to wait before trying again, or re-raise `error` when it must not be retried."""
        retry_after = getattr(error, "retry_after", None)
        if (
            not self.safe
            or not isinstance(error, TRANSIENT)
            or self.count >= self.policy.attempts
            or (retry_after is not None and retry_after > self.policy.retry_after_max)
        ):
            raise error
        wait = self.policy.delay(self.count, retry_after)
        log.info(
            "%s %s failed (%s); retry %d of %d in %.1f s",
            self.endpoint.method,
            self.endpoint.path,
            type(error).__name__,
            self.count,
            self.policy.attempts - 1,
            wait,
        )
        return wait
