"""Turning the project's errors into the REST API's error replies, keeping the upstream's meaning.

Every error body is ``{"error": {"code", "message", ...}}`` (``models.ErrorReply``). The message
is the error's ``str()``, which already says what to do. Pure functions: no tornado here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..api import (
    APIError,
    ConfigurationError,
    CreateAmbiguousError,
    CreateNotMadeError,
    CreateUnknownError,
    GpuOutletError,
    InsufficientBalanceError,
    KeyNotOnAccountError,
    MalformedResponseError,
    ModelUnavailableError,
    RateLimitedError,
    RentalNotActiveError,
    RequestsHeldError,
    RequestValidationError,
    SpendingCapError,
    TransportError,
    UnknownFamilyError,
    ValidationFailedError,
)
from ..remote import ConnectFailed, ConnectionLost, ControlPathError, ForwardError, RemoteError
from ..saves.errors import WorkError
from ..service.pods import PodNotReachableError
from .kernels import KernelActionError
from .models import ErrorReply


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


class OtherAccountError(GpuOutletError):
    """A sign-in as another account while this host watches rentals of the one before, which
    may still cost money: refused before any code is sent or used."""

    def __init__(self, message: str, *, email: str, rentals: list[str]) -> None:
        super().__init__(message)
        self.email = email
        self.rentals = rentals


@dataclass(frozen=True)
class ErrorAnswer:
    """An HTTP status, the JSON body and any extra headers of one error response."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def code(self) -> str:
        return str(self.body["error"]["code"])


def _answer(
    status: int,
    code: str,
    message: str,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> ErrorAnswer:
    error: dict[str, Any] = {k: v for k, v in (extra or {}).items() if v is not None}
    error.update(code=code, message=message)
    # Validated: an error reply matches the schema the sidebar is typed from.
    body = ErrorReply.model_validate({"error": error}).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    return ErrorAnswer(status=status, body=body, headers=headers or {})


def _problems(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"field": name, "problem": problem} for name, problem in pairs]


def error_reply(exc: BaseException) -> ErrorAnswer | None:
    """The answer for one of the project's errors; ``None`` for anything else (a bug: 500)."""
    if isinstance(exc, (RequestValidationError, InvalidQueryError)):
        return _answer(400, "validation_error", str(exc), {"problems": _problems(exc.problems)})
    if isinstance(exc, InvalidBodyError):
        return _answer(400, "invalid_json", str(exc))
    if isinstance(exc, UnknownFamilyError):
        extra: dict[str, Any] = {"familyId": exc.family_id, "suggestions": exc.suggestions}
        return _answer(400, "unknown_family", str(exc), extra)
    if isinstance(exc, SpendingCapError):
        # 409: the request is fine, it conflicts with the configured cap (not with the wallet).
        amounts: dict[str, Any] = {
            "capCentsPerHour": exc.cap_cents,
            "burnCentsPerHour": exc.burn_cents_per_hour,
            "priceCentsPerHour": exc.price_cents_per_hour,
        }
        return _answer(409, "spending_cap", str(exc), amounts)
    if isinstance(exc, KeyNotOnAccountError):
        return _answer(409, "key_not_on_account", str(exc), {"fingerprint": exc.fingerprint})
    if isinstance(exc, OtherAccountError):
        return _answer(409, "other_account_active", str(exc), {"rentals": exc.rentals})
    if isinstance(exc, RentalNotActiveError):
        return _answer(409, "not_active", str(exc), {"rentalId": exc.rental_id, "state": exc.state})
    if isinstance(exc, (WorkError, KernelActionError)):
        return _answer(exc.status, exc.code, str(exc), {"rentalId": exc.rental_id})
    if isinstance(exc, ConfigurationError):
        return _answer(503, "not_configured", str(exc))
    remote = _remote_error_reply(exc)
    if remote is not None:
        return remote
    if isinstance(exc, ExtensionUnavailableError):
        return _answer(503, exc.code, str(exc))
    if isinstance(exc, TransportError):
        return _answer(502, "upstream_unreachable", str(exc), {"apiUrl": exc.url})
    if isinstance(exc, MalformedResponseError):
        return _answer(
            502,
            "upstream_malformed",
            str(exc),
            {"apiUrl": exc.url, "upstreamStatus": exc.status_code},
        )
    if isinstance(exc, RequestsHeldError):
        # Held back here (a 429 of gpuoutlet's, or this host's share used up): nothing sent.
        seconds = max(1, math.ceil(exc.retry_after))
        return _answer(
            429,
            "rate_limited",
            str(exc),
            {"retryAfterSeconds": seconds},
            {"Retry-After": str(seconds)},
        )
    if isinstance(exc, CreateAmbiguousError):
        extra = {"createId": exc.create_id, "candidates": exc.candidates}
        return _answer(409, "create_ambiguous", str(exc), extra)
    if isinstance(exc, CreateNotMadeError):
        return _answer(502, "not_created", str(exc), {"createId": exc.create_id})
    if isinstance(exc, CreateUnknownError):
        return _answer(502, "create_unknown", str(exc), {"createId": exc.create_id})
    if isinstance(exc, InsufficientBalanceError) and not exc.api_message:
        # Refused here from gpuoutlet's quote and balance, before anything was sent.
        return _answer(
            403,
            "insufficient_balance",
            str(exc),
            {"neededCents": exc.needed_cents, "availableCents": exc.available_cents},
        )
    if isinstance(exc, APIError):
        return _api_error_reply(exc)
    return None


def _remote_error_reply(exc: BaseException) -> ErrorAnswer | None:
    """A rental's pod could not be reached or used (telemetry, ports, forwards)."""
    if isinstance(exc, PodNotReachableError):
        extra = {"rentalId": exc.rental_id, "state": exc.state}
        return _answer(409, "pod_not_reachable", str(exc), extra)
    if isinstance(exc, ControlPathError):
        return _answer(503, "not_configured", str(exc))
    if isinstance(exc, ForwardError):
        return _answer(409, "forward_failed", str(exc))
    if isinstance(exc, (ConnectFailed, ConnectionLost)):
        return _answer(502, "pod_unreachable", str(exc))
    if isinstance(exc, RemoteError):
        return _answer(502, "pod_error", str(exc))
    return None


def _api_error_reply(exc: APIError) -> ErrorAnswer:
    extra: dict[str, Any] = {
        "upstreamCode": exc.code,
        "upstreamMessage": exc.api_message,
        "upstreamStatus": exc.status_code,
        "details": exc.details or None,
    }
    headers: dict[str, str] = {}
    if isinstance(exc, InsufficientBalanceError):
        extra["neededCents"] = exc.needed_cents
        extra["availableCents"] = exc.available_cents
    if isinstance(exc, ValidationFailedError):
        extra["problems"] = _problems(exc.fields)
    if isinstance(exc, ModelUnavailableError) and exc.alternatives:
        extra["alternatives"] = exc.alternatives
    if isinstance(exc, RateLimitedError):
        seconds = max(0, math.ceil(exc.retry_after))
        extra["retryAfterSeconds"] = seconds
        headers["Retry-After"] = str(seconds)
    # The API's 4xx pass through; its 5xx are a bad gateway from here (our 500 is our bug).
    status = exc.status_code if 400 <= exc.status_code < 500 else 502
    return _answer(status, exc.code, str(exc), extra, headers)


def http_error_reply(status: int, message: str) -> ErrorAnswer:
    """The body for tornado's own errors (403 from authentication, 404, 405, ...)."""
    codes = {
        400: "bad_request",
        401: "unauthenticated",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
    }
    return _answer(status, codes.get(status, f"http_{status}"), message)


def internal_error_reply() -> ErrorAnswer:
    """A bug in the extension: the details are in the server's log, not in the response."""
    return _answer(
        500,
        "internal_error",
        "The gpuoutlet extension failed unexpectedly; the Jupyter server's log has the details.",
    )
