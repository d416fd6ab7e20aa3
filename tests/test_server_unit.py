"""The server extension's plain parts, without a Jupyter server: errors, parsing, settings, manager."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers.vendor import Reply, VendorStub, vendor_examples, vendor_stub
from pydantic import SecretStr

from gpuoutlet_jupyter.api import (
    APIError,
    AsyncRentalsClient,
    ConfigurationError,
    InsufficientBalanceError,
    KeyNotOnAccountError,
    MalformedResponseError,
    ModelUnavailableError,
    NotFoundError,
    RateLimitedError,
    RequestValidationError,
    RetryPolicy,
    ServerError,
    Settings,
    SpendingCapError,
    TransportError,
    UnknownFamilyError,
    ValidationFailedError,
)
from gpuoutlet_jupyter.rest.errors import (
    ExtensionUnavailableError,
    InvalidBodyError,
    InvalidQueryError,
    error_reply,
)
from gpuoutlet_jupyter.rest.layer import LongPoll, parse_json_object, parse_long_poll
from gpuoutlet_jupyter.server.auth import KernelToken
from gpuoutlet_jupyter.server.manager import (
    SID_SETTING_SOURCE,
    ManagerConfig,
    RentalsManager,
    resolve_settings,
)
from gpuoutlet_jupyter.service import ServiceConfig, ServiceOptions
from gpuoutlet_jupyter.ssh import local_key

SID = "sid-unit-4f1c9e0b7a6d"
UPSTREAM = "http://upstream.invalid"
QUIET = ServiceOptions(poll_interval=30, reconcile_interval=0)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("GPUOUTLET_SID", "GPUOUTLET_API_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GPUOUTLET_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))


# --- the kernel token ------------------------------------------------------------------


def test_kernel_token_matches_only_its_own_header_value() -> None:
    token = KernelToken()
    assert len(token.value) >= 32
    assert token.matches(f"token {token.value}")
    assert token.matches(f"Token  {token.value} ")
    assert token.matches(f"Bearer {token.value}")
    assert not token.matches(None)
    assert not token.matches("")
    assert not token.matches(token.value)
    assert not token.matches(f"token {token.value}x")
    assert not token.matches(f"basic {token.value}")
    assert not token.matches("token \udcff\u00e9")
    assert token.value not in repr(token)
    assert KernelToken().value != token.value


# --- errors: the upstream's meaning kept -----------------------------------------------


def _api(cls: type[APIError], status: int, code: str, **kwargs: Any) -> APIError:
    return cls(
        f"message for {code}",
        status_code=status,
        code=code,
        api_message="upstream says",
        details=kwargs.pop("details", {}),
        **kwargs,
    )


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (
            RequestValidationError([("gpuCount", "must be one of 1, 2, 4, 8")]),
            400,
            "validation_error",
        ),
        (InvalidQueryError([("wait", "must be a number")]), 400, "validation_error"),
        (InvalidBodyError("not JSON"), 400, "invalid_json"),
        (ConfigurationError("set GPUOUTLET_SID"), 503, "not_configured"),
        (ExtensionUnavailableError("starting", code="starting"), 503, "starting"),
        (TransportError("cannot reach", url=UPSTREAM), 502, "upstream_unreachable"),
        (
            MalformedResponseError("garbled", status_code=200, url=UPSTREAM),
            502,
            "upstream_malformed",
        ),
        (_api(NotFoundError, 404, "rental_not_found"), 404, "rental_not_found"),
        # The API's 5xx is a bad gateway here: our own 500 means a bug in the extension.
        (_api(ServerError, 503, "internal_error"), 502, "internal_error"),
        (_api(APIError, 409, "conflict"), 409, "conflict"),
        (
            SpendingCapError(cap_cents=100, burn_cents_per_hour=0, price_cents_per_hour=None),
            409,
            "spending_cap",
        ),
        (KeyNotOnAccountError(fingerprint="SHA256:x"), 409, "key_not_on_account"),
        (
            UnknownFamilyError("rtx-4009", known=["rtx-4090"], suggestions=["rtx-4090"]),
            400,
            "unknown_family",
        ),
    ],
)
def test_error_reply_status_and_code(exc: Exception, status: int, code: str) -> None:
    reply = error_reply(exc)
    assert reply is not None
    assert (reply.status, reply.code) == (status, code)
    assert reply.body["error"]["message"] == str(exc)
    json.dumps(reply.body)


def test_error_reply_validation_lists_the_problems() -> None:
    reply = error_reply(RequestValidationError([("gpuCount", "must be one of 1, 2, 4, 8")]))
    assert reply is not None
    assert reply.body["error"]["problems"] == [
        {"field": "gpuCount", "problem": "must be one of 1, 2, 4, 8"}
    ]


def test_error_reply_short_wallet_keeps_the_amounts_and_the_upstream_details() -> None:
    exc = InsufficientBalanceError(
        "Not enough balance.",
        needed_cents=65,
        available_cents=50,
        status_code=403,
        code="insufficient_balance",
        api_message="upstream says",
        details={"neededCents": 65, "availableCents": 50, "code": "spoof", "extra": 1},
    )
    reply = error_reply(exc)
    assert reply is not None
    error = reply.body["error"]
    assert reply.status == 403
    assert error["code"] == "insufficient_balance"
    assert (error["neededCents"], error["availableCents"]) == (65, 50)
    assert error["details"]["extra"] == 1 and error["upstreamMessage"] == "upstream says"
    assert error["message"] == "Not enough balance."


def test_error_reply_validation_failed_lists_each_field() -> None:
    exc = ValidationFailedError(
        "bad",
        fields=[("gpuCount", "must be 1, 2, 4 or 8")],
        status_code=400,
        code="validation_failed",
        api_message="Invalid body",
        details={"gpuCount": "must be 1, 2, 4 or 8"},
    )
    reply = error_reply(exc)
    assert reply is not None and reply.status == 400
    assert reply.body["error"]["problems"] == [
        {"field": "gpuCount", "problem": "must be 1, 2, 4 or 8"}
    ]


def test_error_reply_429_says_when_to_retry() -> None:
    exc = RateLimitedError(
        "slow down",
        retry_after=2.2,
        status_code=429,
        code="rate_limited",
        api_message="slow down",
        details={},
    )
    reply = error_reply(exc)
    assert reply is not None
    assert reply.status == 429
    assert reply.headers == {"Retry-After": "3"}
    assert reply.body["error"]["retryAfterSeconds"] == 3


def test_error_reply_leaves_unknown_exceptions_to_the_500_path() -> None:
    assert error_reply(RuntimeError("bug")) is None


# --- parsing ---------------------------------------------------------------------------


def test_parse_long_poll() -> None:
    assert parse_long_poll(None, None, max_wait=60) is None
    assert parse_long_poll("5", "3", max_wait=60) == LongPoll(wait=5.0, since=3)
    assert parse_long_poll("0.5", "-1", max_wait=60) == LongPoll(wait=0.5, since=-1)
    assert parse_long_poll("3600", "0", max_wait=60) == LongPoll(wait=60.0, since=0)
    for wait, since in [("x", "1"), ("-1", "1"), ("nan", "1"), ("inf", "1"), ("1", "1.5")]:
        with pytest.raises(InvalidQueryError):
            parse_long_poll(wait, since, max_wait=60)
    with pytest.raises(InvalidQueryError) as info:
        parse_long_poll("5", None, max_wait=60)
    assert "since" in str(info.value)
    with pytest.raises(InvalidQueryError):
        parse_long_poll(None, "5", max_wait=60)


def test_parse_json_object() -> None:
    assert parse_json_object(b'{"familyId": "rtx-4090"}') == {"familyId": "rtx-4090"}
    for body in (b"", b"  ", b"{", b"[1]", b'"x"', b"\xff"):
        with pytest.raises(InvalidBodyError) as info:
            parse_json_object(body)
        assert "JSON object" in str(info.value)


@pytest.mark.parametrize(
    "body", [b"[" * 200_000, b'{"a":' * 200_000, b"[" * 100_000 + b"]" * 100_000]
)
def test_parse_json_object_refuses_deep_nesting_as_a_bad_body(body: bytes) -> None:
    """json.loads recurses once per level: a deep body is a 400, never a RecursionError (500)."""
    with pytest.raises(InvalidBodyError) as info:
        parse_json_object(body)
    assert "nested" in str(info.value) and "JSON object" in str(info.value)


# --- settings: where the sid comes from ------------------------------------------------


_SERVICE_FIELDS = {
    "state_dir",
    "ssh_dir",
    "ssh_user",
    "identity_file",
    "options",
    "kernelspecs",
    "request_timeout",
}


def _config(tmp_path: Path, **kwargs: Any) -> ManagerConfig:
    service = {k: kwargs.pop(k) for k in list(kwargs) if k in _SERVICE_FIELDS}
    service.setdefault("ssh_dir", tmp_path / "ssh")
    service.setdefault("options", QUIET)
    service.setdefault("state_dir", tmp_path / "state")
    # No kernelspecs from unit tests: they would land in the real Jupyter data dir.
    service.setdefault("kernelspecs", False)
    return ManagerConfig(service=ServiceConfig(**service), **kwargs)


def test_settings_from_the_server_config(tmp_path: Path) -> None:
    settings, problem = resolve_settings(
        _config(tmp_path, api_url="http://127.0.0.1:9/", sid=SecretStr(SID), request_timeout=7)
    )
    assert problem is None
    assert settings.api_url == "http://127.0.0.1:9"
    assert settings.sid is not None and settings.sid.get_secret_value() == SID
    assert settings.sid_source == SID_SETTING_SOURCE
    assert settings.timeout_seconds == 7


def test_settings_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUOUTLET_SID", SID)
    monkeypatch.setenv("GPUOUTLET_API_URL", "http://127.0.0.1:10")
    settings, problem = resolve_settings(_config(tmp_path))
    assert problem is None
    assert settings.api_url == "http://127.0.0.1:10"
    assert settings.sid_source == "the GPUOUTLET_SID environment variable"
    # The server's own setting wins over the environment.
    settings, _ = resolve_settings(_config(tmp_path, api_url="http://127.0.0.1:11"))
    assert settings.api_url == "http://127.0.0.1:11"


def test_settings_from_the_credentials_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(f"sid={SID}\napi_url=http://127.0.0.1:12\n")
    credentials.chmod(0o600)
    monkeypatch.setenv("GPUOUTLET_CREDENTIALS_FILE", str(credentials))
    settings, problem = resolve_settings(_config(tmp_path))
    assert problem is None
    assert settings.sid_source == str(credentials)
    assert settings.api_url == "http://127.0.0.1:12"
    credentials.chmod(0o644)
    settings, problem = resolve_settings(_config(tmp_path))
    assert problem is not None and "chmod 600" in problem
    assert settings.sid is None


async def test_no_sid_is_no_problem_but_a_how_to_sign_in(tmp_path: Path) -> None:
    settings, problem = resolve_settings(_config(tmp_path))
    assert settings.sid is None
    assert problem is None  # signed out: the server waits for a sign-in
    manager = RentalsManager(_config(tmp_path))
    await manager.start()
    status = await manager.status()
    assert status["configured"] is False and status["sessionState"] == "signed_out"
    for how in ("Sign in to gpuoutlet", "%gpu_login you@example.com", "GPUOUTLET_SID"):
        assert how in status["problem"]
    with pytest.raises(ConfigurationError, match="%gpu_login"):
        await manager.api.wallet()
    await manager.stop()


@pytest.mark.parametrize("bad", ["abc\ndef-0123456789", "\u201cabc-0123456789\u201d"])
def test_a_sid_setting_that_is_not_a_cookie_value_is_a_problem_not_echoed(
    tmp_path: Path, bad: str
) -> None:
    settings, problem = resolve_settings(
        _config(tmp_path, api_url="http://127.0.0.1:9/", sid=SecretStr(bad))
    )
    assert problem is not None and SID_SETTING_SOURCE in problem
    assert "0123456789" not in problem and "abc" not in problem
    assert settings.sid is None


def test_bad_api_url_is_a_configuration_problem(tmp_path: Path) -> None:
    _, problem = resolve_settings(_config(tmp_path, api_url="ftp://x", sid=SecretStr(SID)))
    assert problem is not None and "https://" in problem


# --- the manager, over the sheet's examples ------------------------------------------

LISTING = vendor_examples()["catalog_listings"]["response"]["listings"][0]
RTX = {
    **LISTING,
    "id": "lst_rtx",
    "model": "RTX_4090",
    "family": "rtx-4090",
    "vramGb": 24,
    "pricePerHourCents": 65,
}


@pytest.fixture
def stub() -> Any:
    with vendor_stub() as s:
        s.route("GET", "/v1/rentals", Reply(200, {"rentals": [], "nextCursor": None}))
        s.route(
            "GET",
            "/v1/catalog/listings",
            Reply(200, {"listings": [RTX, LISTING], "nextCursor": None}),
        )
        yield s


def _manager(tmp_path: Path, stub: VendorStub, **kwargs: Any) -> RentalsManager:
    kwargs.setdefault("api_url", stub.url)
    kwargs.setdefault("sid", SecretStr(SID))

    def make(settings: Settings) -> AsyncRentalsClient:
        return AsyncRentalsClient(settings, retry=RetryPolicy(attempts=1))

    return RentalsManager(_config(tmp_path, **kwargs), client_factory=make)


def _our_key_on_the_account(stub: VendorStub, tmp_path: Path) -> None:
    """The account lists the key the manager's SSH entries use (generated in tmp_path/ssh)."""
    from gpuoutlet_jupyter.ssh import resolve_identity

    local = local_key(resolve_identity(tmp_path / "ssh"))
    key = {
        **vendor_examples()["ssh_key_list"]["response"]["keys"][0],
        "fingerprint": local.fingerprint,
    }
    stub.route("GET", "/v1/ssh-keys", Reply(200, {"keys": [key]}))


@pytest.mark.asyncio
async def test_manager_without_sid_answers_not_configured(tmp_path: Path, stub: VendorStub) -> None:
    manager = _manager(tmp_path, stub, sid=None)
    await manager.start()
    status = await manager.status()
    assert status["configured"] is False
    assert status["sidConfigured"] is False
    assert status["state"] == "not_configured"
    assert status["session"] is None
    assert "GPUOUTLET_SID" in status["problem"]
    with pytest.raises(ConfigurationError) as info:
        await manager.api.families()
    assert "GPUOUTLET_SID" in str(info.value)
    # A request is validated before anything else, configured or not.
    with pytest.raises(RequestValidationError):
        await manager.api.create({"familyId": "rtx-4090", "gpuCount": 3})
    # The templates are the vendor's documentation: they need no session.
    assert len((await manager.api.templates())["templates"]) == 6
    await manager.stop()
    assert stub.requests == []


@pytest.mark.asyncio
async def test_manager_status_says_who_is_signed_in(tmp_path: Path, stub: VendorStub) -> None:
    manager = _manager(tmp_path, stub)
    await manager.start()
    try:
        status = await manager.status()
        assert status["configured"] is True and status["state"] == "running"
        assert status["sidSource"] == SID_SETTING_SOURCE
        assert status["session"]["email"] == "you@example.com"
        assert status["session"]["expiresAt"] == "2026-07-07T08:14:22Z"
        assert "permanent" in status["stopNotice"]
        assert SID not in json.dumps(status)
        await manager.status()
        # auth/me is asked once for every viewer (cached), however often the status is read.
        assert stub.paths().count("GET /v1/auth/me") == 1
    finally:
        await manager.stop()


@pytest.mark.asyncio
async def test_manager_create_checks_the_key_then_quotes_then_creates_once(
    tmp_path: Path, stub: VendorStub
) -> None:
    manager = _manager(tmp_path, stub)
    await manager.start()
    try:
        # The example account's key is not this machine's: refused before money moves.
        with pytest.raises(KeyNotOnAccountError) as refused:
            await manager.api.create({"familyId": "rtx-4090", "gpuCount": 1})
        assert "%gpu_keys add" in str(refused.value)
        assert "POST /v1/rentals" not in stub.paths()

        _our_key_on_the_account(stub, tmp_path)
        view = await manager.api.create(
            {"familyId": "rtx-4090", "gpuCount": 1, "templateId": "pytorch"}
        )
        assert view["id"] == "rent_01H..." and view["version"] >= 1
        assert view["templateId"] == "pytorch"
        assert view["quote"]["estimatedProvisionSeconds"] == 45
        assert view["provisioning"]["expectedSeconds"] == 45
        posts = [s for s in stub.requests if s.method == "POST"]
        assert [p.path for p in posts] == ["/v1/rentals/preview", "/v1/rentals"]
        assert posts[-1].body == {"familyId": "rtx-4090", "gpuCount": 1, "templateId": "pytorch"}
        assert "idempotency-key" not in posts[-1].headers
        assert posts[-1].headers["cookie"] == f"sid={SID}"
        listed = await manager.api.rentals()
        assert [r["id"] for r in listed["rentals"]] == ["rent_01H..."]
        assert listed["version"] == view["version"]

        with pytest.raises(UnknownFamilyError, match="rtx-4090"):
            await manager.api.create({"familyId": "rtx-4009"})
    finally:
        await manager.stop()


@pytest.mark.asyncio
async def test_manager_create_refuses_a_short_wallet_from_the_quote(
    tmp_path: Path, stub: VendorStub
) -> None:
    _our_key_on_the_account(stub, tmp_path)
    poor = {**vendor_examples()["billing_balance"]["response"], "availableCents": 100}
    stub.route("GET", "/v1/billing/balance", Reply(200, poor))
    manager = _manager(tmp_path, stub)
    await manager.start()
    try:
        with pytest.raises(InsufficientBalanceError) as info:
            await manager.api.create({"familyId": "h100-80gb"})
        assert (info.value.needed_cents, info.value.available_cents) == (280, 100)
        assert "Nothing was sent" in str(info.value)
        reply = error_reply(info.value)
        assert reply is not None and reply.status == 403
        assert "POST /v1/rentals" not in stub.paths()
        preview = await manager.api.preview({"familyId": "h100-80gb"})
        assert [p["code"] for p in preview["problems"]] == ["insufficient_balance"]
        assert "$2.80" in preview["confirmation"]
    finally:
        await manager.stop()


@pytest.mark.asyncio
async def test_manager_cap_fails_closed_without_a_quote(tmp_path: Path, stub: VendorStub) -> None:
    _our_key_on_the_account(stub, tmp_path)
    stub.route(
        "POST", "/v1/rentals/preview", Reply(503, {"error": "internal_error", "message": "down"})
    )
    manager = _manager(
        tmp_path,
        stub,
        options=ServiceOptions(poll_interval=30, reconcile_interval=0, max_hourly_spend_cents=1000),
    )
    await manager.start()
    try:
        with pytest.raises(SpendingCapError, match="cannot be checked") as info:
            await manager.api.create({"familyId": "rtx-4090"})
        assert info.value.price_cents_per_hour is None
        assert "POST /v1/rentals" not in stub.paths()
    finally:
        await manager.stop()


@pytest.mark.asyncio
async def test_manager_no_capacity_names_what_is_available(
    tmp_path: Path, stub: VendorStub
) -> None:
    _our_key_on_the_account(stub, tmp_path)
    stub.route(
        "POST",
        "/v1/rentals/preview",
        Reply(
            400, {"error": "model_unavailable", "message": "No provider available for this config"}
        ),
    )
    manager = _manager(tmp_path, stub)
    await manager.start()
    try:
        with pytest.raises(ModelUnavailableError) as info:
            await manager.api.create({"familyId": "rtx-4090", "region": "JP"})
        assert info.value.alternatives == ["rtx-4090 ×1 in US-East", "h100-80gb ×1 from $2.80/h"]
        reply = error_reply(info.value)
        assert reply is not None and reply.body["error"]["alternatives"] == info.value.alternatives
    finally:
        await manager.stop()


@pytest.mark.asyncio
async def test_manager_garbled_upstream_is_malformed(tmp_path: Path, stub: VendorStub) -> None:
    stub.route("GET", "/v1/billing/balance", Reply(200, b"<html>"))
    manager = _manager(tmp_path, stub)
    await manager.start()
    try:
        with pytest.raises(MalformedResponseError):
            await manager.api.wallet()
    finally:
        await manager.stop()
    with pytest.raises(ExtensionUnavailableError):
        await manager.api.rentals()


@pytest.mark.asyncio
async def test_manager_long_poll_returns_at_the_cap_without_a_change(
    tmp_path: Path, stub: VendorStub
) -> None:
    manager = _manager(tmp_path, stub)
    await manager.start()
    try:
        listed = await manager.api.rentals(LongPoll(wait=0.05, since=0))
        assert listed == {"rentals": [], "version": 0, "apiProblem": None}
    finally:
        await manager.stop()


@pytest.mark.asyncio
async def test_manager_start_failure_is_reported_not_raised(
    tmp_path: Path, stub: VendorStub
) -> None:
    blocker = tmp_path / "state-is-a-file"
    blocker.write_text("")
    manager = _manager(tmp_path, stub, state_dir=blocker / "sub")
    await manager.start()
    status = await manager.status()
    assert status["configured"] is False
    assert "could not start" in status["problem"]
    with pytest.raises(ConfigurationError):
        await manager.api.rentals()
    await manager.stop()


@pytest.mark.asyncio
@pytest.mark.parametrize("where", ["environment", "setting"])
async def test_manager_with_a_malformed_sid_starts_and_says_so(
    tmp_path: Path,
    stub: VendorStub,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    where: str,
) -> None:
    """A pasted sid with curly quotes: start() does not raise, and the status says why."""
    bad = "\u201csid-0123456789abcdef\u201d"
    caplog.set_level(logging.DEBUG)
    if where == "environment":
        monkeypatch.setenv("GPUOUTLET_SID", bad)
        monkeypatch.setenv("GPUOUTLET_API_URL", stub.url)
        manager = _manager(tmp_path, stub, sid=None, api_url="")
    else:
        manager = _manager(tmp_path, stub, sid=SecretStr(bad))
    await manager.start()
    status = await manager.status()
    assert status["configured"] is False and status["state"] == "not_configured"
    assert status["problem"] and "sid" in status["problem"]
    with pytest.raises(ConfigurationError):
        await manager.api.rentals()
    await manager.stop()
    assert not stub.requests
    assert "0123456789abcdef" not in json.dumps(status) + caplog.text


@pytest.mark.asyncio
async def test_manager_start_never_raises_when_the_client_cannot_be_built(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Whatever goes wrong while the client is built, start() reports it, and only its type
    (its arguments may hold the sid)."""

    def explode(settings: Settings) -> AsyncRentalsClient:
        raise UnicodeEncodeError("ascii", "sid=secret-0123456789", 4, 5, "no")

    caplog.set_level(logging.DEBUG)
    manager = RentalsManager(
        _config(tmp_path, api_url=UPSTREAM, sid=SecretStr(SID)), client_factory=explode
    )
    await manager.start()
    status = await manager.status()
    assert status["configured"] is False and "UnicodeEncodeError" in status["problem"]
    with pytest.raises(ConfigurationError):
        await manager.api.rentals()
    await manager.stop()
    assert "secret-0123456789" not in json.dumps(status) + caplog.text


@pytest.mark.asyncio
async def test_manager_bad_ssh_settings_are_a_configuration_problem(
    tmp_path: Path, stub: VendorStub
) -> None:
    manager = _manager(tmp_path, stub, ssh_user="root\nProxyCommand x")
    await manager.start()
    assert "ssh_user" in (await manager.status())["problem"]
    await manager.stop()


@pytest.mark.asyncio
async def test_manager_requests_wait_for_the_start(tmp_path: Path, stub: VendorStub) -> None:
    manager = _manager(tmp_path, stub)
    pending = asyncio.ensure_future(manager.api.rentals())
    await asyncio.sleep(0.01)
    assert not pending.done()
    await manager.start()
    assert (await pending)["rentals"] == []
    await manager.stop()


# --- packaging -------------------------------------------------------------------------


def test_kernel_side_import_stays_light() -> None:
    code = (
        "import sys, gpuoutlet_jupyter, gpuoutlet_jupyter.server as s;"
        "assert s.ENV_SERVER_URL == 'GPUOUTLET_SERVER_URL';"
        "bad = [m for m in ('tornado', 'jupyter_server') if m in sys.modules];"
        "assert not bad, bad;"
        "points = gpuoutlet_jupyter._jupyter_server_extension_points();"
        "assert points[0]['app'].name == 'gpuoutlet';"
        "assert 'jupyter_server' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_jupyter_server_extension_list_shows_it_ok() -> None:
    jupyter = Path(sys.executable).with_name("jupyter")
    if not jupyter.exists():
        pytest.skip("no jupyter command next to this interpreter")
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER_")}
    result = subprocess.run(
        [str(jupyter), "server", "extension", "list"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "NO_COLOR": "1"},
        check=False,
    )
    output = result.stdout + result.stderr
    lines = output.splitlines()
    enabled = [
        i for i, line in enumerate(lines) if "gpuoutlet_jupyter" in line and "enabled" in line
    ]
    assert enabled, output
    after = "\n".join(lines[enabled[0] : enabled[0] + 4])
    assert "OK" in after, output
    assert "X " not in after and "error" not in after.lower(), output


# --- the ExtensionApp's traitlets ------------------------------------------------------


def test_app_traits_map_onto_the_manager_config(monkeypatch: pytest.MonkeyPatch) -> None:
    from traitlets import TraitError

    from gpuoutlet_jupyter.server.app import GpuOutletApp

    monkeypatch.setenv("JUPYTER_DATA_DIR", "/data/jupyter")
    monkeypatch.setenv("HOME", "/home/alice")
    app = GpuOutletApp()
    assert app.name == "gpuoutlet"
    assert (app.ssh_user, app.poll_interval, app.max_wait) == ("root", 2.0, 60.0)
    config = app.manager_config()
    assert config.service.state_dir == Path("/data/jupyter/gpuoutlet")
    assert config.service.ssh_dir is None  # the SSH writer's default, ~/.ssh
    assert config.sid is None and config.api_url == "" and config.service.identity_file is None
    assert config.service.options.poll_interval == 2.0

    app = GpuOutletApp(sid=f" {SID} ", identity_file="~/keys/id", poll_interval=0.1, max_polls=5)
    config = app.manager_config()
    assert config.sid is not None and config.sid.get_secret_value() == SID
    assert SID not in repr(config)
    assert config.service.identity_file == Path("/home/alice/keys/id")
    assert (config.service.options.poll_interval, config.service.options.max_polls) == (0.1, 5)
    for bad in ({"poll_interval": 0}, {"max_polls": 0}, {"max_wait": -1}):
        with pytest.raises(TraitError):
            GpuOutletApp(**bad)


def test_the_readme_says_what_the_sid_protection_covers_and_what_it_does_not() -> None:
    """Code in a kernel runs as the user: it can read /proc/<server pid>/environ and the
    credentials file. The README must not promise more than the code keeps."""
    readme = " ".join((Path(__file__).resolve().parent.parent / "README.md").read_text().split())
    assert "never by notebooks" not in readme
    covered, _, rest = readme.partition("**Not protected: code you run as yourself.**")
    assert rest, "the README has no 'Not protected' statement"
    for kept_out_of in ("REST response", "log line", "notebook output", "command line", "pod"):
        assert kept_out_of in covered.split("What the sid protection covers")[-1], kept_out_of
    for reachable in ("/proc/<server pid>/environ", "credentials file", "os.environ"):
        assert reachable in rest, reachable


@pytest.mark.asyncio
async def test_viewers_do_not_multiply_upstream_requests(tmp_path: Path, stub: VendorStub) -> None:
    """Twenty viewers reading at once: one upstream request per account endpoint, cached."""
    manager = _manager(tmp_path, stub)
    await manager.start()
    try:
        stub.requests.clear()
        reads = [manager.api.wallet, manager.api.families, manager.api.keys, manager.status]
        await asyncio.gather(*(read() for read in reads for _ in range(20)))
        await asyncio.gather(*(read() for read in reads for _ in range(20)))  # within the TTLs
        assert sorted(stub.paths()) == [
            "GET /v1/auth/me",
            "GET /v1/billing/balance",
            "GET /v1/catalog/listings",
            "GET /v1/ssh-keys",
        ]
    finally:
        await manager.stop()


@pytest.mark.asyncio
async def test_an_expired_session_is_not_asked_again_by_every_viewer(
    tmp_path: Path, stub: VendorStub
) -> None:
    stub.route(
        "GET", "/v1/auth/me", Reply(401, vendor_examples()["error_unauthorized"]["response"])
    )
    manager = _manager(tmp_path, stub)
    await manager.start()
    try:
        for _ in range(10):
            status = await manager.status()
            assert status["session"] is None and "session has expired" in status["sessionProblem"]
        assert stub.paths().count("GET /v1/auth/me") == 1
    finally:
        await manager.stop()
