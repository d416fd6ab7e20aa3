"""Turning httpx responses and exceptions into models or into the error hierarchy (sync and async alike)."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Mapping
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from . import errors
from .cents import format_cents
from .contract import DEFAULT_RETRY_AFTER_SECONDS, Endpoint
from .models import GPU_COUNTS

M = TypeVar("M", bound=BaseModel)


def decode(endpoint: Endpoint, response: httpx.Response, api_url: str, what: str | None) -> Any:
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
    raise api_error(response, api_url, resource=what)


def parse(model: type[M], data: Any, *, what: str, api_url: str, status_code: int = 200) -> M:
    """Validate one reply object into ``model``, or raise MalformedResponseError naming the field."""
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


def transport_error(exc: httpx.TransportError, api_url: str) -> errors.TransportError:
    """A connection-level failure, phrased for a person: which URL, and what to check."""
    kind = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return errors.APITimeoutError(
            f"The rentals API at {api_url} did not answer in time ({kind}). Check your network "
            "and try again.",
            url=api_url,
        )
    detail = str(exc) or kind
    return errors.TransportError(
        f"Could not reach the rentals API at {api_url} ({kind}: {detail}). Check your network, "
        "or point GPUOUTLET_API_URL at the right server (a local sandbox prints its URL when it "
        "starts).",
        url=api_url,
    )


def retry_after_seconds(response: httpx.Response) -> float:
    """Retry-After as seconds (a number or an HTTP date); 30 s when it is missing (sheet 1.8)."""
    header = (response.headers.get("Retry-After") or "").strip()
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(header)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            return max(0.0, when.timestamp() - time.time())
    return DEFAULT_RETRY_AFTER_SECONDS


def error_body(response: httpx.Response) -> tuple[str | None, str | None, dict[str, Any]]:
    """``(code, message, details)`` of the API's flat error body; Nones when it has none."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None, None, {}
    if not isinstance(body, dict):
        return None, None, {}
    code = body.get("error")
    message = body.get("message")
    details = body.get("details")
    return (
        code if isinstance(code, str) and code else None,
        message if isinstance(message, str) else None,
        dict(details) if isinstance(details, Mapping) else {},
    )


def cents_in(details: Mapping[str, Any], *names: str) -> int | None:
    """The first of ``names`` in ``details`` that holds a whole number of cents."""
    for name in names:
        value = details.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def validation_fields(details: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(field, problem)`` pairs from a validation_failed ``details``, whatever its nesting.

    The sheet does not document its keys: ``{field: problem}``, ``{field: [problems]}`` and
    lists of ``{"field", "message"}`` (also under ``fields`` or ``errors``) are all read.
    """
    pairs: list[tuple[str, str]] = []

    def take(field: str, value: Any) -> None:
        if isinstance(value, str):
            pairs.append((field, value))
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            pairs.append((field, "; ".join(value)))
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, Mapping):
                    name = item.get("field") or item.get("path") or item.get("name") or field
                    text = item.get("message") or item.get("problem") or item.get("msg")
                    pairs.append((str(name), str(text or "is invalid")))
        elif isinstance(value, Mapping):
            for key, inner in value.items():
                take(str(key), inner)
        elif value is not None:
            pairs.append((field, str(value)))

    for key, value in details.items():
        take(str(key), value)
    return pairs


GPU_COUNTS_TEXT = ", ".join(map(str, GPU_COUNTS[:-1])) + f" or {GPU_COUNTS[-1]}"


def _where(api_url: str) -> str:
    return f"the rentals API at {api_url}"


def _unauthorized(api_url: str, api_message: str) -> str:
    return (
        "Your gpuoutlet session has expired or was signed out, so nothing could be done"
        f"{errors._said(api_message)}. {_sign_in_again(api_url)}"
    )


def _sign_in_again(api_url: str) -> str:
    from .settings import ENV_SID, SIGN_IN_HOW

    return (
        f"Sign in again, to {_site(api_url)}. {SIGN_IN_HOW}: the new session is used at once, "
        f"with no restart. (Scripts that set {ENV_SID} need a new value.)"
    )


def _site(api_url: str) -> str:
    return api_url.removesuffix("/v1")


def api_error(
    response: httpx.Response, api_url: str, *, resource: str | None = None
) -> errors.APIError:
    """Map an error answer onto the hierarchy: by the API's code first, else by its status class.

    ``resource`` names what the request was about (a rental id), for the message.
    """
    status = response.status_code
    code, message, details = error_body(response)
    said = message or response.reason_phrase or f"HTTP {status}"
    common: dict[str, Any] = {
        "status_code": status,
        "code": code or f"http_{status}",
        "api_message": said,
        "details": details,
    }
    quote = errors._said(said)
    what = f"rental {resource}" if resource else "that rental"

    if code == "unauthorized":
        return errors.UnauthorizedError(_unauthorized(api_url, said), **common)
    if code == "insufficient_balance":
        needed = cents_in(details, "neededCents", "requiredCents", "needed", "required")
        available = cents_in(details, "availableCents", "available")
        amounts = ""
        if needed is not None and available is not None:
            amounts = (
                f" It needs {format_cents(needed)} (its first hour, reserved up front) and the "
                f"wallet has {format_cents(available)} available."
            )
        return errors.InsufficientBalanceError(
            f"Not enough balance: a rental reserves its first hour from the wallet when it is "
            f"created.{amounts} Top up the wallet on {_site(api_url)}, or choose fewer GPUs or "
            f"a cheaper family. Nothing was charged{quote}.",
            needed_cents=needed,
            available_cents=available,
            **common,
        )
    if code == "forbidden":
        return errors.ForbiddenError(
            f"gpuoutlet refused: this account may not do that (it belongs to someone else)"
            f"{quote}. Check that the session is the account that owns it.",
            **common,
        )
    if code == "rental_not_found":
        # Its own words (kept in api_message) say no more than this, and they point at its
        # routes ("GET /v1/rentals lists yours"): the user's way to list them is named instead.
        return errors.RentalNotFoundError(
            f"gpuoutlet has no {what} on this account. Check the id: %gpu_rentals (or the "
            "sidebar) lists the rentals that exist.",
            **common,
        )
    if code == "invalid_count":
        return errors.InvalidCountError(
            f"A rental has {GPU_COUNTS_TEXT} GPUs{quote}. Choose one of those. Nothing was "
            "charged.",
            **common,
        )
    if code == "model_unavailable":
        return errors.ModelUnavailableError(
            "No provider has that GPU family, count and region free right now, so nothing was "
            f"rented and nothing was charged{quote}. Try another region or family, fewer GPUs, "
            "or again in a minute.",
            **common,
        )
    if code == "validation_failed":
        fields = validation_fields(details)
        listed = "; ".join(f"{name}: {errors.clause(problem)}" for name, problem in fields)
        return errors.ValidationFailedError(
            f"gpuoutlet refused the request: {listed or errors.clause(said)}. Nothing was charged; fix "
            f"{'those values' if len(fields) > 1 else 'the value'} and try again{quote}.",
            fields=fields,
            **common,
        )
    if code == "already_stopped":
        return errors.AlreadyStoppedError(
            f"{what[0].upper()}{what[1:]} is already stopped: a stop is final, so there is "
            f"nothing more to do and nothing more is billed{quote}.",
            **common,
        )
    if code == "code_request_rate_limited":
        wait = retry_after_seconds(response)
        return errors.CodeRequestRateLimitedError(
            "A sign-in code was sent to that address less than 30 s ago; gpuoutlet sends one "
            f"every 30 s. Use the code already sent, or ask again in {wait:.0f} s{quote}.",
            retry_after=wait,
            **common,
        )
    if code == "rate_limited" or status == 429:
        wait = retry_after_seconds(response)
        return errors.RateLimitedError(
            "gpuoutlet is limiting this session's requests (100 a minute and 1,000 an hour, "
            f"shared with the dashboard and your other tools): retry in {wait:.0f} s{quote}.",
            retry_after=wait,
            **common,
        )
    if code == "code_invalid":
        left = details.get("attemptsLeft")
        if not isinstance(left, int) or isinstance(left, bool):
            text = (
                "That sign-in code is not right. Check the latest email from gpuoutlet and type "
                "its 6 digits again; after 5 wrong tries a code stops working"
            )
        elif left > 0:
            text = (
                "That sign-in code is not right. Check the latest email from gpuoutlet and type "
                f"its 6 digits again: {left} {'try' if left == 1 else 'tries'} left for this code"
            )
        else:
            text = (
                "That sign-in code no longer works (5 wrong tries end a code, and a code works "
                "once). Ask for a new one"
            )
        return errors.CodeInvalidError(f"{text}{quote}.", **common)
    if code == "code_expired":
        return errors.CodeExpiredError(
            f"That sign-in code has expired (a code lasts 10 minutes). Ask for a new one{quote}.",
            **common,
        )
    if code == "invalid_email":
        return errors.InvalidEmailError(
            f"That is not an email address gpuoutlet accepts{quote}. Check it and try again.",
            **common,
        )
    if code == "weak_key":
        return errors.WeakKeyError(
            "gpuoutlet accepts Ed25519, ECDSA or RSA keys of at least 2048 bits, and this key "
            "is weaker. Make a new one with `ssh-keygen -t ed25519` and add that"
            f"{quote}.",
            **common,
        )
    if code == "duplicate_key":
        return errors.DuplicateKeyError(
            f"This public key is already on your gpuoutlet account{quote}.", **common
        )

    # Any other code: the status class, with the API's own message.
    where = _where(api_url)
    label = f"{code}: {said}" if code else said
    if status == 400:
        return errors.BadRequestError(
            f"{where} refused the request ({label}). Nothing was charged; fix what it names "
            "and try again.",
            **common,
        )
    if status == 401:
        return errors.AuthenticationError(
            f"{where} did not accept the session ({label}). {_sign_in_again(api_url)}", **common
        )
    if status == 403:
        return errors.PermissionDeniedError(
            f"{where} refused the request: not allowed ({label}).", **common
        )
    if status == 404:
        return errors.NotFoundError(f"{where} found nothing there ({label}).", **common)
    if status == 409:
        return errors.ConflictError(
            f"{where} refused the request as a conflict with the current state ({label}).",
            **common,
        )
    if status >= 500:
        return errors.ServerError(
            f"{where} failed on its side ({status}, {label}). Try again in a minute; if you "
            "were creating a rental, check your rentals list before you try again.",
            **common,
        )
    return errors.APIError(f"{where} answered {status} ({label}).", **common)
