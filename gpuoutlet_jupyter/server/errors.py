"""Turning the client's errors into the REST API's JSON errors, keeping the upstream's meaning.

Every error body is ``{"error": {"code": ..., "message": ..., ...}}``. The message is the
error's ``str()``, which already says what to do. Pure functions: no tornado here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..api import (
    APIError,
    ConfigurationError,
    EndpointUnavailableError,
    GpuOutletError,
    InsufficientBalanceError,
    MalformedResponseError,
    RateLimitedError,
    RentalNotActiveError,
    RequestValidationError,
    SpendingCapError,
    TransportError,
)


class InvalidBodyError(GpuOutletError):
    """The request body is not the JSON object the endpoint expects."""


class InvalidQueryError(GpuOutletError):
    """A query argument (``wait``, ``since``) has a value the endpoint cannot use."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        listed = "; ".join(f"{name}: {problem}" for name, problem in problems)
        super().__init__(f"Invalid query: {listed}.")


class ExtensionUnavailableError(GpuOutletError):
    """The extension is still starting, or shutting down: try again shortly."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ErrorReply:
    """An HTTP status, the JSON body and any extra headers of one error response."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def code(self) -> str:
        return str(self.body["error"]["code"])


def _reply(status: int, code: str, message: str, extra: dict[str, Any] | None = None) -> ErrorReply:
    error: dict[str, Any] = {k: v for k, v in (extra or {}).items() if v is not None}
    error.update(code=code, message=message)
    return ErrorReply(status=status, body={"error": error})


def _problems(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"field": name, "problem": problem} for name, problem in pairs]


def error_reply(exc: BaseException) -> ErrorReply | None:
    """The response for one of the project's errors; ``None`` for anything else (a bug: 500)."""
    if isinstance(exc, RequestValidationError):
        return _reply(400, "validation_error", str(exc), {"problems": _problems(exc.problems)})
    if isinstance(exc, InvalidQueryError):
        return _reply(400, "validation_error", str(exc), {"problems": _problems(exc.problems)})
    if isinstance(exc, InvalidBodyError):
        return _reply(400, "invalid_json", str(exc))
    if isinstance(exc, SpendingCapError):
        # 409: the request is fine, it conflicts with the configured cap (not with the wallet).
        amounts: dict[str, Any] = {
            "capCentsPerHour": exc.cap_cents,
            "burnCentsPerHour": exc.burn_cents_per_hour,
            "priceCentsPerHour": exc.price_cents_per_hour,
        }
        return _reply(409, "spending_cap", str(exc), amounts)
    if isinstance(exc, RentalNotActiveError):
        return _reply(409, "not_active", str(exc), {"rentalId": exc.rental_id, "state": exc.state})
    if isinstance(exc, ConfigurationError):
        return _reply(503, "not_configured", str(exc))
    if isinstance(exc, ExtensionUnavailableError):
        return _reply(503, exc.code, str(exc))
    if isinstance(exc, TransportError):
        return _reply(502, "upstream_unreachable", str(exc), {"apiUrl": exc.url})
    if isinstance(exc, MalformedResponseError):
        extra = {"apiUrl": exc.url, "upstreamStatus": exc.status_code}
        return _reply(502, "upstream_malformed", str(exc), extra)
    if isinstance(exc, APIError):
        return _api_error_reply(exc)
    return None


def _api_error_reply(exc: APIError) -> ErrorReply:
    # The upstream's extra members (requiredCents, field, ...) first; ours cannot be overridden.
    extra: dict[str, Any] = dict(exc.details)
    extra["upstreamMessage"] = exc.api_message
    code = exc.code
    if isinstance(exc, EndpointUnavailableError):
        # A 404 from an assumed endpoint means "feature off", not "no such thing": say so.
        extra["upstreamCode"] = exc.code
        code = "endpoint_unavailable"
    if isinstance(exc, InsufficientBalanceError):
        if exc.required_cents is not None:
            extra["requiredCents"] = exc.required_cents
        if exc.available_cents is not None:
            extra["availableCents"] = exc.available_cents
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
        seconds = max(0, math.ceil(exc.retry_after))
        extra["retryAfterSeconds"] = seconds
        headers["Retry-After"] = str(seconds)
    status = exc.status_code if 400 <= exc.status_code <= 599 else 502
    reply = _reply(status, code, str(exc), extra)
    return ErrorReply(status=reply.status, body=reply.body, headers=headers)


def http_error_reply(status: int, message: str) -> ErrorReply:
    """The body for tornado's own errors (403 from authentication, 404, 405, ...)."""
    codes = {
        400: "bad_request",
        401: "unauthenticated",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
    }
    return _reply(status, codes.get(status, f"http_{status}"), message)


def internal_error_reply() -> ErrorReply:
    """A bug in the extension: the details are in the server's log, not in the response."""
    return _reply(
        500,
        "internal_error",
        "The gpuoutlet extension failed unexpectedly; the Jupyter server's log has the details.",
    )
