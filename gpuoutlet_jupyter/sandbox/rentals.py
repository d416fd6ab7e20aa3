"""Rental lifecycle and money: the seed's nine create steps, stop, failure, metering."""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import replace

from . import ids
from .catalogue import Catalogue
from .clock import SandboxClock, iso_utc
from .errors import ApiError, not_found
from .money import cost_cents, settle
from .provider import Provider
from .schemas import CreateRentalRequest, Rental
from .settings import HOUR_SECONDS
from .store import RentalRow, Store, Tx

logger = logging.getLogger(__name__)

ACTIVE = ("provisioning", "running")
FINISHED = ("stopped", "failed")
WALLET_EXHAUSTED = "wallet exhausted"


def to_wire(rental: RentalRow) -> Rental:
    return Rental(
        id=rental.id,
        status=rental.status,
        host=rental.host,
        port=rental.port,
        pricePerHourCents=rental.price_per_hour_cents,
        startedAt=iso_utc(rental.started_at),
        error=rental.error,
        familyId=rental.family_id,
        gpuCount=rental.gpu_count,
        templateId=rental.template_id,
        region=rental.region,
        name=rental.name,
        autoStopAfterHours=rental.auto_stop_after_hours,
        stoppedAt=None if rental.stopped_at is None else iso_utc(rental.stopped_at),
    )


def _request_hash(normalized: dict[str, object]) -> str:
    canonical = json.dumps(normalized, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def auto_stop_at(rental: RentalRow) -> int | None:
    if rental.auto_stop_after_hours is None:
        return None
    return rental.started_at + math.floor(rental.auto_stop_after_hours * HOUR_SECONDS)


def billing_end(rental: RentalRow, now: int) -> int:
    """Billing runs until now, or until the auto-stop moment if that came first."""
    limit = auto_stop_at(rental)
    return now if limit is None else min(now, limit)


class Rentals:
    """Every change to a rental or a wallet goes through here, each in one transaction."""

    def __init__(
        self, store: Store, clock: SandboxClock, catalogue: Catalogue, provider: Provider
    ) -> None:
        self._store = store
        self._clock = clock
        self._catalogue = catalogue
        self._provider = provider

    # -- the API ------------------------------------------------------------------------

    async def create(
        self, account_id: str, request: CreateRentalRequest, idempotency_key: str | None
    ) -> RentalRow:
        """The seed's "What happens server-side", step by step, in one transaction."""
        # 1. Validate request shape: done by CreateRentalRequest before we get here.
        wanted = request.normalized()
        request_hash = _request_hash(wanted)
        family_id, gpu_count, region = request.familyId, request.gpuCount, request.region
        async with self._store.transaction() as tx:
            # 2. Lock the wallet row (BEGIN IMMEDIATE took SQLite's write lock).
            wallet = tx.lock_wallet(account_id)
            if wallet is None:
                raise not_found("This account has no wallet.")
            if idempotency_key is not None:
                replayed = self._replay(tx, account_id, idempotency_key, request_hash)
                if replayed is not None:
                    return replayed
            candidates = self._catalogue.matching(family_id, region)
            usage = tx.usage()
            # The hour of cost is the rate of the listing step 5 will pick (the lock is held,
            # so nothing can take its capacity in between); with no capacity anywhere, the
            # cheapest matching listing, so a short wallet hears 402 before 409.
            quote = self._catalogue.cheapest(candidates, gpu_count, usage) or min(
                candidates, key=lambda c: c.price_per_gpu_hour_cents, default=None
            )
            if quote is None:
                raise self._no_capacity(family_id, gpu_count, region)
            hour_cost = quote.price_per_gpu_hour_cents * gpu_count
            # 3. Verify available balance >= 1 hour of cost.
            if wallet.available_cents < hour_cost:
                raise ApiError(
                    402,
                    "insufficient_balance",
                    f"Your available balance is {wallet.available_cents}¢ but a {gpu_count}× "
                    f"{family_id} rental needs one hour of cost up front: {hour_cost}¢. "
                    f"Deposit at least {hour_cost - wallet.available_cents}¢, stop another "
                    "rental, or choose fewer or cheaper GPUs.",
                    requiredCents=hour_cost,
                    availableCents=wallet.available_cents,
                )
            # 4. Reserve the hour's cost (available -> reserved).
            tx.adjust_wallet(account_id, available=-hour_cost, reserved=hour_cost)
            # 5. Pick the cheapest matching listing.
            listing = self._catalogue.cheapest(candidates, gpu_count, usage)
            if listing is None:
                raise self._no_capacity(family_id, gpu_count, region)  # rolls step 4 back
            if listing.price_per_gpu_hour_cents * gpu_count != hour_cost:
                raise RuntimeError("the listing changed under the wallet lock")
            # 6. Send the allocation request to the upstream provider.
            now = self._clock.now_seconds()
            allocation = await self._provider.allocate(tx, listing, gpu_count, now)
            # 7. Create the rental row with status='provisioning'.
            started_at = self._clock.now_seconds()
            rental = tx.insert_rental(
                RentalRow(
                    id=ids.rental_id(),
                    account_id=account_id,
                    family_id=family_id,
                    gpu_count=gpu_count,
                    template_id=str(wanted["templateId"]),
                    listing_id=listing.id,
                    region=listing.country,
                    provider_host=allocation.provider_host,
                    price_per_hour_cents=hour_cost,
                    status="provisioning",
                    host=None,
                    port=None,
                    pod_port=None,
                    error=None,
                    name=request.name,
                    auto_stop_after_hours=request.autoStopAfterHours,
                    started_at=started_at,
                    ready_at=started_at + (allocation.ready_at - now),
                    stop_requested_at=None,
                    stopped_at=None,
                    reserved_cents=hour_cost,
                    charged_cents=0,
                    capacity_held=True,
                )
            )
            if idempotency_key is not None:
                tx.remember_idempotency(account_id, idempotency_key, request_hash, rental.id)
        # 8. Release the wallet lock: the transaction committed when the block ended.
        logger.info(
            "rental %s: %d× %s on %s (%s) at %d¢/h",
            rental.id,
            gpu_count,
            family_id,
            listing.id,
            allocation.provider_host,
            hour_cost,
        )
        # 9. Return 200 (the route does).
        return rental

    def _replay(self, tx: Tx, account_id: str, key: str, request_hash: str) -> RentalRow | None:
        seen = tx.idempotent(account_id, key)
        if seen is None:
            return None
        seen_hash, rental_id = seen
        if seen_hash != request_hash:
            raise ApiError(
                422,
                "idempotency_conflict",
                "This Idempotency-Key was already used with a different request body. Reuse a "
                "key only to retry the identical request; use a new key for a new rental.",
            )
        rental = tx.rental(rental_id)
        if rental is None:
            raise not_found(
                f"Rental {rental_id}, created with this Idempotency-Key, no longer exists; "
                "use a new key to rent again."
            )
        return rental

    def _no_capacity(self, family_id: str, gpu_count: int, region: str | None) -> ApiError:
        where = f" in {region}" if region else ""
        offered = sorted({c.country for c in self._catalogue.listings_for(family_id)})
        return ApiError(
            409,
            "no_capacity",
            f"No {family_id} listing{where} has {gpu_count} free GPU(s) right now. Try fewer "
            f"GPUs, another region ({family_id} is offered in {', '.join(offered)}), or again "
            "later.",
        )

    async def stop(self, account_id: str, rental_id: str) -> RentalRow:
        """Settle the money now and mark the rental stopping; the worker tears the pod down."""
        async with self._store.transaction() as tx:
            rental = tx.rental(rental_id)
            if rental is None or rental.account_id != account_id:
                raise not_found(
                    f"No rental {rental_id} on this account; GET /v1/rentals lists yours."
                )
            if rental.status not in ACTIVE:
                return rental
            now = self._clock.now_seconds()
            rental = self._settle(tx, rental, billing_end(rental, now))
            rental = replace(rental, status="stopping", stop_requested_at=now)
            tx.save_rental(rental)
        logger.info("rental %s: stop requested", rental_id)
        return rental

    async def fail(self, rental_id: str, error: str, *, only_if: str | None = None) -> RentalRow:
        """Fail a rental (provider failure or a test's request) and tear its pod down;
        with `only_if`, only a rental still in that status."""
        async with self._store.transaction() as tx:
            rental = tx.rental(rental_id, include_deleted=only_if is not None)
            if rental is None:
                raise not_found(f"No rental {rental_id}.")
            if rental.status in FINISHED or (only_if is not None and rental.status != only_if):
                return rental
            rental = self._fail(tx, rental, error)
        await self._provider.stop_pod(rental_id)
        return rental

    async def forget(self, rental_id: str) -> RentalRow:
        """The vendor forgets a rental: settle, tear down, hide it from every /v1 listing."""
        async with self._store.transaction() as tx:
            rental = tx.rental(rental_id)
            if rental is None:
                raise not_found(f"No rental {rental_id}.")
            now = self._clock.now_seconds()
            if rental.status in ACTIVE:
                rental = self._settle(tx, rental, billing_end(rental, now))
            if rental.status not in FINISHED:
                rental = replace(rental, status="stopped", stopped_at=now)
            rental = replace(self._provider.release(tx, rental), deleted=True)
            tx.save_rental(rental)
        await self._provider.stop_pod(rental_id)
        logger.info("rental %s: forgotten", rental_id)
        return rental

    # -- used by the worker -------------------------------------------------------------

    async def mark_running(self, rental_id: str, host: str, port: int, pod_port: int) -> bool:
        """Flip a provisioning rental to running; False if it is no longer provisioning."""
        async with self._store.transaction() as tx:
            rental = tx.rental(rental_id, include_deleted=True)
            if rental is None or rental.status != "provisioning":
                return False
            rental = replace(rental, status="running", host=host, port=port, pod_port=pod_port)
            tx.save_rental(rental)
        logger.info("rental %s: running (pod port %d)", rental_id, pod_port)
        return True

    async def meter(self) -> None:
        """Bill every active rental up to now; auto-stop and stop exhausted wallets."""
        async with self._store.transaction() as tx:
            now = self._clock.now_seconds()
            for rental in tx.rentals_to_meter(now):
                self._meter(tx, rental, now)

    async def finish_stopping(self, rental_id: str) -> None:
        async with self._store.transaction() as tx:
            rental = tx.rental(rental_id, include_deleted=True)
            if rental is None or rental.status != "stopping":
                return
            rental = self._provider.release(tx, rental)
            rental = replace(rental, status="stopped", stopped_at=self._clock.now_seconds())
            tx.save_rental(rental)
        logger.info("rental %s: stopped", rental_id)

    # -- money --------------------------------------------------------------------------

    def _settle(self, tx: Tx, rental: RentalRow, end: int) -> RentalRow:
        """Charge cost(end - startedAt) minus what is already charged (the reservation pays
        first, then available as far as it goes) and release the rest of the reservation."""
        wallet = tx.wallet(rental.account_id)
        assert wallet is not None
        due = cost_cents(rental.price_per_hour_cents, end - rental.started_at)
        s = settle(
            due=due - rental.charged_cents,
            reserved=rental.reserved_cents,
            available=wallet.available_cents,
        )
        tx.adjust_wallet(
            rental.account_id,
            available=s.released - s.from_available,
            reserved=-rental.reserved_cents,
            spent=s.charged,
        )
        return replace(rental, reserved_cents=0, charged_cents=rental.charged_cents + s.charged)

    def _refund(self, tx: Tx, rental: RentalRow) -> RentalRow:
        """A rental that never came up costs nothing: hand back its reservation and charges."""
        tx.adjust_wallet(
            rental.account_id,
            available=rental.reserved_cents + rental.charged_cents,
            reserved=-rental.reserved_cents,
            spent=-rental.charged_cents,
        )
        return replace(rental, reserved_cents=0, charged_cents=0)

    def _fail(self, tx: Tx, rental: RentalRow, error: str) -> RentalRow:
        if rental.status == "provisioning":
            rental = self._refund(tx, rental)
        elif rental.status == "running":
            rental = self._settle(tx, rental, billing_end(rental, self._clock.now_seconds()))
        rental = self._provider.release(tx, rental)
        rental = replace(rental, status="failed", error=error, stopped_at=self._clock.now_seconds())
        tx.save_rental(rental)
        logger.info("rental %s: failed: %s", rental.id, error)
        return rental

    def _meter(self, tx: Tx, original: RentalRow, now: int) -> None:
        rental = original
        end = billing_end(rental, now)
        elapsed = end - rental.started_at
        if rental.reserved_cents and elapsed >= HOUR_SECONDS:
            # The first hour is over: its reservation becomes spent, metering takes over.
            tx.adjust_wallet(
                rental.account_id, reserved=-rental.reserved_cents, spent=rental.reserved_cents
            )
            rental = replace(
                rental,
                reserved_cents=0,
                charged_cents=rental.charged_cents + rental.reserved_cents,
            )
        reason: str | None = None
        if not rental.reserved_cents:
            due = cost_cents(rental.price_per_hour_cents, elapsed) - rental.charged_cents
            if due > 0:
                wallet = tx.wallet(rental.account_id)
                assert wallet is not None
                paid = min(due, wallet.available_cents)
                tx.adjust_wallet(rental.account_id, available=-paid, spent=paid)
                rental = replace(rental, charged_cents=rental.charged_cents + paid)
                if paid < due:
                    reason = WALLET_EXHAUSTED
        limit = auto_stop_at(rental)
        auto_stop = limit is not None and now >= limit
        if reason is not None or auto_stop:
            rental = self._settle(tx, rental, end)
            rental = replace(rental, status="stopping", stop_requested_at=now, error=reason)
            logger.info("rental %s: stopping (%s)", rental.id, reason or "auto-stop")
        if rental != original:
            tx.save_rental(rental)
