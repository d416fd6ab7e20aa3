"""Creating a rental: the family and key checks, gpuoutlet's quote, the wallet and the spending
cap, then the create itself, sent once. Also the quote alone (what a create would do)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..api import (
    APIError,
    CreatedRental,
    GpuOutletError,
    KeyNotOnAccountError,
    MalformedResponseError,
    ModelUnavailableError,
    Preview,
    RentalRequest,
    ServerError,
    SpendingCapError,
    TransportError,
)
from .catalog import Family, alternatives, check_family, families_from
from .keys import AccountKeys
from .money import Spending, check_balance, check_cap, confirmation
from .options import ServiceOptions
from .record import QuoteInfo, RentalRecord
from .upstream import Upstream

log = logging.getLogger(__name__)

#: Tracks a rental just created (inside the create lock): the reply, the request, its quote
#: and its idle stop (minutes, None: none).
Track = Callable[[CreatedRental, RentalRequest, QuoteInfo, "float | None"], Awaitable[RentalRecord]]


class Creator:
    """Checks, quotes and creates, one create at a time.

    Creates run one at a time: two at once could each pass the balance and cap checks before
    either is tracked, and together overspend. ``spending`` is the burn of the rentals tracked
    now; ``track`` takes the new rental in before the next create may start.
    """

    def __init__(
        self,
        upstream: Upstream,
        keys: AccountKeys,
        options: ServiceOptions,
        *,
        spending: Callable[[], Spending],
        track: Track,
    ) -> None:
        self._upstream = upstream
        self._keys = keys
        self._options = options
        self._spending = spending
        self._track = track
        self._lock = asyncio.Lock()

    async def families(self) -> list[Family]:
        """The GPU families, derived from the catalog's listings (shared for ``catalog_ttl``)."""
        return families_from(await self._upstream.listings())

    async def quote(self, request: RentalRequest) -> dict[str, Any]:
        """What a create of ``request`` would do, without doing it: gpuoutlet's quote, the
        balance, the cap and the key check, each with its verdict, and the confirmation line."""
        await self._check_family(request)
        preview = QuoteInfo.from_preview(await self._preview(request))
        balance = await self._upstream.balance()
        burn = self._spending().burn_cents_per_hour
        cap = self._options.max_hourly_spend_cents
        site = self._upstream.site
        problems: list[dict[str, str]] = []
        checks: list[Callable[[], None]] = [
            lambda: check_balance(preview, balance, request, site),
            lambda: check_cap(preview, cap_cents=cap, burn_cents_per_hour=burn, request=request),
        ]
        for check in checks:
            try:
                check()
            except GpuOutletError as exc:
                problems.append({"code": _code(exc), "message": str(exc)})
        keys = await self._keys.check()
        try:
            if keys.local is not None and not keys.on_account:
                keys = await self._keys.check(fresh=True)
            keys.require()
        except GpuOutletError as exc:
            problems.append({"code": _code(exc), "message": str(exc)})
        return {
            "request": request.to_wire(),
            "quote": preview.to_json(),
            "availableCents": balance.available_cents,
            "burnCentsPerHour": burn,
            "maxHourlySpendCents": cap or None,
            "keyOnAccount": keys.on_account if keys.local is not None else None,
            "confirmation": confirmation(request, preview, balance),
            "problems": problems,
        }

    async def create(self, request: RentalRequest, idle: float | None) -> RentalRecord:
        """Check, quote and create the rental once; the record ``track`` made of it.

        Before anything is sent: the family must be in the catalog and the SSH entries' key on
        the account. Then gpuoutlet's quote (``rentals/preview``) prices it: the wallet must
        hold its first hour and the burn stay under the spending cap (a cap with no quote
        refuses). The create itself is sent once: the API has no idempotency key, so it is
        never repeated (a lost answer is for the reconcile to find).
        """
        await self._check_family(request)
        await self._keys.require()
        async with self._lock:
            cap = self._options.max_hourly_spend_cents
            burn = self._spending().burn_cents_per_hour
            try:
                quote = QuoteInfo.from_preview(await self._preview(request))
            except (TransportError, ServerError, MalformedResponseError) as exc:
                check_cap(
                    None, cap_cents=cap, burn_cents_per_hour=burn, request=request, reason=str(exc)
                )
                raise
            site = self._upstream.site
            check_balance(quote, await self._upstream.balance(fresh=True), request, site)
            check_cap(quote, cap_cents=cap, burn_cents_per_hour=burn, request=request)
            created = await self._upstream.create(request)
            return await self._track(created, request, quote, idle)

    async def _preview(self, request: RentalRequest) -> Preview:
        try:
            return await self._upstream.preview(request)
        except ModelUnavailableError as exc:
            raise exc.with_alternatives(await self._alternatives(request)) from None

    async def _alternatives(self, request: RentalRequest) -> list[str]:
        try:
            families = families_from(await self._upstream.listings(fresh=True))
        except GpuOutletError:
            return []
        return alternatives(
            families,
            family_id=request.family_id,
            gpu_count=request.gpu_count,
            region=request.region,
        )

    async def _check_family(self, request: RentalRequest) -> None:
        """An id the catalog does not know is refused with close matches; when the catalog
        cannot be read right now, the quote judges it instead."""
        try:
            families = await self.families()
        except (TransportError, ServerError, MalformedResponseError) as exc:
            log.info("could not read the catalog to check the family (%s)", exc)
            return
        check_family(request.family_id, families)


def _code(exc: GpuOutletError) -> str:
    """The code a refusal is known by in the REST replies."""
    if isinstance(exc, APIError):
        return exc.code
    if isinstance(exc, SpendingCapError):
        return "spending_cap"
    if isinstance(exc, KeyNotOnAccountError):
        return "key_not_on_account"
    return "refused"
