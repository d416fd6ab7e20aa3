"""A real HTTP server on a free loopback port that answers with the vendor sheet's own examples.

For the client tests that need an exact reply the sandbox would not give on demand (every
documented error code, a cursor that loops, a Set-Cookie): it serves
``tests/fixtures/vendor_examples.json`` by method and path, lets a test put any reply (or a
callable) on a route, and records every request it received.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

EXAMPLES_FILE = Path(__file__).parent.parent / "fixtures" / "vendor_examples.json"


def vendor_examples() -> dict[str, dict[str, Any]]:
    """The sheet's examples by name (``rental_get``, ``error_unauthorized``, ...)."""
    data = json.loads(EXAMPLES_FILE.read_text(encoding="utf-8"))
    return {k: v for k, v in data.items() if not k.startswith("_")}


@dataclass
class Reply:
    """One canned answer."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Seen:
    """One request the stub received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


Responder = Callable[[Seen], Reply]


class VendorStub:
    """Routes ``(METHOD, path regex)`` → Reply or callable; the sheet's examples by default."""

    def __init__(self) -> None:
        self.url = ""
        self.requests: list[Seen] = []
        self._routes: list[tuple[str, re.Pattern[str], Reply | Responder]] = []
        self._lock = threading.Lock()
        for example in vendor_examples().values():
            if "method" in example:
                path = re.escape(example["path"]).replace(re.escape(":id"), "[^/]+")
                self.route(example["method"], path, Reply(200, example["response"]))

    def route(self, method: str, path: str, reply: Reply | Responder) -> None:
        """Answer ``method`` on paths matching the regex ``path`` (newest route wins)."""
        with self._lock:
            self._routes.insert(0, (method, re.compile(path + "$"), reply))

    def _answer(self, seen: Seen) -> Reply:
        with self._lock:
            self.requests.append(seen)
            routes = list(self._routes)
        for method, pattern, reply in routes:
            if method == seen.method and pattern.match(seen.path):
                return reply(seen) if callable(reply) else reply
        return Reply(404, {"error": "not_found", "message": f"No route {seen.path}"})

    def paths(self) -> list[str]:
        """``METHOD /path`` of every request so far."""
        return [f"{s.method} {s.path}" for s in self.requests]


@contextmanager
def vendor_stub() -> Iterator[VendorStub]:
    """A running stub; its URL is ``stub.url``."""
    stub = VendorStub()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw
            seen = Seen(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            reply = stub._answer(seen)
            data = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = do_PUT = _handle

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
