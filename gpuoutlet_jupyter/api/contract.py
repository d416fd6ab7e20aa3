"""The rentals API's endpoints: which the vendor documents, and which this project assumes.

The seed (`rentals-api.txt`) documents only `POST /v1/rentals` and `GET /v1/rentals/:id`. A real
client needs more, so these are assumed, kept here and nowhere else, and a 404 from one of them
means "that feature is off" (EndpointUnavailableError), never a crash:

- `GET /v1/rentals` → `{"rentals": [Rental, ...]}`
- `POST /v1/rentals/:id/stop` → Rental with status `stopping`, later `stopped`
- `GET /v1/families` → `{"families": [Family, ...]}`
- `GET /v1/wallet` → `{"availableCents", "reservedCents", "currency"}`
- errors as `{"error": {"code", "message", ...}}`; 402 carries `requiredCents` and
  `availableCents`; 429 carries `Retry-After`
- `Idempotency-Key` on create: the same key returns the same rental, never a second one
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

from .errors import RequestValidationError

IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
SESSION_COOKIE: Final = "sid"
POLL_INTERVAL_SECONDS: Final = 2.0  # the seed: "Poll GET /v1/rentals/:id every 2 seconds"
MAX_POLLS: Final = 60  # the seed's loop: 60 polls, typically ready in 20–60 s

_RENTAL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


@dataclass(frozen=True)
class Endpoint:
    """One API operation. `retry_safe`: repeating it cannot do anything twice."""

    name: str
    method: str
    path: str
    documented: bool
    retry_safe: bool
    # A collection endpoint has no resource to be missing: any 404 means the endpoint is absent.
    collection: bool = False

    def url_path(self, rental_id: str | None = None) -> str:
        """The request path, with the rental id checked and quoted."""
        if "{id}" not in self.path:
            return self.path
        if rental_id is None:
            raise TypeError(f"{self.name} needs a rental id")
        return self.path.replace("{id}", quote(check_rental_id(rental_id), safe=""))


def check_rental_id(rental_id: str) -> str:
    """Refuse a string that cannot be a rental id before it is put into a URL."""
    if not isinstance(rental_id, str) or not _RENTAL_ID.fullmatch(rental_id):
        raise RequestValidationError(
            [("id", f"{rental_id!r} is not a rental id (they look like rent_01H...)")]
        )
    return rental_id


# Create is not retry-safe by itself; it becomes so through its Idempotency-Key (see client).
CREATE = Endpoint("create", "POST", "/v1/rentals", documented=True, retry_safe=False)
GET = Endpoint("get", "GET", "/v1/rentals/{id}", documented=True, retry_safe=True)
LIST = Endpoint("list", "GET", "/v1/rentals", documented=False, retry_safe=True, collection=True)
# Stopping twice is the same as stopping once, so a stop may be repeated after a lost answer.
STOP = Endpoint("stop", "POST", "/v1/rentals/{id}/stop", documented=False, retry_safe=True)
FAMILIES = Endpoint(
    "families", "GET", "/v1/families", documented=False, retry_safe=True, collection=True
)
WALLET = Endpoint("wallet", "GET", "/v1/wallet", documented=False, retry_safe=True, collection=True)
