"""Keeps the session out of logs: httpcore's DEBUG traces print response headers (Set-Cookie)."""

from __future__ import annotations

import logging
import re
from typing import Final

from .contract import SESSION_COOKIE

#: ``sid=<value>`` wherever it appears (a header tuple's repr, a cookie line).
_SID: Final = re.compile(rf"({SESSION_COOKIE}=)[^;'\"\s,)]+")
#: The loggers that trace raw headers (httpx itself logs only the request line).
_TRACING_LOGGERS: Final = ("httpcore.http11", "httpcore.http2", "httpcore.connection")


class RedactSession(logging.Filter):
    """Replaces the value of every ``sid=`` in a record's message with ``<redacted>``."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not format: leave it to logging
            return True
        if f"{SESSION_COOKIE}=" in message:
            record.msg = _SID.sub(r"\1<redacted>", message)
            record.args = None
        return True


_FILTER = RedactSession()


def install() -> None:
    """Put the filter on the loggers that trace headers (once; filters run where records start)."""
    for name in _TRACING_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
