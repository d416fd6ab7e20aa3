"""Turning httpx responses and exceptions into models or into the error hierarchy (sync and async alike)."""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from . import errors
from .contract import Endpoint
from .models import format_cents

M = TypeVar("M", bound=BaseModel)


def decode(endpoint: Endpoint, response: httpx.Response, api_url: str) -> Any:
    """The JSON body of a 2xx response; raise the matching APIError for anything else."""
    if response.is_success:
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise errors.MalformedResponseError(
                f"The rentals API at {api_url} answered {endpoint.method} {endpoint.path} with "
                f"{response.status_code} but the body is not valid JSON. This is on the API's "
                "side; try again shortly.",
                status_code=response.status_code,
                url=api_url,
            ) from None
    raise api_error(endpoint, response, api_url)


def parse(model: type[M], data: Any, *, what: str, api_url: str, status_code: int = 200) -> M:
    """Validate one response object into `model`, or raise MalformedResponseError naming the field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or what
        raise errors.MalformedResponseError(
            f"The rentals API at {api_url} sent a {what} this client cannot read ({where}: "
            f"{first['msg']}). This is on the API's side; try again shortly, and upgrade "
            "gpuoutlet-jupyter if it persists.",
            status_code=status_code,
            url=api_url,
        ) from None


def field(data: Any, key: str, *, what: str, api_url: str) -> list[Any]:
    """The list under `key` of a collection response, or MalformedResponseError."""
    if isinstance(data, dict) and isinstance(data.get(key), list):
        return list(data[key])
    raise errors.MalformedResponseError(
        f"The rentals API at {api_url} sent a {what} response without a `{key}` list. This is "
        "on the API's side; try again shortly.",
        status_code=200,
        url=api_url,
    )


def transport_error(exc: httpx.TransportError, api_url: str) -> errors.TransportError:
    """A connection-level failure, phrased for a person: which URL, and what to check."""
    kind = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return errors.APITimeoutError(
            f"The rentals API at {api_url} did not answer in time ({kind}). Check your network "
            "and try again; nothing is lost, a rental already created keeps its id.",
            url=api_url,
        )
    detail = str(exc) or kind
    return errors.TransportError(
        f"Could not reach the rentals API at {api_url} ({kind}: {detail}). Check your network, "
        "or point GPUOUTLET_API_URL at the right server (a local sandbox prints its URL when it "
        "starts).",
        url=api_url,
    )


def retry_after_seconds(response: httpx.Response, body_value: Any = None) -> float | None:
    """Retry-After as seconds: the header (seconds or an HTTP date), else the body's hint."""
    header = response.headers.get("Retry-After")
    if header:
        header = header.strip()
        if header.isdigit():
            return float(header)
        try:
            when = email.utils.parsedate_to_datetime(header)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            return max(0.0, when.timestamp() - time.time())
    if isinstance(body_value, (int, float)) and not isinstance(body_value, bool):
        return max(0.0, float(body_value))
    return None


def _error_body(response: httpx.Response) -> tuple[str | None, str | None, dict[str, Any]]:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None, None, {}
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return None, None, {}
    code = err.get("code") if isinstance(err.get("code"), str) else None
    message = err.get("message") if isinstance(err.get("message"), str) else None
    details = {k: v for k, v in err.items() if k not in {"code", "message"}}
    return code, message, details


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def api_error(endpoint: Endpoint, response: httpx.Response, api_url: str) -> errors.APIError:
    """Map an error status (and the API's `{"error": {...}}` body) onto the error hierarchy."""
    status = response.status_code
    code, api_message, details = _error_body(response)
    said = api_message or response.reason_phrase or f"HTTP {status}"
    common: dict[str, Any] = {
        "status_code": status,
        "code": code or f"http_{status}",
        "api_message": said,
        "details": details,
    }
    where = f"The rentals API at {api_url}"
    if status == 400:
        return errors.BadRequestError(
            f"{where} refused the request: {said}. Nothing was charged; "
            "fix the value it names and try again.",
            **common,
        )
    if status in (401, 403):
        return errors.AuthenticationError(
            f"{where} did not accept the session ({said}). The sid may "
            "have expired: sign in again, copy the new `sid` cookie and set GPUOUTLET_SID (or "
            "the credentials file ~/.config/gpuoutlet/credentials, mode 0600).",
            **common,
        )
    if status == 402:
        required = _int_or_none(details.get("requiredCents"))
        available = _int_or_none(details.get("availableCents"))
        amounts = ""
        if required is not None and available is not None:
            amounts = (
                f" It needs {format_cents(required)} (one hour at the rental's rate) and the "
                f"wallet has {format_cents(available)} available."
            )
        return errors.InsufficientBalanceError(
            f"Not enough balance to start this rental.{amounts} Top up the wallet, or choose "
            "fewer GPUs or a cheaper family. Nothing was charged.",
            required_cents=required,
            available_cents=available,
            **common,
        )
    if status == 404:
        if endpoint.collection or (not endpoint.documented and code != "not_found"):
            return errors.EndpointUnavailableError(
                f"{where} does not offer {endpoint.method} "
                f"{endpoint.path} (404), so that feature is unavailable with this server. "
                "Everything else keeps working.",
                **common,
            )
        return errors.NotFoundError(
            f"{where} has no such rental for this account ({said}). "
            "Check the id: list your rentals to see the ones that exist.",
            **common,
        )
    if status == 409 and (code in (None, "no_capacity")):
        return errors.NoCapacityError(
            f"No capacity right now: {said}. Try another region, fewer GPUs or another GPU "
            "family (the families list shows availability). Nothing was charged.",
            **common,
        )
    if status in (409, 422):
        return errors.ConflictError(
            f"{where} refused the request as a conflict ({said}). If you "
            "reused an Idempotency-Key, use a new one for a different request.",
            **common,
        )
    if status == 429:
        wait = retry_after_seconds(response, details.get("retryAfterSeconds"))
        hint = f"retry after {wait:.0f} s" if wait is not None else "wait a little and retry"
        return errors.RateLimitedError(
            f"{where} is rate limiting requests: {hint}.",
            retry_after=wait,
            **common,
        )
    if status >= 500:
        return errors.ServerError(
            f"{where} failed on its side ({status}: {said}). Try again in "
            "a minute; if you were creating a rental, check your rentals list before retrying.",
            **common,
        )
    return errors.APIError(
        f"{where} answered {status}: {said}.",
        **common,
    )
