"""The server extension under pytest-jupyter, and its REST API as a kernel or a browser calls it.

Every request goes through a fresh httpx client to the URL the extension publishes for kernels,
so no login cookie leaks from one auth check into the next; every response body is kept so a
test can check that the sid is in none of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from jupyter_client.jsonutil import json_default
from jupyter_client.session import Session
from jupyter_server.serverapp import ServerApp
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from gpuoutlet_jupyter.server import (
    API_PATH,
    ENV_SERVER_TOKEN,
    ENV_SERVER_URL,
    EXTENSION_NAME,
    GpuOutletApp,
)

API = f"{API_PATH}/"
#: Fast timing for tests: a provisioning rental is polled every 0.1 s.
FAST_TRAITS: dict[str, Any] = {
    "poll_interval": 0.1,
    "running_poll_interval": 0.2,
    "slow_poll_interval": 0.3,
    "reconcile_interval": 0.0,
    "request_timeout": 10.0,
    "max_wait": 10.0,
}


def server_config(tmp_path: Path, **traits: Any) -> dict[str, Any]:
    """A jp_server_config enabling the extension, with its files under tmp_path."""
    gpuoutlet: dict[str, Any] = {
        "state_dir": str(tmp_path / "gpuoutlet-state"),
        "ssh_dir": str(tmp_path / "ssh"),
        **FAST_TRAITS,
        **traits,
    }
    return {
        "ServerApp": {"jpserver_extensions": {"gpuoutlet_jupyter": True}},
        "GpuOutletApp": gpuoutlet,
    }


def sandbox_server_config(
    tmp_path: Path, sandbox: Any, account: Any, keypair: Any, **traits: Any
) -> dict[str, Any]:
    """`server_config` against the sandbox: its URL, the account's sid, the key its pods accept."""
    return server_config(
        tmp_path,
        api_url=sandbox.url,
        sid=account.sid,
        identity_file=str(keypair.private_key),
        **traits,
    )


@dataclass
class Rest:
    """The extension's REST API as a kernel or a browser script would call it."""

    url: str  #: the server's URL including base_url, as published to kernels
    jupyter_token: str
    kernel_token: str
    bodies: list[str] = field(default_factory=list)

    async def call(
        self,
        method: str,
        path: str,
        *,
        auth: str | None = "jupyter",
        headers: dict[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """`auth`: "jupyter" (the user's token), "kernel" (the kernel token), None, or a raw
        Authorization header value. `path` is relative to the server URL."""
        all_headers = dict(headers or {})
        if auth == "jupyter":
            all_headers["Authorization"] = f"token {self.jupyter_token}"
        elif auth == "kernel":
            all_headers["Authorization"] = f"token {self.kernel_token}"
        elif auth is not None:
            all_headers["Authorization"] = auth
        if client is None:
            async with httpx.AsyncClient(base_url=self.url, timeout=30) as fresh:
                response = await fresh.request(method, path, headers=all_headers, **kwargs)
        else:
            response = await client.request(method, path, headers=all_headers, **kwargs)
        self.bodies.append(response.text)
        return response

    async def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.call(method, API + path, **kwargs)


async def start_extension(serverapp: Any) -> Rest:
    """Run the extension's start hook (pytest-jupyter never does) and read what it published."""
    await serverapp.extension_manager.start_all_extensions()
    return Rest(
        url=os.environ[ENV_SERVER_URL],
        jupyter_token=serverapp.identity_provider.token,
        kernel_token=os.environ[ENV_SERVER_TOKEN],
    )


def gpuoutlet_app(serverapp: Any) -> GpuOutletApp:
    """The extension's app in a ServerApp (its `manager` hosts the RentalService)."""
    app: GpuOutletApp = serverapp.extension_manager.extension_points[EXTENSION_NAME].app
    return app


@contextlib.asynccontextmanager
async def another_server(make_serverapp: Callable[..., Any]) -> AsyncIterator[Any]:
    """A new ServerApp in this process (pytest-jupyter's `jp_configurable_serverapp` factory),
    listening on a free port of its own; its extensions are stopped and its port closed at exit.

    ServerApp is a singleton: the previous one must be done with. pytest-jupyter's cleanup
    then cleans up this one, the instance at teardown.
    """
    ServerApp.clear_instance()
    sock, port = bind_unused_port()
    try:
        serverapp = make_serverapp(http_port=port)
        listener = HTTPServer(serverapp.web_app)
        listener.add_socket(sock)
        try:
            yield serverapp
        finally:
            await serverapp.extension_manager.stop_all_extensions()
            listener.stop()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(listener.close_all_connections(), 10)
    finally:
        sock.close()


async def until(
    check: Callable[[], Awaitable[Any]], *, timeout: float = 20.0, interval: float = 0.05
) -> Any:
    """Await `check()` until it returns something truthy; bounded, never a timed assertion."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last value {value!r})")
        await asyncio.sleep(interval)


async def ws_execute(ws: Any, code: str, *, timeout: float = 60.0) -> tuple[str, dict[str, Any]]:
    """Run ``code`` through a kernel's websocket (the server's JSON protocol, as a browser
    does); return its stdout and execute_reply once the kernel is idle again."""
    request = Session().msg("execute_request", {"code": code, "silent": False})
    request["channel"] = "shell"
    await ws.write_message(json.dumps(request, default=json_default))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    stdout, reply, idle = "", None, False
    # The reply (shell) and the output (iopub) travel on different channels: wait for both.
    while reply is None or not idle:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"no reply and idle within {timeout} s for {code!r}: {stdout}")
        raw = await asyncio.wait_for(ws.read_message(), remaining)
        assert raw is not None, f"the websocket closed while running {code!r}"
        message = json.loads(raw)
        if message["parent_header"].get("msg_id") != request["header"]["msg_id"]:
            continue
        if message["msg_type"] == "stream":
            stdout += message["content"]["text"]
        elif message["msg_type"] == "execute_reply":
            reply = message
        elif message["msg_type"] == "status":
            idle = message["content"]["execution_state"] == "idle"
    return stdout, reply
