"""Creating a rental: the family and key checks, gpuoutlet's quote, the wallet and the spending
cap, then the create itself, sent once with a name, and settled even when its answer is lost
(pending.py). Also the quote alone (what a create would do)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..api import (
    APIError,
    APITimeoutError,
    CreateNotMadeError,
    CreateUnknownError,
    GpuOutletError,
    KeyNotOnAccountError,
    MalformedResponseError,
    ModelUnavailableError,
    Preview,
    Rental,
    RentalRequest,
    RequestValidationError,
    ServerError,
    SpendingCapError,
    TransportError,
)
from .catalog import Family, alternatives, check_family, families_from
from .keys import AccountKeys
from .money import Spending, check_balance, check_cap, confirmation
from .names import auto_name, local_user
from .options import ServiceOptions
from .pending import PendingCreate, PendingCreates, answer_lost, matching
from .record import QuoteInfo, RentalRecord
from .upstream import Upstream

log = logging.getLogger(__name__)

#: Tracks a rental just created, or found again after its answer was lost (inside the
#: create lock, or before its pending create is settled): the rental, the request, its quote
#: and its idle stop (minutes, None: none).
Track = Callable[[Rental, RentalRequest, QuoteInfo, "float | None"], Awaitable[RentalRecord]]
#: Whether a rental id is tracked as made here (another create's, not this one's to find).
Taken = Callable[[str], bool]

#: How many of the newest rentals are searched for a create whose answer was lost.
NEWEST = 50
#: Seconds between two searches for it (the last repeats).
SEARCH_GAPS = (1.0, 2.0, 4.0, 8.0)


class Creator:
    """Checks, quotes and creates, one create at a time.

    Creates run one at a time: two at once could each pass the balance and cap checks before
    either is tracked, and together overspend. ``spending`` is the burn of the rentals tracked
    now; creates not yet settled (``pending``) count on top of it; ``track`` takes the new
    rental in before the next create may start.
    """

    def __init__(
        self,
        upstream: Upstream,
        keys: AccountKeys,
        options: ServiceOptions,
        *,
        spending: Callable[[], Spending],
        track: Track,
        taken: Taken,
        changed: Callable[[], None],
        stop: Callable[[str], Awaitable[dict[str, Any]]],
    ) -> None:
        self._upstream = upstream
        self._keys = keys
        self._options = options
        self._spending = spending
        self._track = track
        self._taken = taken
        self._stop = stop
        self._lock = asyncio.Lock()
        #: Creates sent and not yet settled (their answer may be lost).
        self.pending = PendingCreates(changed)
        #: Each create from its arrival until it is settled, by request: what it made.
        self._under_way: dict[RentalRequest, asyncio.Future[list[RentalRecord] | None]] = {}
        self._user = local_user()

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

    async def create(
        self, request: RentalRequest, idle: float | None, notebook: str | None = None
    ) -> tuple[list[RentalRecord], str | None]:
        """Check, quote and create the rental once: the record(s) and a note for the user.

        Before anything is sent: the family must be in the catalog and the SSH entries' key on
        the account. Then gpuoutlet's quote (``rentals/preview``) prices it: the wallet must
        hold its first hour and the burn (creates not yet settled included) stay under the
        spending cap (a cap with no quote refuses). The create carries a name (the user's, or
        ``<user>/<notebook or "jupyter">-<4 characters>``) and is sent once: the API has no
        idempotency key, so it is never repeated. A lost answer is settled by the name
        (``_find``). The same request, asked again before the first is settled, waits for it
        and gets its rental rather than send a second create.
        """
        await self._check_family(request)
        await self._keys.require()
        while True:
            earlier = self._under_way.get(request)
            if earlier is not None:
                theirs = await asyncio.shield(earlier)
                if theirs:
                    return theirs, (
                        "The same request was already under way; this is its rental: nothing "
                        "was sent twice."
                    )
                continue  # it made nothing (or is waiting for a choice): look again
            unsettled = self.pending.find(request)
            if unsettled is not None and unsettled.state == "ambiguous":
                raise unsettled.ambiguous_error()
            break
        under_way: asyncio.Future[list[RentalRecord] | None]
        under_way = asyncio.get_running_loop().create_future()
        self._under_way[request] = under_way
        made: list[RentalRecord] | None = None
        try:
            made, note = await self._create(request, idle, notebook)
            return made, note
        finally:
            del self._under_way[request]
            under_way.set_result(made)

    async def _create(
        self, request: RentalRequest, idle: float | None, notebook: str | None
    ) -> tuple[list[RentalRecord], str | None]:
        named = request
        if not request.name:
            named = request.model_copy(update={"name": auto_name(self._user, notebook)})
        async with self._lock:
            cap = self._options.max_hourly_spend_cents
            burn = self._spending().burn_cents_per_hour
            try:
                quote = QuoteInfo.from_preview(await self._preview(request, creating=True))
            except (TransportError, ServerError, MalformedResponseError) as exc:
                check_cap(
                    None, cap_cents=cap, burn_cents_per_hour=burn, request=request, reason=str(exc)
                )
                raise
            site = self._upstream.site
            check_balance(quote, await self._upstream.balance(fresh=True), request, site)
            check_cap(quote, cap_cents=cap, burn_cents_per_hour=burn, request=request)
            pending = self.pending.open(request, named, quote, idle)
            try:
                created = await self._upstream.create(named)
                record = await self._track(Rental.from_created(created, named), named, quote, idle)
            except GpuOutletError as exc:
                if not answer_lost(exc):
                    self.pending.settle(pending)
                    if isinstance(exc, TransportError) and exc.sent is False:
                        raise CreateNotMadeError(
                            f"Not created, nothing charged: no connection to gpuoutlet could be "
                            f"made, so the create of {named.describe()} never left ({exc}). You "
                            "can rent again once gpuoutlet is reachable.",
                            create_id=pending.id,
                            name=pending.name,
                        ) from exc
                    raise
                lost = exc
                self.pending.lost(pending, _reason(exc))
            except BaseException:
                self.pending.settle(pending)
                raise
            else:
                self.pending.settle(pending)
                return [record], None
        # Settled outside the lock: other creates go on meanwhile, counting this one.
        return await self._find(pending, lost)

    async def _find(
        self, pending: PendingCreate, lost: GpuOutletError
    ) -> tuple[list[RentalRecord], str | None]:
        """Settle a create whose answer was lost, from the account's newest rentals: searched
        for ``create_search_seconds`` (plus the request timeout after a timeout: the API may
        still have been working on it)."""
        window = self._options.create_search_seconds
        if isinstance(lost, APITimeoutError):
            window += self._upstream.request_timeout
        deadline = time.monotonic() + window
        gaps = iter(SEARCH_GAPS)
        found: list[Rental] = []
        read = False
        problem: GpuOutletError | None = None
        try:
            while True:
                try:
                    newest = await self._upstream.newest(NEWEST)
                except GpuOutletError as exc:
                    problem = exc
                else:
                    read = True
                    skew = self._upstream.budget.skew
                    found = matching(pending, newest, skew=skew, taken=self._taken)
                    if found:
                        break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                await asyncio.sleep(min(next(gaps, SEARCH_GAPS[-1]), left))
            records = [
                await self._track(rental, pending.request, pending.quote, pending.idle)
                for rental in found
            ]
        except BaseException:
            self.pending.settle(pending)
            raise
        what = f"{pending.request.describe()} named {pending.name}"
        if len(records) == 1:
            self.pending.settle(pending)
            log.warning("create %s: answer lost, found %s by its name", pending.id, records[0].id)
            return records, (
                f"The answer to this create was lost ({pending.reason}); it was not sent again. "
                f"gpuoutlet-jupyter found the rental it made among your newest rentals, by its "
                f"name {pending.name}, and took it in: one rental."
            )
        if records:
            self.pending.ambiguous(pending, [r.id for r in records])
            raise pending.ambiguous_error()
        self.pending.settle(pending)
        if not read:
            raise CreateUnknownError(
                f"The answer to the create of {what} was lost ({pending.reason}), and your "
                f"rentals could not be read to tell whether it was made ({problem}). It was not "
                "sent again. If it was made, it shows in your rentals (%gpu_rentals, the "
                "sidebar) once gpuoutlet answers; stop it there if you do not want it.",
                create_id=pending.id,
                name=pending.name,
            )
        raise CreateNotMadeError(
            f"Not created, nothing charged: the answer to the create of {what} was lost "
            f"({pending.reason}), and none of your rentals started since it was sent has that "
            "name. It was not sent again; you can rent again.",
            create_id=pending.id,
            name=pending.name,
        )

    async def settle(
        self, create_id: str, keep: list[str] | None
    ) -> tuple[list[str], list[dict[str, Any]]]:
        """The user's choice among the rentals that match a create whose answer was lost: keep
        ``keep`` (None: all), stop the others. The kept ids, and the stop replies."""
        pending = self.pending.get(create_id)
        if pending is None or pending.state != "ambiguous":
            raise RequestValidationError(
                [
                    (
                        "createId",
                        f"{create_id!r} is not a create waiting for a choice (the rentals "
                        "list shows those under pendingCreates)",
                    )
                ],
                what="choice",
            )
        chosen = list(pending.candidates) if keep is None else list(dict.fromkeys(keep))
        if not chosen or any(rental_id not in pending.candidates for rental_id in chosen):
            raise RequestValidationError(
                [
                    (
                        "keep",
                        f"must name one or more of {', '.join(pending.candidates)}, the rentals "
                        f"that match {pending.name} (got {', '.join(chosen) or 'none'})",
                    )
                ],
                what="choice",
            )
        stopped = [
            await self._stop(rental_id)
            for rental_id in pending.candidates
            if rental_id not in chosen
        ]
        self.pending.settle(pending)
        log.info("create %s: kept %s", create_id, ", ".join(chosen))
        return chosen, stopped

    async def _preview(self, request: RentalRequest, *, creating: bool = False) -> Preview:
        try:
            return await self._upstream.preview(request, creating=creating)
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


def _reason(exc: GpuOutletError) -> str:
    """Why a create's answer was lost, in a few words."""
    if isinstance(exc, APITimeoutError):
        return "no answer in time"
    if isinstance(exc, TransportError):
        return "the connection broke before the answer came"
    if isinstance(exc, MalformedResponseError):
        return "the answer came back garbled"
    status = exc.status_code if isinstance(exc, APIError) else None
    return f"gpuoutlet answered {status}" if status else type(exc).__name__
