"""Upstream: the one way RentalService reaches the rentals API.

Every request of the service goes through one of these methods, each named by what it is for.
That is where the request budget of the rate-limit work slots in (one scheduler per host: the
vendor's limits, a shared pause on 429), taking these calls over without the parts that make
them changing; its priorities map onto the methods: ``create`` and ``stop`` first, then
``poll`` (provisioning before running, by the rental's status), then ``rentals`` (the
reconcile), ``listings``, ``balance``, ``ssh_keys`` and ``session``. The account's reads are
shared here already: one answer per TTL for every viewer.
"""

from __future__ import annotations

from ..api import (
    AsyncRentalsClient,
    Balance,
    CreatedRental,
    Listing,
    Preview,
    Rental,
    RentalRequest,
    RetryPolicy,
    Session,
    SSHKey,
    StopResult,
)
from .cache import Cached
from .options import ServiceOptions

#: A poll handles its failures itself (so they show as they happen): one try each.
ONE_TRY = RetryPolicy(attempts=1)


class Upstream:
    """The rentals API as the service uses it."""

    def __init__(
        self, client: AsyncRentalsClient, options: ServiceOptions, *, owns_client: bool = False
    ) -> None:
        self._client = client
        self._owns_client = owns_client
        # Each account endpoint is asked once per TTL, however many viewers there are.
        self._balance: Cached[Balance] = Cached(client.balance, options.balance_ttl)
        self._listings: Cached[list[Listing]] = Cached(client.listings, options.catalog_ttl)
        self._keys: Cached[list[SSHKey]] = Cached(client.ssh_keys, options.keys_ttl)
        self._session: Cached[Session] = Cached(client.me, options.session_ttl)

    @property
    def site(self) -> str:
        """Where the user tops up and manages the account, for messages."""
        return self._client.api_url

    # The account, shared by every viewer (``fresh``: asked now, for a decision that moves money).

    async def balance(self, *, fresh: bool = False) -> Balance:
        return await (self._balance.fresh() if fresh else self._balance.get())

    async def listings(self, *, fresh: bool = False) -> list[Listing]:
        return await (self._listings.fresh() if fresh else self._listings.get())

    async def ssh_keys(self, *, fresh: bool = False) -> list[SSHKey]:
        return await (self._keys.fresh() if fresh else self._keys.get())

    async def session(self) -> Session:
        return await self._session.get()

    async def add_ssh_key(self, name: str, public_key: str) -> SSHKey:
        key = await self._client.add_ssh_key(name, public_key)
        self._keys.invalidate()
        return key

    # Rentals.

    async def poll(self, rental_id: str) -> Rental:
        """A watcher's look at one rental: one try (the watcher backs off and tries again)."""
        return await self._client.get(rental_id, retry=ONE_TRY)

    async def rental(self, rental_id: str) -> Rental:
        """One rental, asked for by a viewer or a stop (retried as the client's policy says)."""
        return await self._client.get(rental_id)

    async def rentals(self) -> list[Rental]:
        """Every rental of the account (the reconcile's list)."""
        return await self._client.list()

    async def preview(self, request: RentalRequest) -> Preview:
        """gpuoutlet's quote for a create, without creating."""
        return await self._client.preview(request)

    async def create(self, request: RentalRequest) -> CreatedRental:
        """The create, sent once: the API has no idempotency key, so it is never repeated."""
        created = await self._client.create(request)
        self._balance.invalidate()  # an hour was reserved
        return created

    async def stop(self, rental_id: str) -> StopResult:
        try:
            return await self._client.stop(rental_id)
        finally:
            # Settled (or stopped already, a 409): the wallet has moved either way.
            self._balance.invalidate()

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()
