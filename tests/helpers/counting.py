"""Counting what a client sends upstream, on the wire: an httpx transport that tallies requests,
with the moment each left and what came back."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

#: ``GET /v1/rentals/<id>``: one rental's poll (not the list, not the preview).
ONE_RENTAL = re.compile(r"^/v1/rentals/(?!preview$)[^/]+$")


@dataclass
class Sent:
    """One request as it left: when (``time.monotonic``), what, and the answer's status (None:
    no answer came)."""

    at: float
    method: str
    path: str
    query: str
    status: int | None = None


#: Runs just before a request leaves (it may act on the sandbox, or raise to fail the request).
Hook = Callable[[httpx.Request], Awaitable[None]]


class CountingTransport(httpx.AsyncBaseTransport):
    """A real ``httpx.AsyncHTTPTransport`` that also counts every request by method and path,
    and logs when each left (``sent``); ``hooks[(method, path)]`` runs before one leaves."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.requests: Counter[tuple[str, str]] = Counter()
        self.sent: list[Sent] = []
        self.hooks: dict[tuple[str, str], Hook] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        key = (request.method, request.url.path)
        hook = self.hooks.get(key)
        if hook is not None:
            await hook(request)
        self.requests[key] += 1
        entry = Sent(time.monotonic(), request.method, request.url.path, request.url.query.decode())
        self.sent.append(entry)
        response = await self._inner.handle_async_request(request)
        entry.status = response.status_code
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()

    def count(self, method: str, path: re.Pattern[str]) -> int:
        """Requests so far with that method whose path matches."""
        return sum(n for (m, p), n in self.requests.items() if m == method and path.match(p))

    def polls(self) -> int:
        """``GET /v1/rentals/<id>`` so far."""
        return self.count("GET", ONE_RENTAL)

    def total(self) -> int:
        """Every request so far."""
        return sum(self.requests.values())
