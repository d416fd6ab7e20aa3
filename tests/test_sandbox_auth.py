"""Signing in as the vendor documents it: an emailed 6-digit code (in the sandbox: its log and
/sandbox/mailbox), the `sid` cookie, a sliding 30-day session, logout, and the limits."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from helpers.sandbox import error, ok

from gpuoutlet_jupyter.sandbox.testing import SandboxProcess, start_sandbox

DAY = 24 * 3600


@pytest.fixture(scope="module")
def frozen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    with start_sandbox(tmp_path_factory.mktemp("auth"), time_scale=0.0) as process:
        yield process


@pytest.fixture
def anon(frozen: SandboxProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=frozen.url) as http:
        yield http


_emails = iter(range(1_000_000))


@pytest.fixture
def email() -> str:
    return f"person-{next(_emails)}@example.com"


def when(iso: str) -> datetime:
    return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ")


def request_code(http: httpx.Client, email: str) -> httpx.Response:
    return http.post("/v1/auth/request-code", json={"email": email, "intent": "login"})


def verify(http: httpx.Client, email: str, code: str) -> httpx.Response:
    return http.post("/v1/auth/verify-code", json={"email": email, "code": code})


def sid_of(response: httpx.Response) -> str:
    cookie = response.headers["set-cookie"]
    match = re.fullmatch(
        r"sid=([0-9a-f]{64}); HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age=2592000", cookie
    )
    assert match, cookie
    return match.group(1)


def me(frozen: SandboxProcess, sid: str) -> httpx.Response:
    return httpx.get(f"{frozen.url}/v1/auth/me", cookies={"sid": sid})


def test_sign_in_with_the_emailed_code(
    frozen: SandboxProcess, anon: httpx.Client, email: str
) -> None:
    assert ok(request_code(anon, email)) == {"ok": True, "created": True}
    (mail,) = frozen.mailbox(email)
    code = mail["code"]
    assert re.fullmatch(r"\d{6}", code) and code in mail["subject"]
    assert f"sign-in code for {email}: {code}" in frozen.log()
    response = verify(anon, email, code)
    body = ok(response)
    sid = sid_of(response)
    assert body["user"]["email"] == email and body["user"]["id"].startswith("usr_")
    assert when(body["expiresAt"]) - when(body["user"]["createdAt"]) == timedelta(days=30)
    assert ok(me(frozen, sid))["user"] == body["user"]
    # A new account has nothing yet: no money, no keys.
    balance = ok(httpx.get(f"{frozen.url}/v1/billing/balance", cookies={"sid": sid}))
    assert balance["totalCents"] == 0
    assert ok(httpx.get(f"{frozen.url}/v1/ssh-keys", cookies={"sid": sid})) == {"keys": []}
    # Signing in again is a login: the same user, not a new one.
    frozen.advance(30)
    assert ok(request_code(anon, email.upper())) == {"ok": True, "created": False}
    again = ok(verify(anon, email.upper(), frozen.sign_in_code(email)))
    assert again["user"]["id"] == body["user"]["id"]
    assert sid not in frozen.log()


def test_a_code_works_once(frozen: SandboxProcess, anon: httpx.Client, email: str) -> None:
    ok(request_code(anon, email))
    code = frozen.sign_in_code(email)
    ok(verify(anon, email, code))
    error(verify(anon, email, code), 401, "code_invalid")


def test_one_code_per_email_every_30_seconds(
    frozen: SandboxProcess, anon: httpx.Client, email: str
) -> None:
    ok(request_code(anon, email))
    frozen.advance(10)
    refused = request_code(anon, email)
    body = error(refused, 429, "code_request_rate_limited")
    assert refused.headers["Retry-After"] == "20" and body["details"]["retryAfterSeconds"] == 20
    ok(request_code(anon, "someone-else-" + email))  # per email, not per caller
    frozen.advance(19)
    error(request_code(anon, email), 429, "code_request_rate_limited")
    frozen.advance(1)
    first_code = frozen.mailbox(email)[0]["code"]
    ok(request_code(anon, email))
    # The new code replaces the old one.
    new_code = frozen.sign_in_code(email)
    if new_code != first_code:
        error(verify(anon, email, first_code), 401, "code_invalid")
    ok(verify(anon, email, new_code))


@pytest.mark.parametrize(
    "bad", ["nope", "a@b", "two@@example.com", "me @example.com", "x" * 250 + "@example.com"]
)
def test_a_bad_email_is_invalid_email(anon: httpx.Client, bad: str) -> None:
    error(request_code(anon, bad), 400, "invalid_email")


def test_missing_fields_are_validation_failed(anon: httpx.Client) -> None:
    body = error(anon.post("/v1/auth/request-code", json={}), 400, "validation_failed")
    assert set(body["details"]) == {"email"}
    body = error(
        anon.post("/v1/auth/verify-code", json={"email": "a@example.com"}), 400, "validation_failed"
    )
    assert set(body["details"]) == {"code"}
    error(
        anon.post("/v1/auth/verify-code", json={"email": "a@example.com", "code": 123456}),
        400,
        "validation_failed",
    )


def test_a_code_lives_ten_minutes(frozen: SandboxProcess, anon: httpx.Client, email: str) -> None:
    ok(request_code(anon, email))
    code = frozen.sign_in_code(email)
    frozen.advance(601)
    error(verify(anon, email, code), 401, "code_expired")


def test_five_wrong_tries_kill_a_code(
    frozen: SandboxProcess, anon: httpx.Client, email: str
) -> None:
    ok(request_code(anon, email))
    code = frozen.sign_in_code(email)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    left = [
        error(verify(anon, email, wrong), 401, "code_invalid")["details"]["attemptsLeft"]
        for _ in range(5)
    ]
    assert left == [4, 3, 2, 1, 0]
    dead = error(verify(anon, email, code), 401, "code_invalid")  # right, but too late
    assert dead["details"]["attemptsLeft"] == 0 and "new code" in dead["message"]
    frozen.advance(30)
    ok(request_code(anon, email))
    ok(verify(anon, email, frozen.sign_in_code(email)))


def test_no_code_for_that_email(anon: httpx.Client) -> None:
    error(verify(anon, "never-asked@example.com", "123456"), 401, "code_invalid")


def test_logout_ends_the_session_for_good(frozen: SandboxProcess, email: str) -> None:
    sid = frozen.sign_in(email)
    other = frozen.sign_in("also-" + email)
    response = httpx.post(f"{frozen.url}/v1/auth/logout", cookies={"sid": sid})
    assert ok(response) == {"ok": True}
    assert response.headers["set-cookie"].startswith("sid=; ")
    assert "Max-Age=0" in response.headers["set-cookie"]
    gone = me(frozen, sid)
    assert gone.status_code == 401
    assert gone.json() == {"error": "unauthorized", "message": "Not signed in"}
    error(httpx.post(f"{frozen.url}/v1/auth/logout", cookies={"sid": sid}), 401, "unauthorized")
    ok(me(frozen, other))  # only that session


def test_the_session_slides_and_expires_after_30_idle_days(
    frozen: SandboxProcess, email: str
) -> None:
    sid = frozen.sign_in(email)
    first = when(ok(me(frozen, sid))["expiresAt"])
    frozen.advance(1_000)
    second = when(ok(me(frozen, sid))["expiresAt"])
    assert second - first == timedelta(seconds=1_000)
    frozen.advance(30 * DAY - 1)
    assert ok(me(frozen, sid))  # used in time: 30 more days
    frozen.advance(30 * DAY)
    assert me(frozen, sid).status_code == 401


def test_an_expired_session_is_401(frozen: SandboxProcess) -> None:
    account: Any = frozen.create_account()
    ok(me(frozen, account.sid))
    assert frozen.expire_session(account.sid) is True
    error(me(frozen, account.sid), 401, "unauthorized")


def test_oauth_is_not_configured(frozen: SandboxProcess) -> None:
    for provider in ("google", "github"):
        response = httpx.get(f"{frozen.url}/v1/auth/oauth/{provider}")
        assert response.status_code == 302
        assert response.headers["location"] == "/login?error=oauth_unavailable"
