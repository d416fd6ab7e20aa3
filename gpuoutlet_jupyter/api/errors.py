"""Every error the client raises, as one hierarchy under GpuOutletError; each message says what to do."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

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
    """A rental request broke the API's documented rules; it was never sent and nothing was charged."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        listed = "; ".join(f"{field}: {problem}" for field, problem in problems)
        super().__init__(
            f"Invalid rental request: {listed}. Nothing was sent to the API and nothing was "
            "charged; fix the value and try again."
        )

    @classmethod
    def from_pydantic(cls, exc: ValidationError) -> RequestValidationError:
        """Turn pydantic's error list into (wire field name, plain-language problem) pairs."""
        problems: list[tuple[str, str]] = []
        for err in exc.errors(include_url=False):
            field = ".".join(str(part) for part in err["loc"]) or "request"
            field = _to_camel(field)
            kind = err["type"]
            if kind == "missing":
                text = "is required"
            elif kind == "extra_forbidden":
                text = "is not a field of a rental request"
            elif kind.startswith("int"):
                text = f"must be a whole number (got {err.get('input')!r})"
            else:
                text = str(err["msg"]).removeprefix("Value error, ")
            problems.append((field, text))
        return cls(problems)


def _to_camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class SpendingCapError(GpuOutletError):
    """A create refused before any request: it would take the hourly spend over the configured cap."""

    #: Where a person raises the cap, for the message (server and in-kernel spellings).
    HOW_TO_RAISE = (
        "c.GpuOutletApp.max_hourly_spend_cents in jupyter_server_config.py (then restart the "
        "Jupyter server) when rentals go through the server, or `%config "
        "GpuOutletMagics.max_hourly_spend_cents = CENTS` when this kernel handles them; 0 "
        "means no cap"
    )

    def __init__(
        self,
        *,
        cap_cents: int,
        burn_cents_per_hour: int,
        price_cents_per_hour: int,
        what: str = "this rental",
        message: str | None = None,
    ) -> None:
        self.cap_cents = cap_cents
        self.burn_cents_per_hour = burn_cents_per_hour
        self.price_cents_per_hour = price_cents_per_hour
        if message is None:
            # Imported here: models imports this module.
            from .models import format_cents

            message = (
                f"Not rented: {what} costs {format_cents(price_cents_per_hour)}/h, and your "
                f"active rentals already cost {format_cents(burn_cents_per_hour)}/h, which "
                f"would make {format_cents(burn_cents_per_hour + price_cents_per_hour)}/h, "
                f"over the spending cap of {format_cents(cap_cents)}/h. Nothing was sent to the "
                "API and nothing was charged. Stop a rental you no longer need (%gpu_stop ID), "
                f"or raise the cap: {self.HOW_TO_RAISE}."
            )
        super().__init__(message)


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


class APIError(GpuOutletError):
    """The API answered with an error status: carries the status, the API's code and message."""

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
    """400: the API refused the request's shape or values (its own validation)."""


class AuthenticationError(APIError):
    """401: the sid cookie is missing, expired or wrong."""


class InsufficientBalanceError(APIError):
    """402: the wallet's available balance is below one hour of the rental's cost."""

    def __init__(
        self,
        message: str,
        *,
        required_cents: int | None,
        available_cents: int | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.required_cents = required_cents
        self.available_cents = available_cents


class NotFoundError(APIError):
    """404 for a resource: no such rental for this account."""


class EndpointUnavailableError(NotFoundError):
    """404 from an endpoint the seed does not document: that feature is off, not broken."""


class NoCapacityError(APIError):
    """409: no listing matches the family, GPU count and region right now."""


class ConflictError(APIError):
    """409/422 other than capacity, such as an Idempotency-Key reused with a different body."""


class RateLimitedError(APIError):
    """429: too many requests; `retry_after` seconds is what the API asked us to wait."""

    def __init__(self, message: str, *, retry_after: float | None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx: the API failed on its side."""


class ProvisioningFailedError(GpuOutletError):
    """The rental failed (`rental.error` is the API's reason) or was stopped before it became ready."""

    def __init__(self, rental: Rental) -> None:
        self.rental = rental
        if rental.status == "failed":
            message = (
                f"Rental {rental.id} failed to provision: {rental.error or 'no reason given'}. "
                "Try again, perhaps with another region or GPU family."
            )
        else:
            message = (
                f"Rental {rental.id} was {rental.status} before it became ready, so there is "
                "nothing to connect to. Create a new rental if you still need a GPU."
            )
        super().__init__(message)


class ProvisioningTimeoutError(GpuOutletError):
    """The rental was not ready after the expected number of polls. It still exists and may cost money."""

    def __init__(self, rental: Rental, *, polls: int, waited_seconds: float) -> None:
        self.rental = rental
        self.polls = polls
        self.waited_seconds = waited_seconds
        super().__init__(
            f"Rental {rental.id} is still {rental.status} after {polls} polls "
            f"({waited_seconds:.0f} s). It still exists and may be billed: keep waiting for it, "
            f"or stop it (rental id {rental.id})."
        )
