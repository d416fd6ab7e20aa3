"""Whether what the service shows is fresh: when the rentals API last answered, and since when
(and why) it does not.

Fed by what the watching already does (a poll's answer or failure, the reconcile's list), never
by requests of its own: knowing the API is down costs no request. Viewers get it with the list
and the status (``apiProblem``) and each rental says when the API last confirmed it
(``checkedAt``), so old rows can be shown as old.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from .idle import iso


@dataclass
class ApiHealth:
    """The rentals API as the watching sees it (epoch seconds)."""

    #: When the API last answered a rentals request (a poll, the list, a create or a stop).
    last_ok_at: float | None = None
    #: When the current run of failures began (None: the last request worked).
    failing_since: float | None = None
    #: The last failure, in words (what the error said: what and what to do).
    last_error: str | None = None

    def ok(self, now: float | None = None) -> None:
        self.last_ok_at = time.time() if now is None else now
        self.failing_since = None
        self.last_error = None

    def failed(self, error: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        if self.failing_since is None:
            self.failing_since = now
        self.last_error = error

    @property
    def failing(self) -> bool:
        return self.failing_since is not None

    def problem(self) -> dict[str, Any] | None:
        """``apiProblem`` of the REST replies: null while the API answers."""
        if self.failing_since is None:
            return None
        return {
            "message": self.last_error or "The rentals API did not answer.",
            "since": iso(self.failing_since),
            "lastOkAt": iso(self.last_ok_at),
        }
