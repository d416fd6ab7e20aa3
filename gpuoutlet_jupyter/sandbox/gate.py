"""ASGI middleware in front of the routes: injected faults, the sid cookie, the body size cap."""

from __future__ import annotations

import asyncio

from starlette.requests import cookie_parser
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import UNAUTHENTICATED_MESSAGE, error_response
from .runtime import Sandbox
from .settings import MAX_BODY_BYTES


def _is_v1(path: str) -> bool:
    return path == "/v1" or path.startswith("/v1/")


class Gate:
    """Runs before routing, so a missing cookie is a 401 even when the body is not JSON."""

    def __init__(self, app: ASGIApp, sandbox: Sandbox) -> None:
        self._app = app
        self._sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        v1 = _is_v1(scope["path"])
        malformed = False
        if v1:
            # Faults model what is in front of the vendor's API (a proxy, a load balancer),
            # so they strike before authentication and before the request does anything.
            faults = self._sandbox.faults
            retry_after = faults.take_rate_limit()
            if retry_after is not None:
                await _rate_limited(retry_after)(scope, receive, send)
                return
            status = faults.take_error()
            if status is not None:
                await _injected_error(status)(scope, receive, send)
                return
            delay = faults.take_slow()
            if delay > 0:
                await asyncio.sleep(delay)
            malformed = faults.take_malformed()
            account_id = self._authenticate(scope)
            if account_id is None:
                await error_response(401, "unauthenticated", UNAUTHENTICATED_MESSAGE)(
                    scope, receive, send
                )
                return
            scope.setdefault("state", {})["account_id"] = account_id
        body = await _read_body(scope, receive)
        if body is None:
            await error_response(
                413,
                "payload_too_large",
                f"The request body is over {MAX_BODY_BYTES} bytes; send a smaller body "
                "(a create request is a few hundred bytes).",
            )(scope, receive, send)
            return
        replay = _replay(body, receive)
        if malformed:
            await self._app(scope, replay, _truncating(send))
        else:
            await self._app(scope, replay, send)

    def _authenticate(self, scope: Scope) -> str | None:
        sid = None
        for name, value in scope["headers"]:
            if name == b"cookie":
                sid = cookie_parser(value.decode("latin-1")).get("sid") or sid
        if not sid:
            return None
        account = self._sandbox.store.read.account_by_sid(sid)
        return None if account is None else account.id


def _rate_limited(retry_after: int) -> JSONResponse:
    return error_response(
        429,
        "rate_limited",
        f"Too many requests; retry after {retry_after} seconds.",
        {"Retry-After": str(retry_after)},
        retryAfterSeconds=retry_after,
    )


def _injected_error(status: int) -> JSONResponse:
    if status == 503:
        return error_response(
            503, "unavailable", "The service is temporarily unavailable; retry shortly."
        )
    return error_response(
        status, "internal_error", "The service hit an internal error; retry shortly."
    )


async def _read_body(scope: Scope, receive: Receive) -> bytes | None:
    """The whole body, or None once it is over the cap (a declared length is trusted first)."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > MAX_BODY_BYTES:
            return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        # Later calls wait for the disconnect, as a plain receive would.
        return await receive()

    return replay


def _truncating(send: Send) -> Send:
    """Turn the response into a 200 whose JSON body is cut in half (so it never parses)."""
    chunks: list[bytes] = []

    async def truncating(message: Message) -> None:
        if message["type"] == "http.response.start":
            return
        if message["type"] != "http.response.body":
            await send(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = b"".join(chunks)
        broken = body[: len(body) // 2] if len(body) > 1 else b'{"'
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(broken)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": broken})

    return truncating
