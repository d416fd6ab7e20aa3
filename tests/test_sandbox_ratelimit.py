"""The vendor's request limits: 100 a minute and 1,000 an hour per session, X-RateLimit-*
headers on every answer, 429 `rate_limited` with Retry-After."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from helpers.sandbox import error, ok

from gpuoutlet_jupyter.sandbox.ratelimit import RateLimiter
from gpuoutlet_jupyter.sandbox.testing import SandboxProcess


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_the_minute_window() -> None:
    clock = Clock()
    limiter = RateLimiter(100, 1_000, now=clock)
    verdicts = [limiter.hit("s") for _ in range(100)]
    assert all(v is not None and v.allowed for v in verdicts)
    assert [v.remaining for v in verdicts if v] == list(range(99, -1, -1))
    assert {v.limit for v in verdicts if v} == {100} and {v.reset for v in verdicts if v} == {
        1_000_060
    }
    clock.now += 23.5
    refused = limiter.hit("s")
    assert refused is not None and not refused.allowed
    assert (refused.remaining, refused.retry_after, refused.reset) == (0, 37, 1_000_060)
    assert limiter.hit("other") is not None  # per session
    clock.now += 36.5  # the window is over
    again = limiter.hit("s")
    assert again is not None and again.allowed and again.remaining == 99
    assert limiter.refused == 1


def test_the_hour_window_and_the_tighter_header() -> None:
    clock = Clock()
    limiter = RateLimiter(100, 1_000, now=clock)
    for minute in range(10):
        for _ in range(100):
            verdict = limiter.hit("s")
            assert verdict is not None and verdict.allowed
        clock.now += 60
        if minute == 8:
            # 900 used this hour: the minute's 100 is still the tighter count.
            assert verdict.limit == 100
    # 1,000 in ten minutes: the hour is spent though a new minute has begun.
    refused = limiter.hit("s")
    assert refused is not None and not refused.allowed
    assert (refused.limit, refused.remaining, refused.reset) == (1_000, 0, 1_003_600)
    assert refused.retry_after == 3_600 - 600
    # Near the end of the hour the headers speak of the hour, whose count is lower.
    limiter = RateLimiter(100, 1_000, now=clock)
    for _ in range(9):
        for _ in range(100):
            last = limiter.hit("t")
        clock.now += 60
    first_of_tenth = limiter.hit("t")
    assert first_of_tenth is not None and last is not None
    assert (first_of_tenth.limit, first_of_tenth.remaining) == (100, 99)
    for _ in range(50):
        limiter.hit("t")
    clock.now += 60
    tight = limiter.hit("t")
    assert tight is not None and (tight.limit, tight.remaining) == (1_000, 1_000 - 952)


def test_no_limits_no_headers() -> None:
    limiter = RateLimiter(0, 0)
    assert limiter.hit("s") is None


@pytest.fixture
def defaults(sandbox: SandboxProcess) -> Iterator[None]:
    sandbox.set_rate_limits(100, 1_000)
    yield
    sandbox.set_rate_limits(100, 1_000)


def test_every_answer_says_where_the_session_stands(
    sandbox: SandboxProcess, defaults: None
) -> None:
    account = sandbox.create_account()
    with sandbox.client(account.sid) as http:
        for response in (
            http.get("/v1/auth/me"),
            http.get("/v1/rentals/rent_01H00000000000000000000000"),  # an error answer too
            http.post("/v1/rentals", json={}),
            http.get("/v1/nothing-here"),
        ):
            assert response.headers["X-RateLimit-Limit"] == "100"
            assert int(response.headers["X-RateLimit-Reset"]) > time.time()
        assert response.headers["X-RateLimit-Remaining"] == "96"
    # A request without a session belongs to no session: not counted.
    anonymous = httpx.get(f"{sandbox.url}/v1/rentals")
    assert anonymous.status_code == 401 and "X-RateLimit-Limit" not in anonymous.headers


@pytest.mark.rate_limited
def test_the_101st_request_in_a_minute_is_429(sandbox: SandboxProcess, defaults: None) -> None:
    account = sandbox.create_account()
    second_session = sandbox.new_session(account.account_id)
    with sandbox.client(account.sid) as http:
        remaining = []
        for _ in range(100):
            response = http.get("/v1/billing/balance")
            ok(response)
            remaining.append(int(response.headers["X-RateLimit-Remaining"]))
        assert remaining == list(range(99, -1, -1))
        limited = http.get("/v1/billing/balance")
        body = error(limited, 429, "rate_limited")
        retry_after = int(limited.headers["Retry-After"])
        assert 0 < retry_after <= 60
        assert body == {
            "error": "rate_limited",
            "message": f"Too many requests. Retry after {retry_after} seconds.",
        }
        assert limited.headers["X-RateLimit-Remaining"] == "0"
        # Mutations share the bucket with GETs.
        error(
            http.post("/v1/rentals", json={"familyId": "rtx-4090", "gpuCount": 1}),
            429,
            "rate_limited",
        )
    assert sandbox.ledger(account.account_id)["reservedCents"] == 0
    with sandbox.client(second_session) as http:
        ok(http.get("/v1/billing/balance"))  # another session has its own budget
    assert sandbox.rate_limits()["refusedCount"] == 2


@pytest.mark.rate_limited
def test_limits_are_configurable(sandbox: SandboxProcess, defaults: None) -> None:
    account = sandbox.create_account()
    assert sandbox.set_rate_limits(3, 5) == {"perMinute": 3, "perHour": 5, "refusedCount": 0}
    with sandbox.client(account.sid) as http:
        for _ in range(3):
            ok(http.get("/v1/auth/me"))
        assert http.get("/v1/auth/me").status_code == 429
        sandbox.set_rate_limits(0, 0)  # off: no limit, no headers
        response = http.get("/v1/auth/me")
        assert response.status_code == 200 and "X-RateLimit-Limit" not in response.headers
