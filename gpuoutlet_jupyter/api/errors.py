"""Every error the client raises, as one hierarchy under GpuOutletError; each message says what to do.

The API's refusals are ``{"error": code, "message", "details"}`` (sheet 1.7). APIError keeps all
three; its subclasses follow the HTTP status class, and one class per documented code that a
caller acts on (``responses.api_error`` picks it). ``str(error)`` is the message in the user's
words, ending with what the API itself said.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .cents import format_cents

if TYPE_CHECKING:
    from pydantic import ValidationError

    from .models import Rental


class GpuOutletError(Exception):
    """Base of every gpuoutlet-jupyter error. `str(error)` is a complete message for a person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigurationError(GpuOutletError):
    """The client is not configured (no sid) or its configuration is unsafe or unreadable."""


class RequestValidationError(GpuOutletError, ValueError):
    """A request broke the API's documented rules; it was never sent and nothing was charged."""

    def __init__(self, problems: list[tuple[str, str]], *, what: str = "rental request") -> None:
        self.problems = problems
        listed = "; ".join(f"{field}: {clause(problem)}" for field, problem in problems)
        super().__init__(
            f"Invalid {what}: {listed}. Nothing was sent to the API and nothing was "
            "charged; fix the value and try again."
        )

    @classmethod
    def from_pydantic(
        cls, exc: ValidationError, *, what: str = "rental request"
    ) -> RequestValidationError:
        """Turn pydantic's error list into (wire field name, plain-language problem) pairs."""
        problems: list[tuple[str, str]] = []
        for err in exc.errors(include_url=False):
            field = ".".join(str(part) for part in err["loc"]) or "request"
            field = _to_camel(field)
            kind = err["type"]
            if kind == "missing":
                text = "is required"
            elif kind == "extra_forbidden":
                text = f"is not a field of a {what}"
            elif kind.startswith("int"):
                text = f"must be a whole number (got {err.get('input')!r})"
            else:
                text = str(err["msg"]).removeprefix("Value error, ")
            problems.append((field, text))
        return cls(problems, what=what)


def clause(text: str) -> str:
    """``text`` as a clause of a longer message: without its final full stop, so that the
    message's own ". Nothing was sent" does not make two (an ellipsis is kept)."""
    text = text.rstrip()
    if text.endswith(".") and not text.endswith(".."):
        return text[:-1]
    return text


def _to_camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _said(api_message: str) -> str:
    """The API's own words, kept at the end of every message."""
    return f" (gpuoutlet said: “{api_message}”)" if api_message else ""


# Refusals made here, before any request: nothing was sent, nothing was charged.


class SpendingCapError(GpuOutletError):
    """A create refused before any request: over the configured hourly cap, or no price to check."""

    #: Where a person raises the cap, for the message (server and in-kernel spellings).
    HOW_TO_RAISE = (
        "c.GpuOutletApp.max_hourly_spend_cents in jupyter_server_config.py (then restart the "
        "Jupyter server) when rentals go through the server, or `%config "
        "NotebookSession.max_hourly_spend_cents = CENTS` when this kernel handles them; 0 "
        "means no cap"
    )

    def __init__(
        self,
        *,
        cap_cents: int,
        burn_cents_per_hour: int,
        price_cents_per_hour: int | None,
        what: str = "this rental",
        message: str | None = None,
        reason: str | None = None,
    ) -> None:
        self.cap_cents = cap_cents
        self.burn_cents_per_hour = burn_cents_per_hour
        #: None: the price could not be learnt, and the cap fails closed.
        self.price_cents_per_hour = price_cents_per_hour
        if message is None:
            if price_cents_per_hour is None:
                message = (
                    f"Not rented: a spending cap of {format_cents(cap_cents)}/h is set and the "
                    f"price of {what} could not be learnt from gpuoutlet's quote"
                    f"{f' ({reason})' if reason else ''}, so the cap cannot be checked. Nothing "
                    "was sent and nothing was charged; try again in a moment."
                )
            else:
                message = (
                    f"Not rented: {what} costs {format_cents(price_cents_per_hour)}/h, and your "
                    f"active rentals already cost {format_cents(burn_cents_per_hour)}/h, which "
                    f"would make {format_cents(burn_cents_per_hour + price_cents_per_hour)}/h, "
                    f"over the spending cap of {format_cents(cap_cents)}/h. Nothing was sent to "
                    "the API and nothing was charged. Stop a rental you no longer need "
                    f"(%gpu_stop ID), or raise the cap: {self.HOW_TO_RAISE}."
                )
        super().__init__(message)


class UnknownFamilyError(GpuOutletError, ValueError):
    """The GPU family asked for is not in gpuoutlet's catalog."""

    def __init__(
        self,
        family_id: str,
        *,
        known: Sequence[str],
        suggestions: Sequence[str] = (),
        message: str | None = None,
    ) -> None:
        self.family_id = family_id
        self.known = list(known)
        self.suggestions = list(suggestions)
        hint = f" Did you mean {' or '.join(self.suggestions)}?" if self.suggestions else ""
        listed = ", ".join(self.known) or "none right now"
        super().__init__(
            message
            or f"There is no GPU family {family_id!r} in gpuoutlet's catalog.{hint} The "
            f"families on offer: {listed} (%gpu_families shows their prices). Nothing was "
            "charged."
        )


class KeyNotOnAccountError(GpuOutletError):
    """The SSH key the entry would use is not on the account: a pod would not let it in."""

    def __init__(
        self,
        *,
        fingerprint: str,
        identity: str = "",
        public_key_file: str = "",
        message: str | None = None,
    ) -> None:
        self.fingerprint = fingerprint
        self.identity = identity
        self.public_key_file = public_key_file
        super().__init__(
            message
            or f"Not rented: your SSH key ({identity}, {fingerprint}) is not on your gpuoutlet "
            "account, and a pod only lets in the keys the account has when it is created, so "
            "you could not reach it. Add it first: `%gpu_keys add` in a notebook, the sidebar's "
            f"“Add this key” button, or paste {public_key_file} under Settings › SSH keys on "
            "the gpuoutlet website. Then rent again. Nothing was charged."
        )


class RentalNotActiveError(GpuOutletError):
    """Asked of a rental that no longer runs (failed, stopped or gone) what only a live one has."""

    def __init__(self, rental_id: str, state: str) -> None:
        self.rental_id = rental_id
        self.state = state
        where = "no longer reported by the API" if state == "gone" else state
        super().__init__(
            f"Rental {rental_id} is {where}, so it has no idle timer to restart; it costs nothing "
            "more. Rent again (%gpu_rent, or the sidebar) when you need a GPU."
        )


# Failures to talk to the API at all.


class TransportError(GpuOutletError):
    """The API could not be reached, or the connection broke before an answer came back."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class APITimeoutError(TransportError):
    """The API did not answer in time."""


class MalformedResponseError(GpuOutletError):
    """The API answered with something that is not the JSON the contract describes."""

    def __init__(self, message: str, *, status_code: int, url: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.url = url


# The API's refusals, by status class, then by documented code.


class APIError(GpuOutletError):
    """The API answered with an error status: carries the status, its code, message and details."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str,
        api_message: str,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.api_message = api_message
        self.details = dict(details or {})


class BadRequestError(APIError):
    """400: the API refused the request's shape or values."""


class InvalidCountError(BadRequestError):
    """400 ``invalid_count``: a rental has 1, 2, 4 or 8 GPUs."""


class ModelUnavailableError(BadRequestError):
    """400 ``model_unavailable``: no provider has that configuration right now.

    ``alternatives`` (filled in by the service from the catalog) says what has capacity now.
    """

    alternatives: list[str]

    def __init__(self, message: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.alternatives = []

    def with_alternatives(self, alternatives: Sequence[str]) -> ModelUnavailableError:
        """The same error, its message naming what has capacity now."""
        if not alternatives:
            return self
        copy = ModelUnavailableError(
            f"{self.message.rstrip()} Available now: {'; '.join(alternatives)}.",
            status_code=self.status_code,
            code=self.code,
            api_message=self.api_message,
            details=self.details,
        )
        copy.alternatives = list(alternatives)
        return copy


class ValidationFailedError(BadRequestError):
    """400 ``validation_failed``: ``fields`` lists each (field, problem) the API named."""

    def __init__(self, message: str, *, fields: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.fields = fields


class InvalidEmailError(BadRequestError):
    """400 ``invalid_email``."""


class WeakKeyError(BadRequestError):
    """400 ``weak_key``: RSA under 2048 bits, or DSA."""


class DuplicateKeyError(BadRequestError):
    """400 ``duplicate_key``: that public key is already on the account."""


class AuthenticationError(APIError):
    """401: not signed in."""


class UnauthorizedError(AuthenticationError):
    """401 ``unauthorized``: no session, or it expired or was signed out."""


class CodeInvalidError(AuthenticationError):
    """401 ``code_invalid``: the sign-in code is wrong (five wrong tries kill it)."""


class CodeExpiredError(AuthenticationError):
    """401 ``code_expired``: the sign-in code is older than 10 minutes."""


class PermissionDeniedError(APIError):
    """403: signed in, but not allowed."""


class ForbiddenError(PermissionDeniedError):
    """403 ``forbidden``: the resource belongs to someone else."""


class InsufficientBalanceError(PermissionDeniedError):
    """403 ``insufficient_balance``: available balance below one hour of the rental's cost."""

    def __init__(
        self,
        message: str,
        *,
        needed_cents: int | None,
        available_cents: int | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.needed_cents = needed_cents
        self.available_cents = available_cents


class NotFoundError(APIError):
    """404: no such thing for this account."""


class RentalNotFoundError(NotFoundError):
    """404 ``rental_not_found``: no rental with that id on this account."""


class ConflictError(APIError):
    """409: the request conflicts with the resource's state."""


class AlreadyStoppedError(ConflictError):
    """409 ``already_stopped``: the rental is stopped already. Callers take it as "done"."""


class RateLimitedError(APIError):
    """429: too many requests; ``retry_after`` seconds is how long to wait (30 when not said)."""

    def __init__(self, message: str, *, retry_after: float, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class CodeRequestRateLimitedError(RateLimitedError):
    """429 ``code_request_rate_limited``: one sign-in code per email every 30 s."""


class ServerError(APIError):
    """5xx: the API failed on its side."""


# Following a rental.


class ProvisioningFailedError(GpuOutletError):
    """The rental failed (`rental.error` is the API's reason) or was stopped before it became ready."""

    def __init__(self, rental: Rental) -> None:
        self.rental = rental
        if rental.status == "failed":
            message = (
                f"Rental {rental.id} failed to provision: {rental.error or 'no reason given'}. "
                "gpuoutlet refunds a failed rental. Try again, perhaps with another region or "
                "GPU family."
            )
        else:
            message = (
                f"Rental {rental.id} was {rental.status} before it became ready, so there is "
                "nothing to connect to. Create a new rental if you still need a GPU."
            )
        super().__init__(message)


class ProvisioningTimeoutError(GpuOutletError):
    """The rental was not ready after the expected number of polls. It still exists."""

    def __init__(self, rental: Rental, *, polls: int, waited_seconds: float) -> None:
        self.rental = rental
        self.polls = polls
        self.waited_seconds = waited_seconds
        super().__init__(
            f"Rental {rental.id} is still {rental.status} after {polls} polls "
            f"({waited_seconds:.0f} s). It still exists: keep waiting for it, or stop it "
            f"(rental id {rental.id}); a provisioning rental is not billed."
        )


#: The API's documented codes that have a class of their own (the rest: their status class).
CODE_CLASSES: dict[str, type[APIError]] = {
    "unauthorized": UnauthorizedError,
    "code_invalid": CodeInvalidError,
    "code_expired": CodeExpiredError,
    "forbidden": ForbiddenError,
    "insufficient_balance": InsufficientBalanceError,
    "rental_not_found": RentalNotFoundError,
    "invalid_count": InvalidCountError,
    "model_unavailable": ModelUnavailableError,
    "validation_failed": ValidationFailedError,
    "invalid_email": InvalidEmailError,
    "weak_key": WeakKeyError,
    "duplicate_key": DuplicateKeyError,
    "already_stopped": AlreadyStoppedError,
    "rate_limited": RateLimitedError,
    "code_request_rate_limited": CodeRequestRateLimitedError,
}


def status_class(status: int) -> type[APIError]:
    """The error class of an HTTP status, for a code without a class of its own."""
    classes: dict[int, type[APIError]] = {
        400: BadRequestError,
        401: AuthenticationError,
        403: PermissionDeniedError,
        404: NotFoundError,
        409: ConflictError,
        429: RateLimitedError,
    }
    if status >= 500:
        return ServerError
    return classes.get(status, APIError)
