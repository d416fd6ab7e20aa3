"""Every endpoint of the rentals API this client calls, each with the vendor page it comes from.

The contract is the vendor's published reference, compiled fact by fact in the project's sheet
(``shared/vendor/gpuoutlet-api.md``; its JSON examples are ``tests/fixtures/vendor_examples.json``).
Nothing here is assumed: an endpoint the sheet does not document is not listed, and the client
refuses to send a request that matches no endpoint listed here (see ``check_request``).

Facts of the sheet that shape the client (with their sections):

- auth is the ``sid`` cookie only (1.2); ``auth/request-code`` and ``auth/verify-code`` need no
  session, and verify-code answers with the new ``sid`` in ``Set-Cookie`` (2.1);
- errors are ``{"error": "code", "message": "...", "details": {...}}`` (1.7);
- lists page with ``nextCursor`` and ``pageSize`` up to 200 (1.6);
- no idempotency key exists (8): a create is sent once and never retried by this client;
- a second stop answers 409 ``already_stopped`` (2.2), so repeating a stop is harmless.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

from .errors import RequestValidationError

SESSION_COOKIE: Final = "sid"
#: Rentals, ledger and listings: ``pageSize`` default 50, max 200 (sheet 1.6).
MAX_PAGE_SIZE: Final = 200
#: Readiness: poll ``GET /v1/rentals/:id`` every 2 s (sheet 2.2, rentals/create).
POLL_INTERVAL_SECONDS: Final = 2.0
#: The vendor's sample helper loops at most 60 times (sheet 2.2).
MAX_POLLS: Final = 60
#: Retry-After when a 429 has none: the vendor's suggested client waits 30 s (sheet 1.8).
DEFAULT_RETRY_AFTER_SECONDS: Final = 30.0

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


@dataclass(frozen=True)
class Endpoint:
    """One documented API operation.

    ``retry_safe``: sending it twice does nothing twice, so a lost answer may be retried.
    ``session``: it needs the ``sid`` cookie (everything but requesting and verifying a code).
    """

    name: str
    method: str
    path: str
    #: The vendor page it is documented on (D/ = docs.gpuoutlet.ai, M/ = its mirror).
    source: str
    #: The sheet's section.
    section: str
    retry_safe: bool
    session: bool = True

    def url_path(self, resource_id: str | None = None) -> str:
        """The request path, with the id checked and quoted."""
        if "{id}" not in self.path:
            return self.path
        if resource_id is None:
            raise TypeError(f"{self.name} needs an id")
        return self.path.replace("{id}", quote(check_rental_id(resource_id), safe=""))

    @property
    def pattern(self) -> re.Pattern[str]:
        """A regex matching this endpoint's concrete request paths."""
        return re.compile(re.escape(self.path).replace(re.escape("{id}"), "[^/]+") + "$")


def check_rental_id(rental_id: str) -> str:
    """Refuse a string that cannot be a rental id before it is put into a URL."""
    if not isinstance(rental_id, str) or not _ID.fullmatch(rental_id):
        raise RequestValidationError(
            [("id", f"{rental_id!r} is not a rental id (they look like rent_01H...)")]
        )
    return rental_id


# Auth (sheet 2.1).
REQUEST_CODE = Endpoint(
    "request_code",
    "POST",
    "/v1/auth/request-code",
    "D/api-reference/auth/request-code",
    "2.1",
    # Mails a code, and only one per 30 s per email: never repeated by itself.
    retry_safe=False,
    session=False,
)
VERIFY_CODE = Endpoint(
    "verify_code",
    "POST",
    "/v1/auth/verify-code",
    "M/api-reference/auth/verify-code",
    "2.1",
    # Each try counts against the code's five attempts, and a code is single use.
    retry_safe=False,
    session=False,
)
LOGOUT = Endpoint(
    "logout", "POST", "/v1/auth/logout", "M/api-reference/auth/logout", "2.1", retry_safe=False
)
ME = Endpoint("me", "GET", "/v1/auth/me", "D/api-reference/auth/me", "2.1", retry_safe=True)

# Rentals (sheet 2.2).
PREVIEW = Endpoint(
    "preview",
    "POST",
    "/v1/rentals/preview",
    "D/api-reference/rentals/preview",
    "2.2",
    # "Reserves no capacity and does not touch the wallet."
    retry_safe=True,
)
CREATE = Endpoint(
    "create",
    "POST",
    "/v1/rentals",
    "M/api-reference/rentals/create",
    "2.2",
    # No idempotency key exists: a second send may rent (and bill) a second pod.
    retry_safe=False,
)
LIST = Endpoint(
    "list", "GET", "/v1/rentals", "D/api-reference/rentals/list", "2.2", retry_safe=True
)
GET = Endpoint(
    "get", "GET", "/v1/rentals/{id}", "M/api-reference/rentals/get", "2.2", retry_safe=True
)
STOP = Endpoint(
    "stop",
    "POST",
    "/v1/rentals/{id}/stop",
    "M/api-reference/rentals/stop",
    "2.2",
    # A repeated stop answers 409 already_stopped, which callers take as "done".
    retry_safe=True,
)
METER = Endpoint(
    "meter",
    "GET",
    "/v1/rentals/{id}/meter",
    "D/guides/managing-instances",
    "2.2",
    retry_safe=True,
)

# Catalog (sheet 2.3).
LISTINGS = Endpoint(
    "listings",
    "GET",
    "/v1/catalog/listings",
    "M/api-reference/catalog/list-listings",
    "2.3",
    retry_safe=True,
)
FACETS = Endpoint(
    "facets", "GET", "/v1/catalog/facets", "D/api-reference/catalog/facets", "2.3", retry_safe=True
)

# Billing (sheet 2.4).
BALANCE = Endpoint(
    "balance",
    "GET",
    "/v1/billing/balance",
    "M/api-reference/billing/balance",
    "2.4",
    retry_safe=True,
)

# SSH keys (sheet 2.5).
SSH_KEYS = Endpoint(
    "ssh_keys", "GET", "/v1/ssh-keys", "M/api-reference/ssh-keys/list", "2.5", retry_safe=True
)
ADD_SSH_KEY = Endpoint(
    "add_ssh_key",
    "POST",
    "/v1/ssh-keys",
    "D/api-reference/ssh-keys/create",
    "2.5",
    # A repeat answers 400 duplicate_key; the service treats that as "already there".
    retry_safe=False,
)

#: Every endpoint the client may call.
ENDPOINTS: Final = (
    REQUEST_CODE,
    VERIFY_CODE,
    LOGOUT,
    ME,
    PREVIEW,
    CREATE,
    LIST,
    GET,
    STOP,
    METER,
    LISTINGS,
    FACETS,
    BALANCE,
    SSH_KEYS,
    ADD_SSH_KEY,
)


class ContractViolation(AssertionError):
    """The client was about to send a request the vendor's reference does not document."""


def endpoint_for(method: str, path: str) -> Endpoint | None:
    """The listed endpoint a concrete request (``POST /v1/rentals/rent_01H/stop``) belongs to."""
    for endpoint in ENDPOINTS:
        if endpoint.method == method.upper() and endpoint.pattern.match(path):
            return endpoint
    return None


def check_request(method: str, path: str) -> Endpoint:
    """The endpoint of a request about to be sent; ContractViolation when none is listed."""
    endpoint = endpoint_for(method, path)
    if endpoint is None:
        raise ContractViolation(
            f"{method} {path} is not an endpoint of the vendor's published API "
            "(gpuoutlet_jupyter.api.contract lists every one the client may call)"
        )
    return endpoint
