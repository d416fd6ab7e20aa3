"""Rental lifecycle and money: the quote, the nine create steps, stop, failure, metering.

The wallet holds a total; a rental's first hour is reserved at create (its hold: the hour's
cost less what it has been charged so far) and every running second is charged, half-up to
the cent, from the total. A rental stopped after running under a minute, and every failed
rental, is refunded in full. When the total cannot pay the next cent the wallet is at $0: every
active rental of it stops (billing ends two seconds later, when the provider has the
terminate), and usage the wallet could not pay becomes an overage invoice.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import replace

from . import billing, ids
from .catalogue import Catalogue, Listing
from .clock import SandboxClock, iso_utc
from .errors import ApiError, rental_not_found
from .money import REFUND_UNDER_SECONDS, charge_cents
from .provider import Provider
from .schemas import CreateRentalRequest, RentalSpec
from .settings import HOUR_SECONDS
from .store import RentalRow, Store, Tx

logger = logging.getLogger(__name__)

#: 9999-12-31T23:59:59Z: the latest deadline a timestamp (and the store) can hold.
MAX_STORED_SECONDS = 253_402_300_799

#: Billing runs this long past the second the wallet could not pay: the heartbeat that sees
#: it, then the provider's confirmation of the terminate ("within about 5 s", sheet 3.4).
WALLET_STOP_SECONDS = 2


def usage_at(rental: RentalRow, now: int) -> tuple[int, int]:
    """(seconds billed, charge in cents) of the rental at `now`: live while it runs, as
    settled afterwards (the charge before any refund, so the meter's invariant holds)."""
    if rental.status != "running" or rental.running_at is None:
        return rental.seconds_billed, charge_cents(rental.price_cents, rental.seconds_billed)
    end = now if rental.auto_stop_at is None else min(now, rental.auto_stop_at)
    seconds = max(rental.seconds_billed, end - rental.running_at)
    return seconds, charge_cents(rental.price_cents, seconds)


def charged_at(rental: RentalRow, now: int) -> int:
    """totalChargedCents: live while running; 0 for a refunded rental."""
    if rental.status == "running":
        return usage_at(rental, now)[1]
    return rental.net_charged_cents


class Rentals:
    """Every change to a rental or a wallet's money goes through here, each in one transaction."""

    def __init__(
        self, store: Store, clock: SandboxClock, catalogue: Catalogue, provider: Provider
    ) -> None:
        self._store = store
        self._clock = clock
        self._catalogue = catalogue
        self._provider = provider

    # -- quotes ---------------------------------------------------------------------------

    def _gpu_count(self, spec: RentalSpec) -> int:
        count = spec.gpu_count()
        if count is None:
            shown = int(spec.gpuCount) if spec.gpuCount.is_integer() else spec.gpuCount
            raise ApiError(
                400,
                "invalid_count",
                f"gpuCount must be 1, 2, 4 or 8, not {shown}.",
                {"gpuCount": "must be 1, 2, 4 or 8"},
            )
        return count

    def _unavailable(self, spec: RentalSpec, count: int, used: dict[str, int]) -> ApiError:
        where = f" in {spec.region}" if spec.region else ""
        elsewhere = sorted(
            {
                x.region
                for x in self._catalogue.matching(spec.familyId, count, None)
                if self._catalogue.free(x, used) > 0
            }
        )
        hint = (
            f"Try another region ({', '.join(elsewhere)} have one now), " if elsewhere else "Try "
        )
        return ApiError(
            400,
            "model_unavailable",
            f"No provider available for this config: no {count}× {spec.familyId}{where} is free "
            f"right now. {hint}another family or GPU count, or again in 30 seconds.",
            {
                "familyId": spec.familyId,
                "gpuCount": count,
                "region": spec.region,
                "availableRegions": elsewhere,
            },
        )

    def preview(self, spec: RentalSpec) -> Listing:
        """The listing a create issued now would take (no money, no capacity moves)."""
        count = self._gpu_count(spec)
        used = self._store.read.usage()
        candidates = self._catalogue.matching(spec.familyId, count, spec.region)
        listing = self._catalogue.cheapest_live(candidates, used)
        if listing is None:
            raise self._unavailable(spec, count, used)
        return listing

    # -- the API --------------------------------------------------------------------------

    async def create(self, user_id: str, request: CreateRentalRequest) -> RentalRow:
        """The create's server order (sheet 2.2), step by step, in one transaction."""
        # 1. Validate the body: its types by CreateRentalRequest before we get here, the
        #    count here.
        count = self._gpu_count(request)
        candidates = self._catalogue.matching(request.familyId, count, request.region)
        async with self._store.transaction() as tx:
            # 2. Row-lock the user's wallet (BEGIN IMMEDIATE holds SQLite's write lock).
            wallet = tx.wallet(user_id)
            if wallet is None:
                raise ApiError(404, "not_found", "This account has no wallet.")
            used = tx.usage()
            # The hour's cost is the rate of the listing step 5 will pick (the lock is held,
            # so nothing can take it in between); with none free, the cheapest of the shape,
            # so a short wallet hears so before it hears "unavailable".
            quote = self._catalogue.cheapest_live(candidates, used) or next(iter(candidates), None)
            if quote is None:
                raise self._unavailable(request, count, used)
            hour_cost = quote.price_cents
            # 3. Check available >= one hour of this rental's cost.
            balance = billing.balance(tx, user_id)
            assert balance is not None
            if balance.available_cents < hour_cost:
                short = hour_cost - balance.available_cents
                raise ApiError(
                    403,
                    "insufficient_balance",
                    f"Your available balance is below the 1-hour reserve: a {count}× "
                    f"{request.familyId} costs {hour_cost}¢ an hour and {hour_cost}¢ must be "
                    f"available up front; you have {balance.available_cents}¢. Top up at least "
                    f"{short}¢, stop a rental, or choose fewer or cheaper GPUs.",
                    {
                        "neededCents": hour_cost,
                        "availableCents": balance.available_cents,
                        "shortCents": short,
                    },
                )
            now = self._clock.now_seconds()
            # 4. Reserve that hour (available -> reserved): the rental inserted in step 7
            #    holds it, in this same transaction.
            tx.touch_wallet(user_id, now)
            # 5. Pick the cheapest matching live listing.
            listing = self._catalogue.cheapest_live(candidates, used)
            if listing is None:
                raise self._unavailable(request, count, used)  # rolls step 4 back
            if listing.price_cents != hour_cost:
                raise RuntimeError("the listing changed under the wallet lock")
            # 6. Send the allocation to the upstream provider.
            allocation = await self._provider.allocate(tx, listing, now)
            # 7. Insert the rental as provisioning, with the account's keys as of now: the
            #    pod accepts these and no later ones.
            keys = "".join(f"{k.public_key}\n" for k in reversed(tx.ssh_keys(user_id)))
            started_at = self._clock.now_seconds()
            auto_stop_at = (
                None
                if request.autoStopAfterHours is None
                # The sheet gives no maximum: a deadline past the last second a timestamp can
                # show (9999-12-31) is one that never comes, kept as that second.
                else started_at
                + math.floor(
                    min(request.autoStopAfterHours * HOUR_SECONDS, MAX_STORED_SECONDS - started_at)
                )
            )
            rental = tx.insert_rental(
                RentalRow(
                    id=ids.new_id("rent"),
                    user_id=user_id,
                    name=request.name,
                    status="provisioning",
                    family_id=request.familyId,
                    gpu_count=count,
                    template_id=request.templateId or "ubuntu-24-04",
                    listing_id=listing.id,
                    region=listing.region,
                    provider=listing.provider,
                    provider_host=allocation.provider_host,
                    price_cents=hour_cost,
                    host=None,
                    port=None,
                    pod_port=None,
                    error=None,
                    started_at=started_at,
                    ready_at=started_at + (allocation.ready_at - now),
                    running_at=None,
                    stopped_at=None,
                    ended_at=None,
                    auto_stop_at=auto_stop_at,
                    stop_reason=None,
                    seconds_billed=0,
                    charged_cents=0,
                    debited_cents=0,
                    refunded_cents=0,
                    overage_cents=0,
                    refunded=False,
                    last_metered_at=None,
                    authorized_keys=keys,
                    capacity_held=True,
                )
            )
        # 8. Release the lock: the transaction committed when the block ended.
        logger.info(
            "rental %s: %d× %s on %s (%s, %s) at %d¢/h",
            rental.id,
            count,
            request.familyId,
            listing.region,
            listing.provider,
            allocation.provider_host,
            hour_cost,
        )
        # 9. Return 200 (the route does).
        return rental

    async def stop(self, user_id: str, rental_id: str) -> RentalRow:
        """`stopping` and `stoppedAt` now, the money settled; the pod is torn down in the
        background and the worker marks the rental `stopped` once it is gone."""
        async with self._store.transaction() as tx:
            rental = tx.rental(rental_id)
            if rental is None or rental.user_id != user_id:
                raise rental_not_found(rental_id)
            if not rental.active:
                raise ApiError(
                    409,
                    "already_stopped",
                    f"Rental {rental_id} is already in a terminal state ({rental.status}): "
                    "there is nothing to stop.",
                    {"status": rental.status},
                )
            rental = self._end(tx, rental, self._clock.now_seconds(), "stopping", "user")
        self._provider.terminate(rental_id)
        logger.info("rental %s: stop requested", rental_id)
        return rental

    # -- the vendor's own changes ---------------------------------------------------------

    async def fail(self, rental_id: str, error: str, *, only_if: str | None = None) -> RentalRow:
        """The provider reports a failure (or a test says so): failed, refunded, torn down;
        with `only_if`, only a rental still in that status."""
        async with self._store.transaction() as tx:
            rental = tx.rental(rental_id, include_deleted=only_if is not None)
            if rental is None:
                raise ApiError(404, "not_found", f"No rental {rental_id}.")
            if not rental.active or (only_if is not None and rental.status != only_if):
                return rental
            rental = self._end(
                tx, rental, self._clock.now_seconds(), "failed", "provider", error=error
            )
        await self._provider.destroy(rental_id)
        return rental

    async def forget(self, rental_id: str) -> RentalRow:
        """The vendor loses a rental: settled, torn down, and gone from every /v1 answer."""
        async with self._store.transaction() as tx:
            rental = tx.rental(rental_id)
            if rental is None:
                raise ApiError(404, "not_found", f"No rental {rental_id}.")
            now = self._clock.now_seconds()
            if rental.active:
                rental = self._end(tx, rental, now, "stopping", "forgotten")
            if rental.status == "stopping":
                rental = replace(rental, status="stopped", ended_at=now)
            rental = replace(self._provider.release(tx, rental), deleted=True)
            tx.save_rental(rental)
        await self._provider.destroy(rental_id)
        logger.info("rental %s: forgotten", rental_id)
        return rental

    async def mark_running(self, rental_id: str, host: str, port: int, pod_port: int) -> bool:
        """Flip a provisioning rental to running (billing starts now); False if it is no
        longer provisioning."""
        async with self._store.transaction() as tx:
            rental = tx.rental(rental_id, include_deleted=True)
            if rental is None or rental.status != "provisioning":
                return False
            now = self._clock.now_seconds()
            rental = replace(
                rental,
                status="running",
                host=host,
                port=port,
                pod_port=pod_port,
                running_at=now,
                last_metered_at=now,
            )
            tx.save_rental(rental)
        logger.info("rental %s: running (pod port %d)", rental_id, pod_port)
        return True

    async def finish_stopping(self, rental_id: str) -> None:
        """The provider confirmed the terminate: `stopped`, the machine back in stock."""
        async with self._store.transaction() as tx:
            rental = tx.rental(rental_id, include_deleted=True)
            if rental is None or rental.status != "stopping":
                return
            rental = self._provider.release(tx, rental)
            rental = replace(rental, status="stopped", ended_at=self._clock.now_seconds())
            tx.save_rental(rental)
        logger.info("rental %s: stopped", rental_id)

    async def meter(self) -> list[str]:
        """One heartbeat: charge every running second up to now; stop what the wallet cannot
        pay for, and what reached autoStopAfterHours. Returns the rentals it stopped."""
        stopped: list[str] = []
        async with self._store.transaction() as tx:
            now = self._clock.now_seconds()
            for user_id in tx.active_users():
                stopped += self._meter_user(tx, user_id, now)
        for rental_id in stopped:
            self._provider.terminate(rental_id)
        return stopped

    async def add_history(
        self, user_id: str, count: int, family_id: str, gpu_count: int, name_prefix: str | None
    ) -> list[str]:
        """Past rentals, written straight into the account's history (ended, never charged)."""
        listing = self._catalogue.matching(family_id, gpu_count, None)[0]
        made = []
        async with self._store.transaction() as tx:
            now = self._clock.now_seconds()
            for i in range(count):
                started = now - (count - i) * 60
                rental = RentalRow(
                    id=ids.new_id("rent", started + i / 1000),
                    user_id=user_id,
                    name=f"{name_prefix}-{i + 1}" if name_prefix else None,
                    status="stopped",
                    family_id=family_id,
                    gpu_count=gpu_count,
                    template_id="ubuntu-24-04",
                    listing_id=listing.id,
                    region=listing.region,
                    provider=listing.provider,
                    provider_host=f"{listing.provider}-history",
                    price_cents=listing.price_cents,
                    host=None,
                    port=None,
                    pod_port=None,
                    error=None,
                    started_at=started,
                    ready_at=started,
                    running_at=None,
                    stopped_at=started + 30,
                    ended_at=started + 30,
                    auto_stop_at=None,
                    stop_reason="user",
                    seconds_billed=0,
                    charged_cents=0,
                    debited_cents=0,
                    refunded_cents=0,
                    overage_cents=0,
                    refunded=False,
                    last_metered_at=None,
                    authorized_keys="",
                    capacity_held=False,
                )
                made.append(tx.insert_rental(rental).id)
        return made

    # -- money ----------------------------------------------------------------------------

    def _charge_to(self, tx: Tx, rental: RentalRow, at: int) -> RentalRow:
        """Meter a running rental up to `at` (never past its auto-stop): the charge due is
        paid from the wallet's total as far as it goes."""
        assert rental.running_at is not None
        end = at if rental.auto_stop_at is None else min(at, rental.auto_stop_at)
        seconds = max(rental.seconds_billed, end - rental.running_at)
        charged = charge_cents(rental.price_cents, seconds)
        due = charged - rental.charged_cents
        paid = 0
        if due > 0:
            wallet = tx.wallet(rental.user_id)
            assert wallet is not None
            paid = min(due, wallet.total_cents)
            if paid:
                tx.move_money(
                    rental.user_id,
                    ids.new_id("led"),
                    "rental_charge",
                    -paid,
                    at,
                    rental_id=rental.id,
                )
        return replace(
            rental,
            seconds_billed=seconds,
            charged_cents=charged,
            debited_cents=rental.debited_cents + paid,
            last_metered_at=max(at, rental.last_metered_at or at),
        )

    def _end(
        self,
        tx: Tx,
        rental: RentalRow,
        at: int,
        status: str,
        reason: str,
        *,
        error: str | None = None,
    ) -> RentalRow:
        """Settle an active rental at `at` (its stoppedAt): the last seconds charged; a full
        refund if it failed or ran under a minute, else an overage invoice for what the wallet
        could not pay; its hold released (it is no longer active)."""
        now = self._clock.now_seconds()
        was_running = rental.status == "running"
        if was_running:
            rental = self._charge_to(tx, rental, at)
        if status == "failed" or (was_running and rental.seconds_billed < REFUND_UNDER_SECONDS):
            if rental.debited_cents:
                tx.move_money(
                    rental.user_id,
                    ids.new_id("led"),
                    "refund",
                    rental.debited_cents,
                    now,
                    rental_id=rental.id,
                )
            rental = replace(rental, refunded=True, refunded_cents=rental.debited_cents)
        else:
            shortfall = rental.charged_cents - rental.debited_cents
            if shortfall > 0:
                billing.open_invoice(
                    tx,
                    rental.user_id,
                    reason="overage",
                    amount_cents=shortfall,
                    now=now,
                    rental_id=rental.id,
                )
                rental = replace(rental, overage_cents=shortfall)
        rental = replace(
            rental,
            status=status,
            stopped_at=at,
            stop_reason=reason,
            error=error if status == "failed" else rental.error,
        )
        if status == "failed":
            rental = replace(self._provider.release(tx, rental), ended_at=now)
        tx.save_rental(rental)
        tx.touch_wallet(rental.user_id, now)
        logger.info(
            "rental %s: %s at %s (%s): charged %d¢, refunded %d¢, overage %d¢",
            rental.id,
            status,
            iso_utc(at),
            reason,
            rental.net_charged_cents,
            rental.refunded_cents,
            rental.overage_cents,
        )
        return rental

    def _meter_user(self, tx: Tx, user_id: str, now: int) -> list[str]:
        active = tx.active_rentals_of(user_id)
        running = [r for r in active if r.status == "running"]
        wallet = tx.wallet(user_id)
        assert wallet is not None
        if running and _due(running, now) > wallet.total_cents:
            return self._wallet_empty(tx, user_id, active, running, wallet.total_cents, now)
        current = {r.id: r for r in active}
        for rental in running:
            current[rental.id] = self._charge_to(tx, rental, now)
            tx.save_rental(current[rental.id])
        stopped = []
        for rental in current.values():
            if rental.auto_stop_at is not None and rental.auto_stop_at <= now:
                self._end(tx, rental, rental.auto_stop_at, "stopping", "auto_stop")
                stopped.append(rental.id)
        return stopped

    def _wallet_empty(
        self,
        tx: Tx,
        user_id: str,
        active: Sequence[RentalRow],
        running: Sequence[RentalRow],
        total: int,
        now: int,
    ) -> list[str]:
        """The wallet reaches $0 between the last heartbeat and now: find the second it could
        not pay, and stop every active rental of the account shortly after it."""
        low = min(r.last_metered_at or r.running_at or now for r in running)
        high = now
        while low < high:  # the first second whose charges exceed what the wallet holds
            middle = (low + high) // 2
            if _due(running, middle) > total:
                high = middle
            else:
                low = middle + 1
        stop_at = min(now, low + WALLET_STOP_SECONDS)
        current = {r.id: r for r in active}
        for rental in running:
            current[rental.id] = self._charge_to(tx, rental, stop_at)
        for rental in current.values():
            if rental.auto_stop_at is not None and rental.auto_stop_at < stop_at:
                self._end(tx, rental, rental.auto_stop_at, "stopping", "auto_stop")
            else:
                self._end(tx, rental, stop_at, "stopping", "wallet_empty")
        user = tx.user(user_id)
        if user is not None:
            tx.deliver(
                user.email,
                "Your pods were stopped: your wallet reached $0",
                f"{len(current)} rental(s) stopped at {iso_utc(stop_at)}: "
                + ", ".join(current)
                + ". Top up to rent again; usage the wallet could not cover is an overage "
                "invoice.",
                now,
                None,
            )
        logger.info("wallet of %s at $0: stopped %s", user_id, ", ".join(current))
        return list(current)


def _due(running: Sequence[RentalRow], at: int) -> int:
    """What the running rentals owe for their seconds up to `at`, beyond what they were
    charged."""
    due = 0
    for rental in running:
        assert rental.running_at is not None
        end = at if rental.auto_stop_at is None else min(at, rental.auto_stop_at)
        seconds = max(rental.seconds_billed, end - rental.running_at)
        due += max(0, charge_cents(rental.price_cents, seconds) - rental.charged_cents)
    return due
