"""The extension in a Jupyter server without a sid: it starts, says how to configure, and guards access.

pytest-jupyter runs the server; these are plain `async def` tests (no asyncio mark).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers.server import server_config, start_extension

from gpuoutlet_jupyter.server import ENV_SERVER_TOKEN, ENV_SERVER_URL

# Until tests/conftest.py loads it for the whole run.


# Nothing from the developer's own environment or credentials file leaks into these tests.
pytestmark = pytest.mark.usefixtures("no_gpuoutlet_env")


@pytest.fixture
def jp_server_config(tmp_path: Path) -> dict[str, Any]:
    return server_config(tmp_path)


def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str)
    return error


async def test_without_a_sid_the_server_starts_and_says_how_to_set_one(server: Any) -> None:
    rest = await start_extension(server)
    response = await rest.api("GET", "status")
    assert response.status_code == 200
    status = response.json()
    assert status["configured"] is False
    assert status["sidConfigured"] is False and status["sidSource"] is None
    assert status["apiUrl"] == "https://gpuoutlet.ai"
    assert status["version"]
    assert "GPUOUTLET_SID" in status["problem"]

    for method, path in [
        ("GET", "families"),
        ("GET", "wallet"),
        ("GET", "rentals"),
        ("GET", "rentals/rent_abc"),
        ("POST", "rentals/rent_abc/stop"),
    ]:
        response = await rest.api(method, path)
        assert response.status_code == 503, (method, path)
        error = _error(response)
        assert error["code"] == "not_configured"
        assert "GPUOUTLET_SID" in error["message"] and "credentials" in error["message"]
    response = await rest.api("POST", "rentals", json={"familyId": "rtx-4090"})
    assert response.status_code == 503 and _error(response)["code"] == "not_configured"


#: The secret part of the malformed sids below: it must show nowhere.
SID_SECRET = "sid-secret-part-0123456789abcdef"


@pytest.fixture(
    params=[f"{SID_SECRET}\nX-Injected: yes", f"\u201c{SID_SECRET}\u201d"],
    ids=["line-break", "curly-quotes"],
)
def malformed_sid(request: Any, sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """A sid pasted with a line break or curly quotes, in the server's environment."""
    monkeypatch.setenv("GPUOUTLET_API_URL", sandbox.url)
    monkeypatch.setenv("GPUOUTLET_SID", request.param)
    return str(request.param)


async def test_a_malformed_sid_is_a_configuration_problem_never_echoed(
    malformed_sid: str, server: Any, caplog: pytest.LogCaptureFixture, jp_logging_stream: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    rest = await start_extension(server)
    status = (await rest.api("GET", "status")).json()
    assert status["configured"] is False and status["state"] == "not_configured"
    assert "GPUOUTLET_SID environment variable" in status["problem"]
    for method, path in [("GET", "rentals"), ("GET", "wallet"), ("POST", "rentals/rent_a/stop")]:
        response = await rest.api(method, path)
        assert response.status_code == 503, (path, response.text)
        assert _error(response)["code"] == "not_configured"
    response = await rest.api("POST", "rentals", json={"familyId": "rtx-4090"})
    assert response.status_code == 503
    for text in [*rest.bodies, caplog.text, jp_logging_stream.getvalue()]:
        assert SID_SECRET not in text


async def test_requests_are_checked_before_anything_else(server: Any) -> None:
    rest = await start_extension(server)
    response = await rest.api("POST", "rentals", json={"familyId": "rtx-4090", "gpuCount": 3})
    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == "validation_error"
    assert error["problems"] == [
        {"field": "gpuCount", "problem": "must be one of 1, 2, 4, 8 (got 3)"}
    ]
    assert "gpuCount" in error["message"]

    response = await rest.api("POST", "rentals", content=b"{not json")
    assert response.status_code == 400 and _error(response)["code"] == "invalid_json"
    response = await rest.api("POST", "rentals", json=["rtx-4090"])
    assert response.status_code == 400 and "JSON object" in _error(response)["message"]

    response = await rest.api("GET", "rentals", params={"wait": "soon", "since": "1"})
    assert response.status_code == 400
    assert _error(response)["problems"][0]["field"] == "wait"
    response = await rest.api("GET", "rentals/rent_abc", params={"wait": "5"})
    assert response.status_code == 400
    assert _error(response)["problems"][0]["field"] == "since"


async def test_a_deeply_nested_body_is_a_400_not_a_500(server: Any) -> None:
    rest = await start_extension(server)
    for path in ("rentals", "rentals/rent_abc/keep"):
        response = await rest.api("POST", path, content=b"[" * 200_000)
        assert response.status_code == 400, (path, response.text[:300])
        error = _error(response)
        assert error["code"] == "invalid_json" and "nested" in error["message"]
        assert "Traceback" not in response.text


async def test_only_authenticated_requests_get_through(server: Any) -> None:
    rest = await start_extension(server)
    for path in ("status", "rentals"):
        response = await rest.api("GET", path, auth=None)
        assert response.status_code == 403, path
        assert _error(response)["code"] == "forbidden"
        response = await rest.api("GET", path, auth="token not-the-token-at-all-0123456789")
        assert response.status_code == 403, path
    response = await rest.api("POST", "rentals", auth=None, json={"familyId": "rtx-4090"})
    assert response.status_code == 403
    # The kernel token is for the Authorization header only, never a query argument.
    response = await rest.api("GET", "status", auth=None, params={"token": rest.kernel_token})
    assert response.status_code == 403


async def test_the_kernel_token_opens_these_handlers_only(server: Any) -> None:
    rest = await start_extension(server)
    assert rest.kernel_token != rest.jupyter_token

    response = await rest.api("GET", "status", auth="kernel")
    assert response.status_code == 200 and response.json()["configured"] is False
    # POST without any XSRF cookie: a token needs none.
    response = await rest.api("POST", "rentals", auth="kernel", json={"gpuCount": 3})
    assert response.status_code == 400
    # The host check still applies.
    response = await rest.api("GET", "status", auth="kernel", headers={"Host": "evil.example"})
    assert response.status_code == 403

    # Jupyter's own API refuses it, and accepts the user's token.
    for path in ("api/kernels", "api/sessions", "api/contents"):
        response = await rest.call("GET", path, auth="kernel")
        assert response.status_code == 403, path
    response = await rest.call("POST", "api/kernels", auth="kernel", json={})
    assert response.status_code == 403
    response = await rest.call("GET", "api/kernels", auth="jupyter")
    assert response.status_code == 200


async def test_cookie_requests_need_the_xsrf_token_to_change_anything(server: Any) -> None:
    rest = await start_extension(server)
    async with httpx.AsyncClient(base_url=rest.url, timeout=30) as browser:
        # A token-authenticated request sets the login cookie, as when a browser opens the URL.
        response = await rest.call("GET", "api/status", client=browser)
        assert response.status_code == 200
        assert browser.cookies, "the server set no login cookie"

        response = await rest.api("GET", "status", auth=None, client=browser)
        assert response.status_code == 200

        body = {"familyId": "rtx-4090", "gpuCount": 3}
        response = await rest.api("POST", "rentals", auth=None, client=browser, json=body)
        assert response.status_code == 403

        browser.cookies.set("_xsrf", "0123456789abcdef")
        response = await rest.api(
            "POST",
            "rentals",
            auth=None,
            client=browser,
            json=body,
            headers={"X-XSRFToken": "0123456789abcdef"},
        )
        assert response.status_code == 400  # through authentication, stopped by validation


async def test_the_server_url_and_token_are_published_for_kernels_only_while_running(
    server: Any, jp_base_url: str
) -> None:
    rest = await start_extension(server)
    assert os.environ[ENV_SERVER_URL] == rest.url
    assert rest.url.startswith("http") and rest.url.endswith(jp_base_url)
    assert str(server.port) in rest.url
    await server.extension_manager.stop_all_extensions()
    assert ENV_SERVER_URL not in os.environ
    assert ENV_SERVER_TOKEN not in os.environ
    response = await rest.api("GET", "rentals")
    assert response.status_code == 503 and _error(response)["code"] == "stopped"


KERNEL_CODE = """
import json, os, urllib.error, urllib.request
base = os.environ["GPUOUTLET_SERVER_URL"]
token = os.environ["GPUOUTLET_SERVER_TOKEN"]
def status(path):
    request = urllib.request.Request(base + path, headers={"Authorization": "token " + token})
    try:
        return urllib.request.urlopen(request, timeout=20).status
    except urllib.error.HTTPError as exc:
        return exc.code
print(json.dumps([status("gpuoutlet/api/status"), status("api/kernels")]))
"""


async def test_a_kernel_of_this_server_reaches_the_api_with_its_token(server: Any) -> None:
    await start_extension(server)
    kernel_id = await server.kernel_manager.start_kernel(kernel_name="python3")
    client = server.kernel_manager.get_kernel(kernel_id).client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=60)
        outputs: list[str] = []

        def keep(msg: dict[str, Any]) -> None:
            if msg["msg_type"] == "stream":
                outputs.append(msg["content"]["text"])

        reply = await client.execute_interactive(KERNEL_CODE, output_hook=keep, timeout=60)
        assert reply["content"]["status"] == "ok", reply["content"]
        assert json.loads("".join(outputs)) == [200, 403]
    finally:
        client.stop_channels()
        await server.kernel_manager.shutdown_kernel(kernel_id, now=True)
