"""Upstream: the one way RentalService reaches the rentals API, through the host's request budget.

Every request of the service goes through one of these methods, each named by what it is for,
and each takes its turn in the host's ``RequestBudget`` (budget.py, installed as the client's
gate, so retries and further pages count too) with the priority of what it is for: ``stop``
first, then ``create`` (with the quote and balance a create asks just before), then the polls of
provisioning (and stopping) rentals, then the refresh of running ones, then the reconcile, the
catalog, the balance, the keys and the session. A viewer's read waits at most
``viewer_patience`` for its turn, and while the budget is tight the account's reads answer
their last value rather than ask again. The account's reads are shared: one answer per TTL for
every viewer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

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
from .budget import Priority, RequestBudget, purpose
from .cache import Cached
from .options import ServiceOptions

T = TypeVar("T")

#: A poll handles its failures itself (so they show as they happen): one try each.
ONE_TRY = RetryPolicy(attempts=1)


class Upstream:
    """The rentals API as the service uses it, within one request budget."""

    def __init__(
        self, client: AsyncRentalsClient, options: ServiceOptions, *, owns_client: bool = False
    ) -> None:
        self._client = client
        self._owns_client = owns_client
        self._options = options
        #: The host's request budget: every request of the client waits its turn there.
        self.budget = RequestBudget(options.max_requests_per_minute, options.max_requests_per_hour)
        client.gate = self.budget

        def tight() -> bool:
            return not self.budget.ready(Priority.BACKGROUND)

        def cached(fetch: Callable[[], Awaitable[T]], ttl: float) -> Cached[T]:
            # While the budget is tight a viewer gets the last answer at once, and a refresh
            # waits its turn behind it (as long as it takes, as a watcher's poll does).
            return Cached(
                fetch, ttl, hold=tight, refresh=lambda: self._watching(Priority.BACKGROUND, fetch)
            )

        # Each account endpoint is asked once per TTL, however many viewers there are.
        self._balance: Cached[Balance] = cached(client.balance, options.balance_ttl)
        self._listings: Cached[list[Listing]] = cached(client.listings, options.catalog_ttl)
        self._keys: Cached[list[SSHKey]] = cached(client.ssh_keys, options.keys_ttl)
        self._session: Cached[Session] = cached(client.me, options.session_ttl)

    @property
    def site(self) -> str:
        """Where the user tops up and manages the account, for messages."""
        return self._client.api_url

    @property
    def request_timeout(self) -> float:
        """Seconds the client waits for one answer."""
        return self._client.settings.timeout_seconds

    async def _as(self, priority: Priority, call: Callable[[], Awaitable[T]]) -> T:
        """``call()``'s requests for ``priority``: a watcher's wait as long as it takes, a
        create's or a stop's up to ``act_patience``, a viewer's up to ``viewer_patience``."""
        patience = {
            Priority.STOP: self._options.act_patience,
            Priority.ACT: self._options.act_patience,
            Priority.BACKGROUND: self._options.viewer_patience,
        }.get(priority)
        with purpose(priority, patience):
            return await call()

    async def _watching(self, priority: Priority, call: Callable[[], Awaitable[T]]) -> T:
        """``call()``'s requests for a watcher: as long as it takes."""
        with purpose(priority, None):
            return await call()

    # The account, shared by every viewer (``fresh``: asked now, for a decision that moves money).

    async def balance(self, *, fresh: bool = False) -> Balance:
        if fresh:
            return await self._as(Priority.ACT, self._balance.fresh)
        return await self._as(Priority.BACKGROUND, self._balance.get)

    def balance_fetched_at(self) -> float:
        """When the shared balance was fetched (monotonic seconds): it may be older than asked."""
        return self._balance.fetched_at

    async def listings(self, *, fresh: bool = False) -> list[Listing]:
        if fresh:
            return await self._as(Priority.ACT, self._listings.fresh)
        return await self._as(Priority.BACKGROUND, self._listings.get)

    async def ssh_keys(self, *, fresh: bool = False) -> list[SSHKey]:
        if fresh:
            return await self._as(Priority.ACT, self._keys.fresh)
        return await self._as(Priority.BACKGROUND, self._keys.get)

    async def session(self) -> Session:
        return await self._as(Priority.BACKGROUND, self._session.get)

    async def add_ssh_key(self, name: str, public_key: str) -> SSHKey:
        key = await self._as(Priority.ACT, lambda: self._client.add_ssh_key(name, public_key))
        self._keys.invalidate()
        return key

    # Rentals, for the watcher (one try: it shows a failure and tries again itself).

    async def poll(self, rental_id: str, priority: Priority) -> Rental:
        """A watcher's look at one rental (``GET /v1/rentals/:id``)."""
        return await self._watching(priority, lambda: self._client.get(rental_id, retry=ONE_TRY))

    async def listed(self, status: str, priority: Priority) -> list[Rental]:
        """A watcher's look at every rental in ``status`` at once (all pages)."""
        return await self._watching(
            priority, lambda: self._client.list(status=status, retry=ONE_TRY)
        )

    async def rentals(self, priority: Priority = Priority.BACKGROUND) -> list[Rental]:
        """Every rental of the account (the reconcile's list, all pages)."""
        return await self._watching(priority, self._client.list)

    # Rentals, for a person.

    async def rental(self, rental_id: str) -> Rental:
        """One rental, asked for by a viewer or a stop (retried as the client's policy says)."""
        return await self._as(Priority.ACT, lambda: self._client.get(rental_id))

    async def newest(self, count: int) -> list[Rental]:
        """The ``count`` newest rentals of the account (one page): where a create whose answer
        was lost is looked for."""
        page = await self._as(Priority.ACT, lambda: self._client.list_page(page_size=count))
        return page.rentals

    async def preview(self, request: RentalRequest, *, creating: bool = False) -> Preview:
        """gpuoutlet's quote for a create, without creating (``creating``: for a create now).
        A create's first step either way: a person waits on it, with the price before the
        click (the sidebar's form, ``%gpu_rent``), so it goes with the creates."""
        return await self._as(Priority.ACT, lambda: self._client.preview(request))

    async def create(self, request: RentalRequest) -> CreatedRental:
        """The create, sent once: the API has no idempotency key, so it is never repeated."""
        try:
            return await self._as(Priority.ACT, lambda: self._client.create(request))
        finally:
            self._balance.invalidate()  # an hour was reserved (perhaps, if the answer was lost)

    async def stop(self, rental_id: str) -> StopResult:
        try:
            return await self._as(Priority.STOP, lambda: self._client.stop(rental_id))
        finally:
            # Settled (or stopped already, a 409): the wallet has moved either way.
            self._balance.invalidate()

    async def aclose(self) -> None:
        for cache in (self._balance, self._listings, self._keys, self._session):
            cache.close()
        if self._owns_client:
            await self._client.aclose()
