"""The client's exception for an error reply of the Jupyter server's gpuoutlet REST API."""

from __future__ import annotations

from typing import Any

from .. import api
from ..api.errors import CODE_CLASSES, status_class
from .errors import ServerRefusedError


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _pairs(problems: Any) -> list[tuple[str, str]]:
    if not isinstance(problems, list):
        return []
    return [
        (str(p.get("field", "request")), str(p.get("problem", "is invalid")))
        for p in problems
        if isinstance(p, dict)
    ]


def error_from_reply(status: int, error: dict[str, Any], *, server_url: str) -> api.GpuOutletError:
    """The client's exception for one ``{"error": {...}}`` reply of the gpuoutlet REST API."""
    code = str(error["code"])
    message = str(error.get("message") or f"HTTP {status}")
    if code == "validation_error":
        return api.RequestValidationError(_pairs(error.get("problems")) or [("request", message)])
    if code == "unknown_family":
        suggestions = error.get("suggestions") or []
        return api.UnknownFamilyError(
            str(error.get("familyId") or ""), known=[], suggestions=suggestions, message=message
        )
    if code == "spending_cap":
        return api.SpendingCapError(
            cap_cents=_int(error.get("capCentsPerHour")) or 0,
            burn_cents_per_hour=_int(error.get("burnCentsPerHour")) or 0,
            price_cents_per_hour=_int(error.get("priceCentsPerHour")),
            message=message,
        )
    if code == "key_not_on_account":
        fingerprint = str(error.get("fingerprint") or "")
        return api.KeyNotOnAccountError(fingerprint=fingerprint, message=message)
    if code == "not_active" and isinstance(error.get("rentalId"), str):
        return api.RentalNotActiveError(str(error["rentalId"]), str(error.get("state") or "gone"))
    if code == "not_configured":
        return api.ConfigurationError(message)
    create_id = str(error.get("createId") or "")
    if code == "not_created":
        return api.CreateNotMadeError(message, create_id=create_id, name="")
    if code == "create_unknown":
        return api.CreateUnknownError(message, create_id=create_id, name="")
    if code == "create_ambiguous":
        candidates = [str(c) for c in error.get("candidates") or []]
        return api.CreateAmbiguousError(
            message, create_id=create_id, name="", candidates=candidates
        )
    if code == "upstream_unreachable":
        return api.TransportError(message, url=str(error.get("apiUrl") or ""))
    if code == "upstream_malformed":
        upstream = _int(error.get("upstreamStatus"))
        return api.MalformedResponseError(
            message, status_code=upstream or status, url=str(error.get("apiUrl") or "")
        )
    # The API's refusals carry upstreamCode (the one refused here from the quote does not).
    if "upstreamCode" not in error and code != "insufficient_balance":
        # Jupyter's own refusal, or the extension's: not the rentals API's.
        if status in (401, 403):
            return ServerRefusedError(
                f"The Jupyter server at {server_url} refused the request ({status}: {message})."
            )
        here: dict[str, Any] = {"status_code": status, "code": code, "api_message": message}
        kind_here = status_class(status)
        if issubclass(kind_here, api.RateLimitedError):
            # Held back by the server's request budget: nothing was sent upstream.
            retry = error.get("retryAfterSeconds")
            seconds = float(retry) if isinstance(retry, (int, float)) else 30.0
            return api.RequestsHeldError(message, retry_after=seconds)
        return kind_here(message, **here)
    # The rentals API's own refusal, passed through: the same class the client raised there.
    upstream_status = _int(error.get("upstreamStatus")) or status
    common: dict[str, Any] = {
        "status_code": upstream_status,
        "code": code,
        "api_message": str(error.get("upstreamMessage") or ""),
        "details": error.get("details") if isinstance(error.get("details"), dict) else None,
    }
    kind = CODE_CLASSES.get(code) or status_class(upstream_status)
    if issubclass(kind, api.InsufficientBalanceError):
        return kind(
            message,
            needed_cents=_int(error.get("neededCents")),
            available_cents=_int(error.get("availableCents")),
            **common,
        )
    if issubclass(kind, api.ValidationFailedError):
        return kind(message, fields=_pairs(error.get("problems")), **common)
    if issubclass(kind, api.RateLimitedError):
        retry = error.get("retryAfterSeconds")
        seconds = float(retry) if isinstance(retry, (int, float)) else 30.0
        return kind(message, retry_after=seconds, **common)
    if issubclass(kind, api.ModelUnavailableError):
        found_model = kind(message, **common)
        alternatives = error.get("alternatives")
        found_model.alternatives = [str(a) for a in alternatives or []]
        return found_model
    return kind(message, **common)
