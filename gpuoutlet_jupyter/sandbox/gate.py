"""ASGI middleware in front of the /v1 routes: injected faults, the session, the rate limits
and their headers, the 401, the body size cap, and dropped answers."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.requests import cookie_parser
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import UNAUTHORIZED_BODY, ApiError, validation_failed
from .runtime import Sandbox
from .settings import MAX_BODY_BYTES

logger = logging.getLogger(__name__)

#: /v1 paths that answer without a session (signing in, OAuth redirects, Stripe's webhook).
_PUBLIC = ("/v1/auth/request-code", "/v1/auth/verify-code", "/v1/webhooks/stripe")
_PUBLIC_PREFIXES = ("/v1/auth/oauth/",)


def _is_v1(path: str) -> bool:
    return path == "/v1" or path.startswith("/v1/")


def is_public(path: str) -> bool:
    return path in _PUBLIC or path.startswith(_PUBLIC_PREFIXES)


class Gate:
    """Runs before routing, so a missing session is a 401 even when the body is not JSON."""

    def __init__(self, app: ASGIApp, sandbox: Sandbox) -> None:
        self._app = app
        self._sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_v1(scope["path"]):
            await self._app(scope, receive, send)
            return
        sandbox = self._sandbox
        path, method = scope["path"], scope["method"]
        # Faults model what is in front of the vendor's API (a proxy, a load balancer), so
        # they strike before the session is looked at and before the request does anything.
        faults = sandbox.faults
        retry_after = faults.take_rate_limit()
        if retry_after is not None:
            await _rate_limited(retry_after, {})(scope, receive, send)
            return
        status = faults.take_error()
        if status is not None:
            await _injected_error(status)(scope, receive, send)
            return
        delay = faults.take_slow()
        if delay > 0:
            await asyncio.sleep(delay)
        malformed = faults.take_malformed()

        session = None
        sid = _cookie(scope, "sid")
        if sid:
            session = sandbox.auth.session(sid)
        client = scope.get("client") or ("?", 0)
        # The limits are per session (sheet 1.8); a request without one is not counted (the
        # sign-in endpoints have their own caps), so it carries no X-RateLimit headers.
        verdict = sandbox.limiter.hit(session.sid_hash) if session is not None else None
        headers = verdict.headers() if verdict is not None else {}
        if verdict is not None and not verdict.allowed:
            await _rate_limited(verdict.retry_after, headers)(scope, receive, send)
            return
        if session is None and not is_public(path):
            await JSONResponse(UNAUTHORIZED_BODY, status_code=401, headers=headers)(
                scope, receive, send
            )
            return
        if session is not None:
            session = await sandbox.auth.slide(session)
            state = scope.setdefault("state", {})
            state["user_id"] = session.user_id
            state["sid_hash"] = session.sid_hash
        body = await _read_body(scope, receive)
        if body is None:
            error = validation_failed(
                f"The request body is over {MAX_BODY_BYTES} bytes; a request to this API is a "
                "few hundred bytes.",
                {"body": f"over {MAX_BODY_BYTES} bytes"},
            )
            await JSONResponse(error.body(), status_code=400, headers=headers)(scope, receive, send)
            return
        out = _with_headers(send, headers)
        if method == "POST" and path == "/v1/rentals" and faults.take_drop_create():
            await self._app(scope, _replay(body, receive), _swallow())
            # The create is committed; its answer never leaves.
            dropped = sandbox.drop_connection is not None and sandbox.drop_connection(client)
            logger.info(
                "fault: dropped the answer to a create (%s)", "closed" if dropped else "not closed"
            )
            if not dropped:
                raise ConnectionAbortedError("the connection could not be dropped")
            # Return once the server has seen the connection go, so it does not try to answer.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(_disconnected(receive), timeout=5)
            return
        if malformed:
            out = _truncating(out)
        await self._app(scope, _replay(body, receive), out)


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _cookie(scope: Scope, name: str) -> str | None:
    value = None
    for header, raw in scope["headers"]:
        if header == b"cookie":
            value = cookie_parser(raw.decode("latin-1")).get(name) or value
    return value


def _rate_limited(retry_after: int, headers: dict[str, str]) -> JSONResponse:
    error = ApiError(429, "rate_limited", f"Too many requests. Retry after {retry_after} seconds.")
    return JSONResponse(
        error.body(), status_code=429, headers={**headers, "Retry-After": str(retry_after)}
    )


def _injected_error(status: int) -> JSONResponse:
    return JSONResponse(
        ApiError(
            status, "internal_error", "Something went wrong on our side. Retry shortly."
        ).body(),
        status_code=status,
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


def _with_headers(send: Send, headers: dict[str, str]) -> Send:
    """Every answer carries where the caller stands with the rate limits."""
    if not headers:
        return send
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *raw]}
        await send(message)

    return sending


def _swallow() -> Send:
    async def swallow(message: Message) -> None:
        return None

    return swallow


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
