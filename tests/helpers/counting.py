"""Counting what a client sends upstream, on the wire: an httpx transport that tallies requests."""

from __future__ import annotations

import re
from collections import Counter

import httpx

#: ``GET /v1/rentals/<id>``: one rental's poll (not the list, not the preview).
ONE_RENTAL = re.compile(r"^/v1/rentals/(?!preview$)[^/]+$")


class CountingTransport(httpx.AsyncBaseTransport):
    """A real ``httpx.AsyncHTTPTransport`` that also counts every request by method and path."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.requests: Counter[tuple[str, str]] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests[(request.method, request.url.path)] += 1
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()

    def count(self, method: str, path: re.Pattern[str]) -> int:
        """Requests so far with that method whose path matches."""
        return sum(n for (m, p), n in self.requests.items() if m == method and path.match(p))

    def polls(self) -> int:
        """``GET /v1/rentals/<id>`` so far."""
        return self.count("GET", ONE_RENTAL)
