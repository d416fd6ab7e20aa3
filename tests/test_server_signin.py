"""Signing in from Jupyter, end to end: the extension's auth endpoints over the sandbox's email
codes. Signed out at first; a sign-in keeps the session in the credentials file and starts the
service at once; the vendor's limits in words; a restart keeps it; a sign-out ends it upstream
and deletes the file; a 401 mid-session and a sign-in again keep every rental and long-poll.
Every response body and log record is searched for the sid and the code.
"""

from __future__ import annotations

import asyncio
import logging
import re
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers.server import (
    Rest,
    another_server,
    gpuoutlet_app,
    server_config,
    start_extension,
    until,
)

from gpuoutlet_jupyter.api.settings import read_credentials
from gpuoutlet_jupyter.server.manager import RentalsManager

pytestmark = pytest.mark.usefixtures("no_gpuoutlet_env")


@pytest.fixture
def credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where a sign-in keeps the session: a folder that does not exist yet."""
    path = tmp_path / "config" / "gpuoutlet" / "credentials"
    monkeypatch.setenv("GPUOUTLET_CREDENTIALS_FILE", str(path))
    return path


@pytest.fixture
def account(sandbox: Any, ssh_keypair: Any) -> Any:
    """A funded account whose pods accept the test key; its own session is never used here."""
    return sandbox.create_account(balance_cents=100_00, authorized_keys=ssh_keypair.public_key)


@pytest.fixture
def jp_server_config(
    tmp_path: Path, sandbox: Any, ssh_keypair: Any, credentials: Path
) -> dict[str, Any]:
    # No sid anywhere: the server starts signed out.
    return server_config(tmp_path, api_url=sandbox.url, identity_file=str(ssh_keypair.private_key))


@pytest.fixture
def server(jp_serverapp: Any, http_server: Any, caplog: pytest.LogCaptureFixture) -> Any:
    caplog.set_level(logging.DEBUG)
    return jp_serverapp


@pytest.fixture(autouse=True)
def _no_faults_left(sandbox: Any) -> Any:
    yield
    sandbox.set_faults({})


def _exists(path: Path) -> bool:
    return path.exists()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _saved_sid(path: Path) -> str:
    return read_credentials(path)["sid"]


async def _waiting_long_poll(rest: Rest) -> tuple[int, asyncio.Future[httpx.Response]]:
    """A long-poll of the rentals list (60 s) still waiting 0.5 s after it was sent."""
    for _ in range(60):
        since = (await rest.api("GET", "rentals")).json()["version"]
        poll = asyncio.ensure_future(
            rest.api("GET", "rentals", params={"wait": "60", "since": str(since)})
        )
        await asyncio.sleep(0.5)
        if not poll.done():
            return since, poll
        await poll
    raise AssertionError("the rentals list never stayed unchanged for half a second")


async def _sign_in(rest: Rest, sandbox: Any, email: str, codes: list[str]) -> dict[str, Any]:
    sent = await rest.api("POST", "auth/request-code", json={"email": email})
    assert sent.status_code == 200, sent.text
    code = sandbox.sign_in_code(email)
    codes.append(code)
    signed = await rest.api("POST", "auth/verify-code", json={"email": email, "code": code})
    assert signed.status_code == 200, signed.text
    body: dict[str, Any] = signed.json()
    return body


def _assert_secrets_nowhere(
    secrets: list[str], rest: Rest, caplog: pytest.LogCaptureFixture, stream: Any
) -> None:
    """No response body, no log record, no line of the server's log holds a sid or a code."""
    assert rest.bodies and secrets
    records = caplog.get_records("call")
    assert len(records) > 10, "too few log records were captured to mean anything"
    texts = [*rest.bodies, *(r.getMessage() for r in records), stream.getvalue()]
    for secret in secrets:
        pattern = re.compile(rf"(?<![0-9A-Za-z]){re.escape(secret)}(?![0-9A-Za-z])")
        leaked = [text[:300] for text in texts if pattern.search(text)]
        assert not leaked, leaked


async def test_sign_in_from_signed_out_to_a_running_rental(
    server: Any,
    sandbox: Any,
    account: Any,
    credentials: Path,
    caplog: pytest.LogCaptureFixture,
    jp_logging_stream: Any,
) -> None:
    rest = await start_extension(server)
    codes: list[str] = []

    # Signed out: the status says so and how to sign in; the rest answers 503 with the how-to.
    status = (await rest.api("GET", "status")).json()
    assert (status["configured"], status["sessionState"]) == (False, "signed_out")
    assert status["credentialsFile"] == str(credentials)
    assert "Sign in to gpuoutlet" in status["problem"]
    wallet = await rest.api("GET", "wallet")
    assert wallet.status_code == 503 and "%gpu_login" in wallet.json()["error"]["message"]
    auth = (await rest.api("GET", "auth")).json()
    assert auth["sessionState"] == "signed_out" and auth["session"] is None
    assert "/sandbox/mailbox" in auth["hint"]  # a local API: where its codes appear

    # Bad input is refused before anything is sent.
    bad = await rest.api("POST", "auth/request-code", json={"email": "not an address"})
    assert bad.status_code == 400 and bad.json()["error"]["problems"][0]["field"] == "email"
    nonsense = await rest.api("POST", "auth/request-code", json={"email": "a@b"})
    assert nonsense.status_code == 400
    assert nonsense.json()["error"]["upstreamCode"] == "invalid_email"  # gpuoutlet's own check
    short = await rest.api(
        "POST", "auth/verify-code", json={"email": account.email, "code": "12a45"}
    )
    assert short.status_code == 400 and "6 digits" in short.text

    sent = await rest.api("POST", "auth/request-code", json={"email": account.email})
    assert sent.status_code == 200, sent.text
    reply = sent.json()
    assert reply["email"] == account.email and reply["created"] is False
    assert (reply["resendAfterSeconds"], reply["codeLifetimeSeconds"]) == (30, 600)
    assert reply["attemptsPerCode"] == 5 and "10 minutes" in reply["message"]
    code = sandbox.sign_in_code(account.email)
    codes.append(code)

    # A wrong code: how many tries are left, in words and in the details.
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    codes.append(wrong)
    refused = await rest.api(
        "POST", "auth/verify-code", json={"email": account.email, "code": wrong}
    )
    assert refused.status_code == 401
    error = refused.json()["error"]
    assert error["code"] == "code_invalid" and error["details"]["attemptsLeft"] == 4
    assert "4 tries left" in error["message"]
    assert not _exists(credentials)

    # The right one ("123 456" as a person may type it): signed in, kept, used at once.
    spaced = f"{code[:3]} {code[3:]}"
    signed = await rest.api(
        "POST", "auth/verify-code", json={"email": account.email, "code": spaced}
    )
    assert signed.status_code == 200, signed.text
    body = signed.json()
    assert body["session"]["email"] == account.email and body["problem"] is None
    assert body["credentialsFile"] == str(credentials) and body["note"] is None
    assert "still signed in after a restart" in body["message"]
    assert _mode(credentials) == 0o600
    assert _mode(credentials.parent) == 0o700
    saved = read_credentials(credentials)
    assert saved["api_url"] == sandbox.url and saved["sid"] != account.sid
    sid = saved["sid"]

    status = (await rest.api("GET", "status")).json()
    assert (status["configured"], status["state"], status["sessionState"]) == (
        True,
        "running",
        "signed_in",
    )
    assert status["session"]["email"] == account.email
    assert status["lastEmail"] == account.email
    assert str(credentials) in status["sidSource"]
    wallet = await rest.api("GET", "wallet")
    assert wallet.status_code == 200 and wallet.json()["availableCents"] == 100_00

    # From there to a running rental, with no restart and no cookie copied.
    created = await rest.api("POST", "rentals", json={"familyId": "rtx-4090", "name": "signin"})
    assert created.status_code == 200, created.text
    rental_id = created.json()["id"]

    async def running() -> Any:
        view = (await rest.api("GET", f"rentals/{rental_id}")).json()
        return view if view["status"] == "running" and view["ssh"] else None

    view = await until(running, timeout=40, interval=0.2)
    assert view["ssh"]["alias"] == f"gpuoutlet-{rental_id}"
    stopped = await rest.api("POST", f"rentals/{rental_id}/stop")
    assert stopped.status_code == 200

    _assert_secrets_nowhere([sid, *codes], rest, caplog, jp_logging_stream)


async def test_the_vendors_limits_in_words(
    server: Any, sandbox: Any, account: Any, credentials: Path
) -> None:
    rest = await start_extension(server)
    email = account.email
    assert (await rest.api("POST", "auth/request-code", json={"email": email})).status_code == 200

    # One code per email every 30 s: when a new one can be sent.
    again = await rest.api("POST", "auth/request-code", json={"email": email})
    assert again.status_code == 429
    error = again.json()["error"]
    assert error["code"] == "code_request_rate_limited"
    assert 0 < error["retryAfterSeconds"] <= 30 and again.headers["Retry-After"]
    assert "every 30 s" in error["message"]
    sandbox.advance(31)
    assert (await rest.api("POST", "auth/request-code", json={"email": email})).status_code == 200

    # Five wrong tries end a code: even the right one is refused after them.
    code = sandbox.sign_in_code(email)
    wrong = f"{(int(code) + 7) % 1_000_000:06d}"
    lefts = []
    for _ in range(5):
        refused = await rest.api("POST", "auth/verify-code", json={"email": email, "code": wrong})
        lefts.append(refused.json()["error"]["details"]["attemptsLeft"])
    assert lefts == [4, 3, 2, 1, 0]
    assert "no longer works" in refused.json()["error"]["message"]
    dead = await rest.api("POST", "auth/verify-code", json={"email": email, "code": code})
    assert dead.status_code == 401 and dead.json()["error"]["code"] == "code_invalid"

    # A code lives 10 minutes (on the sandbox's clock).
    sandbox.advance(31)
    assert (await rest.api("POST", "auth/request-code", json={"email": email})).status_code == 200
    code = sandbox.sign_in_code(email)
    sandbox.advance(601)
    expired = await rest.api("POST", "auth/verify-code", json={"email": email, "code": code})
    assert expired.status_code == 401
    error = expired.json()["error"]
    assert error["code"] == "code_expired" and "10 minutes" in error["message"]
    assert not _exists(credentials)
    assert (await rest.api("GET", "status")).json()["sessionState"] == "signed_out"


async def test_still_signed_in_after_a_restart_and_sign_out_ends_it(
    server: Any,
    sandbox: Any,
    account: Any,
    credentials: Path,
    jp_configurable_serverapp: Any,
) -> None:
    rest = await start_extension(server)
    await _sign_in(rest, sandbox, account.email, [])
    sid = _saved_sid(credentials)
    await gpuoutlet_app(server).manager.stop()

    async with another_server(jp_configurable_serverapp) as second:
        rest = await start_extension(second)
        status = (await rest.api("GET", "status")).json()
        assert status["sessionState"] == "signed_in" and status["configured"] is True
        assert status["sidSource"] == str(credentials)
        assert status["session"]["email"] == account.email

        out = await rest.api("POST", "auth/logout")
        assert out.status_code == 200, out.text
        reply = out.json()
        assert reply["vendorTold"] is True and reply["credentialsRemoved"] is True
        assert reply["stillRunning"] == [] and reply["note"] is None
        assert "Signed out of" in reply["message"]
        assert not _exists(credentials)
        # gpuoutlet ended the session: the old sid answers 401.
        with sandbox.client(sid) as http:
            assert http.get("/v1/auth/me").status_code == 401
        status = (await rest.api("GET", "status")).json()
        assert (status["sessionState"], status["configured"]) == ("signed_out", False)
        assert (await rest.api("GET", "wallet")).status_code == 503
        # Signing out again is harmless.
        again = (await rest.api("POST", "auth/logout")).json()
        assert again["vendorTold"] is False and again["credentialsRemoved"] is False


async def test_a_401_mid_session_then_a_sign_in_keeps_rentals_and_long_polls(
    server: Any,
    sandbox: Any,
    account: Any,
    credentials: Path,
    caplog: pytest.LogCaptureFixture,
    jp_logging_stream: Any,
) -> None:
    rest = await start_extension(server)
    codes: list[str] = []
    await _sign_in(rest, sandbox, account.email, codes)
    first_sid = _saved_sid(credentials)
    created = await rest.api("POST", "rentals", json={"familyId": "rtx-4090", "name": "kept"})
    rental_id = created.json()["id"]

    async def running() -> Any:
        listed = (await rest.api("GET", "rentals")).json()
        views = {r["id"]: r for r in listed["rentals"]}
        ok = views.get(rental_id, {}).get("status") == "running" and views[rental_id]["ssh"]
        return listed if ok else None

    await until(running, timeout=40, interval=0.2)

    # The session ends under it (30 idle days, or a sign-out on the website).
    sandbox.expire_session(first_sid)

    async def refused() -> Any:
        # The balance is shared for balance_ttl (15 s): its next read meets the 401.
        answer = await rest.api("GET", "wallet")
        return answer if answer.status_code != 200 else None

    wallet = await until(refused, timeout=40, interval=0.5)
    assert wallet.status_code == 401 and wallet.json()["error"]["code"] == "unauthorized"
    assert "Sign in to gpuoutlet" in wallet.json()["error"]["message"]
    status = (await rest.api("GET", "status")).json()
    assert status["sessionState"] == "expired" and status["lastEmail"] == account.email

    # A viewer long-polls the list meanwhile; the sign-in answers it at once, from the new
    # service, with a version above the one it held. (The failing polls of the old session
    # are changes too, backed off: take a long-poll that is still waiting half a second on.)
    since, poll = await _waiting_long_poll(rest)
    sandbox.advance(31)  # one code per email every 30 s (on the sandbox's clock)
    await _sign_in(rest, sandbox, account.email, codes)
    answered = await asyncio.wait_for(poll, 20)  # far less than its 60 s wait
    assert answered.status_code == 200
    after = answered.json()
    assert after["version"] > since
    (view,) = [r for r in after["rentals"] if r["id"] == rental_id]
    assert view["status"] == "running" and view["upstreamError"] is None  # the new service's

    # The rental is watched again, once: one loop for the running rentals in the whole server
    # (polls are batched by status, issue 14; the old service's loop ended with it).
    service = await gpuoutlet_app(server).manager.service()
    assert service.watching() == [rental_id]
    watchers = [t for t in asyncio.all_tasks() if t.get_name() == "gpuoutlet-watch-running"]
    assert len([t for t in watchers if not t.done()]) == 1
    status = (await rest.api("GET", "status")).json()
    assert status["sessionState"] == "signed_in"
    assert (await rest.api("GET", "wallet")).status_code == 200

    # Signing out with it running: it is named as no longer watched; its SSH entry stays.
    out = (await rest.api("POST", "auth/logout")).json()
    assert out["stillRunning"] == [rental_id] and rental_id in out["message"]
    assert not service.watching()
    # Another account is refused while that rental may still be billed.
    other = sandbox.create_account(balance_cents=0)
    refused = await rest.api("POST", "auth/request-code", json={"email": other.email})
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "other_account_active" and error["rentals"] == [rental_id]
    assert account.email in error["message"] and "Nothing was sent" in error["message"]
    assert not [m for m in sandbox.mailbox(other.email) if m["code"]]
    # The same account (any case) may sign in, and stops it.
    sandbox.advance(31)
    await _sign_in(rest, sandbox, account.email.upper(), codes)
    stopped = await rest.api("POST", f"rentals/{rental_id}/stop")
    assert stopped.status_code == 200, stopped.text
    _assert_secrets_nowhere(
        [first_sid, _saved_sid(credentials), *codes], rest, caplog, jp_logging_stream
    )


async def test_a_sid_from_the_environment_is_replaced_until_a_restart(
    jp_serverapp: Any,
    http_server: Any,
    sandbox: Any,
    account: Any,
    credentials: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The server read GPUOUTLET_SID when it was made; a sign-in replaces it for this process.
    manager = gpuoutlet_app(jp_serverapp).manager
    assert manager.settings.sid is None
    monkeypatch.setenv("GPUOUTLET_SID", account.sid)
    pinned_manager = RentalsManager(manager.config)
    await pinned_manager.start()
    try:
        assert pinned_manager.host.pinned == "the GPUOUTLET_SID environment variable"
        await pinned_manager.signin.request_code({"email": account.email})
        code = sandbox.sign_in_code(account.email)
        signed = await pinned_manager.signin.verify_code({"email": account.email, "code": code})
        assert "GPUOUTLET_SID" in signed["note"] and "after a restart" in signed["note"]
        status = await pinned_manager.status()
        assert str(credentials) in status["sidSource"]
        assert pinned_manager.settings.sid is not None
        assert pinned_manager.settings.sid.get_secret_value() == _saved_sid(credentials)
        out = await pinned_manager.signin.sign_out()
        assert "GPUOUTLET_SID environment variable still holds a session" in (out["note"] or "")
    finally:
        await pinned_manager.stop()


async def test_the_auth_endpoints_need_jupyters_auth(server: Any, account: Any) -> None:
    rest = await start_extension(server)
    body = {"email": account.email}
    anonymous = await rest.call("POST", "gpuoutlet/api/auth/request-code", auth=None, json=body)
    assert anonymous.status_code == 403
    # A cookie-authenticated POST without the XSRF token is refused too.
    async with httpx.AsyncClient(base_url=rest.url) as browser:
        login = await browser.get(f"login?token={rest.jupyter_token}")
        assert login.status_code < 400
        refused = await browser.post("gpuoutlet/api/auth/logout")
        assert refused.status_code == 403
    # The kernel token works (%gpu_login in a notebook of this server).
    auth = await rest.api("GET", "auth", auth="kernel")
    assert auth.status_code == 200 and auth.json()["sessionState"] == "signed_out"
