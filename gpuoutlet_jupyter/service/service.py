"""RentalService: creates rentals, watches each with one poller however many viewers, acts on changes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol, TypeVar

from ..api import (
    AlreadyStoppedError,
    APIError,
    AsyncRentalsClient,
    Balance,
    ConfigurationError,
    DuplicateKeyError,
    GpuOutletError,
    KeyNotOnAccountError,
    Listing,
    MalformedResponseError,
    ModelUnavailableError,
    NotFoundError,
    Rental,
    RentalNotActiveError,
    RentalRequest,
    RequestValidationError,
    RetryPolicy,
    ServerError,
    Session,
    SpendingCapError,
    SSHKey,
    TransportError,
    format_cents,
)
from ..ssh import SSHConfigError, SSHConfigWriter, SSHEntry, SSHKeyError, local_key
from .cache import Cached
from .catalog import Family, alternatives, check_family, families_from
from .idle import (
    NEEDS_SERVER,
    NO_KERNELS,
    ActivitySource,
    IdleDecision,
    KernelActivity,
    decide,
)
from .keys import KeyCheck, default_key_name, find
from .money import Spending, check_balance, check_cap, confirmation, wallet_json
from .owners import Owners, combine
from .phase import describe
from .record import QuoteInfo, RentalRecord, SSHInfo, StopInfo
from .session import SessionInfo
from .store import Held, Loaded, Signature, StateStore, is_over

log = logging.getLogger(__name__)

RentalView = dict[str, Any]
T = TypeVar("T")

# The watcher handles failures itself (so they show as they happen), hence one try per poll.
ONE_TRY = RetryPolicy(attempts=1)
#: Seconds after which an idle look merges with the shared state file even if it seems unchanged.
SYNC_INTERVAL = 60.0


class KernelSpecs(Protocol):
    """Installs and removes the per-rental kernelspec (supplied by the remote-kernel layer)."""

    def install(self, rental: Rental, entry: SSHEntry) -> str:
        """Write the rental's kernelspec; return its kernel name."""

    def remove(self, rental_id: str) -> None:
        """Delete the rental's kernelspec if there is one."""

    def installed(self) -> dict[str, str]:
        """``{kernel name: rental id}`` of the kernelspecs present."""


@dataclass(frozen=True)
class ServiceOptions:
    """Timing of the watchers. The defaults follow the seed: a poll every 2 s, 60 polls."""

    poll_interval: float = 2.0
    max_polls: int = 60
    # After max_polls without running: still watched (it may be billed), less often.
    slow_poll_interval: float = 10.0
    # A running rental is polled too, so a stop elsewhere (auto-stop, wallet) is noticed.
    running_poll_interval: float = 30.0
    backoff_max: float = 30.0
    reconcile_interval: float = 300.0
    #: How long every viewer shares one answer of each account endpoint. The dashboard polls
    #: the balance every 15 s and /auth/me every 5 min; gpuoutlet caches its catalog 30 s.
    balance_ttl: float = 15.0
    catalog_ttl: float = 60.0
    keys_ttl: float = 60.0
    session_ttl: float = 300.0
    #: Refuse a create that would take the summed hourly price of the active rentals over
    #: this many cents; 0: no cap.
    max_hourly_spend_cents: int = 0
    #: Idle auto-stop of the rentals created here, in minutes, unless a create says otherwise;
    #: 0: off. Needs an activity source (the Jupyter server's kernels).
    idle_stop_minutes: float = 0.0
    #: How long before an idle stop the warning shows (at most the idle time itself).
    idle_warning_minutes: float = 5.0
    #: Seconds between two looks at the kernels' activity.
    idle_check_interval: float = 15.0


class RentalService:
    """The one place that talks to the rentals API on behalf of every viewer of this server."""

    def __init__(
        self,
        client: AsyncRentalsClient,
        *,
        state_dir: Path,
        ssh: SSHConfigWriter | None = None,
        kernelspecs: KernelSpecs | None = None,
        options: ServiceOptions | None = None,
        activity: ActivitySource | None = None,
        owns_client: bool = False,
    ) -> None:
        self.client = client
        self.ssh = ssh
        self.kernelspecs = kernelspecs
        #: What the rentals' kernels are doing; None: no idle auto-stop (nothing to judge by).
        self.activity = activity
        self.options = options or ServiceOptions()
        self._owns_client = owns_client
        self._store = StateStore(state_dir)
        # Servers sharing the state dir: who decides each idle stop, and their kernels' activity.
        self._owners = Owners(state_dir, check_interval=self.options.idle_check_interval)
        #: What was wrong with the state file at start (empty: nothing), for the status.
        self.state_problems: list[str] = []
        self._save_error: str | None = None
        # Rentals in the shared state file that may run (other servers' too), at the last save.
        self._shared_active: set[str] = set()
        # The state file as this process last saved it (see `_sync`), and when.
        self._signature: Signature = None
        self._synced_at = -float("inf")
        self._records: dict[str, RentalRecord] = {}
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._version = 0
        self._changed = asyncio.Condition()
        self._save_lock = asyncio.Lock()
        self._reconciler: asyncio.Task[None] | None = None
        self._idler: asyncio.Task[None] | None = None
        self._started = False
        # Each account endpoint is asked once per TTL, however many viewers there are.
        self._balance: Cached[Balance] = Cached(client.balance, self.options.balance_ttl)
        self._listings: Cached[list[Listing]] = Cached(client.listings, self.options.catalog_ttl)
        self._keys: Cached[list[SSHKey]] = Cached(client.ssh_keys, self.options.keys_ttl)
        self._session: Cached[Session] = Cached(client.me, self.options.session_ttl)
        # Creates run one at a time: two at once could each pass the balance and cap checks
        # before either is tracked, and together overspend.
        self._create_lock = asyncio.Lock()
        # Upstream GETs of single rentals, counted for the fan-in tests and benchmarks.
        self.upstream_polls = 0

    # Lifecycle.

    async def start(self) -> None:
        """Load persisted rentals, reconcile with the API's list, and resume watching."""
        if self._started:
            return
        self._started = True
        await asyncio.to_thread(self._owners.claim)
        loaded = await asyncio.to_thread(self._store.load)
        for record in loaded.records:
            record.idle_warn_minutes = self.options.idle_warning_minutes
            if record.ended_at is None:
                record.mark_ended(time.time())  # a state file from before endedAt was kept
                record.changed = record.ended_at is not None
            record.decided_here = record.owner == self._owners.id
            record.publish()  # as it was when saved: consistent, so viewers may see it at once
            self._records[record.id] = record
            self._version = max(self._version, record.version)
        listed = await self.reconcile()
        if loaded.damaged:
            self._report_damage(loaded, listed is not None)
        for record in list(self._records.values()):
            if record.rental.is_ready and record.watched:
                # The entry may have been removed while the server was down: write it again.
                try:
                    async with self._lock(record.id):
                        await self._act(record, rewrite_ssh=True)
                        await self._bump(record)
                except Exception:
                    # Its watcher tries again; the other rentals (and the service) go on.
                    log.exception("rental %s: could not restore its SSH entry", record.id)
            self._ensure_watcher(record.id)
        if listed is not None:
            await self._remove_stale_kernelspecs(listed)
        # Takes over the idle stops of owners that are gone (see owners.py), before any look.
        await self._save()
        if self.options.reconcile_interval > 0:
            self._reconciler = asyncio.create_task(self._reconcile_forever())
        if self.activity is not None:
            self._idler = asyncio.create_task(self._check_idle_forever(), name="gpuoutlet-idle")

    def _report_damage(self, loaded: Loaded, listed: bool) -> None:
        """Say what a damaged state file cost, claiming a recovery only when there was one."""
        if listed:
            after = (
                "Rentals of the skipped records that are still active were recovered from the "
                "API's list."
            )
        else:
            after = (
                "The API's list could not be read, so rentals of the skipped records are not "
                "watched until it can be (at the next reconcile, or a restart): check your "
                "gpuoutlet account for rentals you do not see here."
            )
        self.state_problems = [*loaded.problems, after]
        log.error(
            "gpuoutlet: the rentals state file had problems: %s. %s%s",
            "; ".join(loaded.problems),
            f"The file as it was is kept as {loaded.set_aside}. " if loaded.set_aside else "",
            after,
        )

    async def _remove_stale_kernelspecs(self, listed: list[Rental]) -> None:
        """Kernelspecs left by a rental that stopped while no service was watching it.

        Only after a successful list, and only those whose rental is known to be over: listed
        as stopped or failed, or tracked here and over. A spec of a rental this process knows
        nothing of (another account's, a kernel renting by itself) is none of its business.
        """
        if self.kernelspecs is None:
            return
        over = {rental.id for rental in listed if rental.is_final}
        over.update(rid for rid, record in self._records.items() if not record.watched)
        try:
            installed = await asyncio.to_thread(self.kernelspecs.installed)
            for rental_id in sorted(set(installed.values()) & over):
                log.info("removing the kernelspec of rental %s: it is over", rental_id)
                await asyncio.to_thread(self.kernelspecs.remove, rental_id)
        except OSError as exc:
            log.warning("gpuoutlet: could not sweep the kernelspecs of ended rentals: %s", exc)

    async def close(self, *, warn_running: bool = True) -> None:
        """Stop every watcher and persist; rentals keep running upstream.

        With `warn_running`, rentals that may still be billed are named in one warning: once
        no service watches them, nothing here will notice or stop them.
        """
        if warn_running:
            self._warn_still_running()
        tasks = list(self._watchers.values())
        tasks.extend(task for task in (self._reconciler, self._idler) if task is not None)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._watchers.clear()
        self._reconciler = self._idler = None
        if self._started:
            await self._save()
            # Its idle stops may now be taken over by another server on this state dir.
            await asyncio.to_thread(self._owners.release)
        if self._owns_client:
            await self.client.aclose()
        self._started = False

    def _warn_still_running(self) -> None:
        active = [r.rental for r in self._records.values() if r.watched]
        if not active:
            return
        listed = "; ".join(
            f"{rental.id} ({_gpus(rental)}, {format_cents(rental.price_per_hour_cents)}/h)"
            for rental in sorted(active, key=lambda r: r.started_at)
        )
        burn = sum(rental.price_per_hour_cents for rental in active)
        idle = sorted(
            r.id
            for r in self._records.values()
            if r.watched and r.idle_stop_minutes and r.decided_here
        )
        # Idle auto-stop is this process's doing: nobody stops those while it is down.
        idle_note = (
            f" The idle auto-stop of {', '.join(idle)} does not run while Jupyter is down."
            if idle and self.activity is not None
            else ""
        )
        log.warning(
            "gpuoutlet is shutting down with %d rental(s) not stopped: %s. They keep running "
            "and costing money (%s/h in all) until stopped: stop them with %%gpu_stop ID in a "
            "notebook, from the GPU rentals sidebar, or start Jupyter again to watch them.%s",
            len(active),
            listed,
            format_cents(burn),
            idle_note,
        )

    # Reading.

    def rentals(self) -> list[RentalView]:
        """Every tracked rental, newest first."""
        # A record not yet announced (its first update still running) is not listed yet.
        announced = [r for r in self._records.values() if r.announced]
        announced.sort(key=lambda r: (r.rental.started_at, r.id), reverse=True)
        return [record.view() for record in announced]

    @property
    def version(self) -> int:
        """Grows on every change of any rental: the list long-poll's cursor."""
        return self._version

    def watching(self) -> list[str]:
        """Ids of the rentals that have a live watcher."""
        return [
            rid
            for rid, task in self._watchers.items()
            if not task.done() and self._records[rid].watched
        ]

    async def rental(self, rental_id: str) -> RentalView:
        """One rental from the service's state; an unknown id is fetched once and then tracked."""
        return (await self._track(rental_id)).view()

    async def wait_for_change(self, rental_id: str, since: int, timeout: float) -> RentalView:
        """Long-poll: the rental as soon as its version exceeds `since`, or as it is at `timeout`."""
        record = await self._track(rental_id)
        if record.version <= since:
            await self._wait(lambda: self._records[rental_id].version > since, timeout)
        return self._records[rental_id].view()

    async def wait_for_any_change(self, since: int, timeout: float) -> list[RentalView]:
        """Long-poll over the whole list: one request per page, however many rentals."""
        if self._version <= since:
            await self._wait(lambda: self._version > since, timeout)
        return self.rentals()

    async def balance(self) -> Balance:
        """The wallet's balance, shared by every viewer for ``balance_ttl`` seconds."""
        return await self._balance.get()

    async def families(self) -> list[Family]:
        """The GPU families, derived from the catalog's listings (shared for ``catalog_ttl``)."""
        return families_from(await self._listings.get())

    async def session(self) -> SessionInfo:
        """Who is signed in and when the session ends (shared for ``session_ttl``)."""
        return SessionInfo(await self._session.get())

    def spending(self) -> Spending:
        """The hourly burn of the rentals that may be billed, and what they have cost so far."""
        active = [r.rental for r in self._records.values() if r.watched]
        return Spending(
            burn_cents_per_hour=sum(rental.price_per_hour_cents for rental in active),
            cost_cents=sum(r.cost_cents() for r in self._records.values()),
            active=len(active),
        )

    @property
    def site(self) -> str:
        """Where the user tops up and manages the account, for messages."""
        return self.client.api_url

    async def wallet_view(self) -> dict[str, Any]:
        """The balance plus the burn, how long the wallet lasts at it, the cap and warnings."""
        return wallet_json(
            await self.balance(),
            self.spending(),
            cap_cents=self.options.max_hourly_spend_cents,
            site=self.site,
        )

    # SSH keys: a pod lets in the account's keys as they were when it was created.

    async def key_check(self, *, fresh: bool = False) -> KeyCheck:
        """The SSH entries' key against the account's keys (fetched anew with ``fresh``)."""
        keys = await (self._keys.fresh() if fresh else self._keys.get())
        ssh = self.ssh
        if ssh is None:
            return KeyCheck(None, tuple(keys), "SSH entries are turned off on this server.")
        try:
            local = await asyncio.to_thread(lambda: local_key(ssh.identity()))
        except (SSHKeyError, OSError) as exc:
            return KeyCheck(None, tuple(keys), f"The SSH key could not be read: {exc}")
        return KeyCheck(local, tuple(keys))

    async def _require_key(self) -> None:
        """Refuse a create whose pod would not let the SSH entry's key in."""
        if self.ssh is None:
            return  # no SSH entry will be written: no key to check
        # Fresh, one request per create: a key deleted in the dashboard a moment ago counts.
        (await self.key_check(fresh=True)).require()

    async def add_local_key(self, name: str | None = None) -> tuple[SSHKey, bool]:
        """Post the SSH entries' public key to the account; (the key, whether it was there)."""
        check = await self.key_check(fresh=True)
        if check.local is None:
            raise ConfigurationError(check.problem or "No SSH key to add.")
        existing = find(check.account, check.local.fingerprint)
        if existing is not None:
            return existing, True
        try:
            key = await self.client.add_ssh_key(
                name or default_key_name(check.local), check.local.public_key
            )
        except DuplicateKeyError:
            # Added meanwhile (the dashboard, another process): it is there, which is the point.
            keys = await self._keys.fresh()
            found = find(keys, check.local.fingerprint)
            if found is None:
                raise
            return found, True
        self._keys.invalidate()
        log.info("added the SSH key %s to the account as %r", key.fingerprint, key.name)
        return key, False

    # Acting.

    async def quote(self, request: RentalRequest) -> dict[str, Any]:
        """What a create of ``request`` would do, without doing it: gpuoutlet's quote, the
        balance, the cap and the key check, each with its verdict, and the confirmation line."""
        await self._check_family(request)
        preview = QuoteInfo.from_preview(await self._preview(request))
        balance = await self.balance()
        burn = self.spending().burn_cents_per_hour
        cap = self.options.max_hourly_spend_cents
        problems: list[dict[str, str]] = []
        checks: list[Callable[[], None]] = [
            lambda: check_balance(preview, balance, request, self.site),
            lambda: check_cap(preview, cap_cents=cap, burn_cents_per_hour=burn, request=request),
        ]
        for check in checks:
            try:
                check()
            except GpuOutletError as exc:
                problems.append({"code": _code(exc), "message": str(exc)})
        keys = await self.key_check()
        try:
            if keys.local is not None and not keys.on_account:
                keys = await self.key_check(fresh=True)
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
        self, request: RentalRequest, *, idle_stop_minutes: float | None = None
    ) -> RentalView:
        """Check, quote and create a rental once, then watch it.

        Before anything is sent: the family must be in the catalog and the SSH entries' key on
        the account. Then gpuoutlet's quote (``rentals/preview``) prices it: the wallet must
        hold its first hour and the burn stay under the spending cap (a cap with no quote
        refuses). The create itself is sent once: the API has no idempotency key, so it is
        never repeated (a lost answer is for the reconcile to find). ``idle_stop_minutes``:
        None for the service's default, 0 for none.
        """
        idle = self._idle_setting(idle_stop_minutes)
        await self._check_family(request)
        await self._require_key()
        async with self._create_lock:
            cap = self.options.max_hourly_spend_cents
            burn = self.spending().burn_cents_per_hour
            try:
                quote = QuoteInfo.from_preview(await self._preview(request))
            except (TransportError, ServerError, MalformedResponseError) as exc:
                check_cap(
                    None, cap_cents=cap, burn_cents_per_hour=burn, request=request, reason=str(exc)
                )
                raise
            check_balance(quote, await self._balance.fresh(), request, self.site)
            check_cap(quote, cap_cents=cap, burn_cents_per_hour=burn, request=request)
            record = await self._create_upstream(request, quote, idle)
        self._ensure_watcher(record.id)
        log.info(
            "created rental %s (%s x%s, %s cents/h)",
            record.id,
            request.family_id,
            request.gpu_count,
            record.rental.price_per_hour_cents,
        )
        return record.view()

    async def _create_upstream(
        self, request: RentalRequest, quote: QuoteInfo, idle: float | None
    ) -> RentalRecord:
        """Create and track the rental (tracked before the create lock is released)."""
        created = await self.client.create(request)
        self._balance.invalidate()
        rental = Rental.from_created(created, request)
        record = self._records.get(rental.id)
        if record is None:
            record = self._new_record(rental, created_here=True)
            record.idle_stop_minutes = idle
            record.template_id = request.template_id
            record.quote = quote
            record.provision_started_at = time.time()
            self._set_owner(record, self._owners.id, changed=True)
        await self._apply(record, rental)
        return record

    async def _preview(self, request: RentalRequest) -> Any:
        try:
            return await self.client.preview(request)
        except ModelUnavailableError as exc:
            raise exc.with_alternatives(await self._alternatives(request)) from None

    async def _alternatives(self, request: RentalRequest) -> list[str]:
        try:
            families = families_from(await self._listings.fresh())
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

    def _idle_setting(self, minutes: float | None) -> float | None:
        """The idle stop a create asks for (None: the default) as minutes or None (off)."""
        if minutes is None:
            # The server's default; 0 there means off (None), not an idle stop of 0 minutes.
            default = self.options.idle_stop_minutes or None
            return default if self.activity is not None else None
        if minutes > 0 and self.activity is None:
            raise RequestValidationError([("idleStopMinutes", NEEDS_SERVER)])
        return minutes or None

    async def keep(self, rental_id: str, *, idle_stop_minutes: float | None = None) -> RentalView:
        """ "Keep it": restart the rental's idle timer; with minutes, also change its idle stop."""
        record = await self._track(rental_id)
        if not record.watched:
            raise RentalNotActiveError(rental_id, "gone" if record.gone else record.rental.status)
        async with self._lock(rental_id):
            if idle_stop_minutes is not None:
                record.idle_stop_minutes = self._idle_setting(idle_stop_minutes)
                # Whoever sets the idle stop decides it: this server sees its kernels.
                self._set_owner(record, self._owners.id, changed=True)
            if record.rental.status == "running":
                record.last_active_at = time.time()
            record.idle_warned_at = record.idle_stop_at = None
            self._judge_idle(record, time.time())
            await self._bump(record)
        log.info("rental %s: kept (idle timer restarted)", rental_id)
        return record.view()

    async def stop(self, rental_id: str) -> RentalView:
        """Stop the rental for good (gpuoutlet destroys the pod and its disk).

        The reply's settled cost and refund are kept; a rental the API says is stopped
        already (409 ``already_stopped``) is a stop done, not an error: the view then says
        ``alreadyStopped``. Its watcher sees it through to ``stopped``.
        """
        now = time.time()
        try:
            result = await self.client.stop(rental_id)
        except AlreadyStoppedError:
            rental = await self.client.get(rental_id)
            stop = StopInfo(rental.total_charged_cents or 0, 0, now, already_stopped=True)
        else:
            known = self._records.get(rental_id)
            rental = known.rental if known is not None else await self.client.get(rental_id)
            stop = StopInfo.from_result(result, now)
            rental = rental.model_copy(
                update={
                    "status": result.status,
                    "total_charged_cents": result.final_charged_cents,
                    "stopped_at": rental.stopped_at or datetime.fromtimestamp(now, timezone.utc),
                }
            )
        self._balance.invalidate()
        record = self._records.get(rental_id) or self._new_record(rental, created_here=False)
        # A second stop changes nothing: the first one's settled cost and refund are kept.
        if record.stop is None or not stop.already_stopped:
            record.stop = stop
        await self._apply(record, rental)
        self._ensure_watcher(rental_id)
        self._poke(rental_id)
        log.info("stop requested for rental %s", rental_id)
        return {**record.view(), "alreadyStopped": stop.already_stopped}

    async def reconcile(self) -> list[Rental] | None:
        """Match the tracked rentals with the API's list: adopt unknown ones, mark vanished ones.

        Returns the list, or None when the API did not give one.
        """
        try:
            listed = await self.client.list()
        except GpuOutletError as exc:
            log.warning("could not list rentals to reconcile: %s", exc)
            return None
        seen = set()
        for rental in listed:
            seen.add(rental.id)
            record = self._records.get(rental.id)
            if record is None:
                if rental.is_final:
                    continue
                record = self._new_record(rental, created_here=False)
            try:
                await self._apply(record, rental)
            except Exception:
                # One rental that cannot be acted on must not keep the others from the list.
                log.exception("rental %s: could not take the API's list entry", rental.id)
            if self._started:
                self._ensure_watcher(rental.id)
        for record in list(self._records.values()):
            if record.id not in seen and record.watched:
                try:
                    await self._mark_gone(record)
                except Exception:
                    log.exception("rental %s: could not mark it gone", record.id)
        return listed

    # Idle auto-stop.

    async def check_idle(self) -> None:
        """One look at every running rental with an idle stop: warn, then stop the idle ones.

        Other servers on the state dir count: their settings are read first (the save merges
        them in, and takes over the idle stops of servers that are gone), this server's kernels
        are published for them, and theirs count as activity here.
        """
        await self._sync()
        now = time.time()
        timed = [
            r
            for r in self._records.values()
            if r.idle_stop_minutes and r.watched and r.decided_here
        ]
        if not self._owners.others_present():
            # Alone on the state dir (the usual case): this server's kernels are all there is.
            if not timed:
                return
            activity = self.activity([r.id for r in timed]) if self.activity is not None else {}
        else:
            # Published for every rental of the state file that may run, this server's or not
            # yet known here (made in another server since this one last reconciled).
            watched = self._shared_active | {r.id for r in self._records.values() if r.watched}
            own = self.activity(sorted(watched)) if self.activity is not None and watched else {}
            try:
                await asyncio.to_thread(self._owners.publish, own, now)
            except OSError as exc:
                log.warning("gpuoutlet: could not publish the kernels' activity: %s", exc)
            if not timed:
                return
            others = await asyncio.to_thread(self._owners.others, [r.id for r in timed], now)
            activity = {
                r.id: combine(own.get(r.id, NO_KERNELS), others.get(r.id, NO_KERNELS))
                for r in timed
            }
        for record in timed:
            async with self._lock(record.id):
                before = _idle_shown(record)
                decision = self._judge_idle(record, now, activity.get(record.id))
                after = _idle_shown(record)
                if after != before:
                    # A warning shown or withdrawn is worth keeping; a moved deadline is not.
                    await self._bump(record, persist=after[0] != before[0])
            if decision is not None and decision.stop_now:
                await self._stop_idle(record)

    def _judge_idle(
        self, record: RentalRecord, now: float, activity: KernelActivity | None = None
    ) -> IdleDecision | None:
        """Bring the record's idle timer up to date from its kernels' activity (None: look)."""
        if not (
            record.idle_stop_minutes
            and record.watched
            and record.rental.status == "running"
            and record.decided_here
        ):
            record.idle_warned_at = record.idle_stop_at = None
            record.idle_kernels = record.idle_busy = 0
            return None
        if activity is None:
            looked = self.activity([record.id]) if self.activity is not None else {}
            activity = combine(
                looked.get(record.id, NO_KERNELS),
                self._owners.others([record.id]).get(record.id, NO_KERNELS),
            )
        decision = decide(
            minutes=record.idle_stop_minutes,
            warn_minutes=self.options.idle_warning_minutes,
            last_active=record.last_active_at if record.last_active_at is not None else now,
            warned_at=record.idle_warned_at,
            activity=activity,
            now=now,
        )
        record.last_active_at = decision.last_active
        record.idle_warned_at = decision.warned_at
        record.idle_stop_at = decision.stop_at
        record.idle_kernels, record.idle_busy = activity.kernels, activity.busy
        return decision

    async def _stop_idle(self, record: RentalRecord) -> None:
        log.warning(
            "rental %s has been idle for %g min (no kernel on it ran anything): stopping it",
            record.id,
            record.idle_stop_minutes,
        )
        record.stop_reason = "idle"
        try:
            await self.stop(record.id)
        except GpuOutletError as exc:
            # Still billed: say so where the user looks, and try again at the next look.
            record.stop_reason = None
            async with self._lock(record.id):
                record.upstream_error = f"The idle auto-stop could not stop it: {exc}"
                await self._bump(record, persist=False)
            log.warning("rental %s: the idle auto-stop failed, will retry: %s", record.id, exc)

    async def _check_idle_forever(self) -> None:
        while True:
            await asyncio.sleep(self.options.idle_check_interval)
            try:
                await self.check_idle()
            except Exception:
                # One bad look (a kernel manager in flux) must not end idle auto-stop for good.
                log.exception("gpuoutlet: the idle check failed; trying again")

    # Internals.

    def _new_record(self, rental: Rental, *, created_here: bool) -> RentalRecord:
        record = RentalRecord(rental=rental, version=0, phase="", created_here=created_here)
        record.idle_warn_minutes = self.options.idle_warning_minutes
        record.decided_here = False  # no owner yet (a create makes this process its owner)
        self._records[rental.id] = record
        return record

    async def _track(self, rental_id: str) -> RentalRecord:
        record = self._records.get(rental_id)
        if record is None:
            rental = await self.client.get(rental_id)
            record = self._records.get(rental_id) or self._new_record(rental, created_here=False)
            await self._apply(record, rental)
            self._ensure_watcher(rental_id)
        return record

    async def _wait(self, predicate: Callable[[], bool], timeout: float) -> None:
        async with self._changed:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait_for(predicate), timeout)

    async def _bump(self, record: RentalRecord, *, persist: bool = True) -> None:
        """Publish a change to the viewers; persist it when it is more than poll progress."""
        record.phase = describe(record, max_polls=self.options.max_polls)
        self._version += 1
        record.version = self._version
        record.publish()
        if persist:
            record.changed = True
            await self._save()
        async with self._changed:
            self._changed.notify_all()

    def _set_owner(self, record: RentalRecord, owner: str | None, *, changed: bool) -> None:
        record.owner = owner
        record.decided_here = owner is not None and owner == self._owners.id
        if changed:
            record.settings_changed = True

    async def _save(self) -> None:
        """Merge this process's records into the shared state file, and take back what other
        processes set (see store.py). Never raises: a failing disk is logged, and what could
        not be saved is tried again at the next save."""
        async with self._save_lock:
            records = list(self._records.values())
            held = [Held(r.to_state(), r.changed, r.settings_changed) for r in records]
            for record in records:
                record.changed = record.settings_changed = False
            try:
                saved = await asyncio.to_thread(self._store.save, held, take_over=self._take_over)
            except Exception as exc:
                for record, item in zip(records, held, strict=True):
                    record.changed |= item.changed
                    record.settings_changed |= item.settings_changed
                error = f"{type(exc).__name__}: {exc}"
                if error != self._save_error:
                    log.error(
                        "gpuoutlet: could not save the rentals to %s (%s); the rentals are "
                        "still watched, and the save is tried again at the next change.",
                        self._store.path,
                        error,
                    )
                self._save_error = error
                return
            self._save_error = None
            self._signature, self._synced_at = saved.signature, time.monotonic()
            written, found = saved.written, saved.found
            if found.damaged:
                # Damaged since the start (a hand edit, another tool): repaired by this save.
                self.state_problems = [*self.state_problems, *found.problems]
                log.error(
                    "gpuoutlet: the rentals state file %s was damaged: %s. It was copied to %s "
                    "and rewritten with what could be read and the rentals this server holds.",
                    self._store.path,
                    "; ".join(found.problems),
                    found.set_aside,
                )
            self._shared_active = {r.id for r in found.records if r.watched} | {
                rid for rid, state in written.items() if not is_over(state)
            }
        await self._take_settings(written)

    async def _sync(self) -> None:
        """Merge with the state file when another process may have changed something that
        matters here: the file changed since this process saved it (a setting made in another
        server), an idle stop's owner is gone (to take it over), or a minute has passed."""
        stale = time.monotonic() - self._synced_at > SYNC_INTERVAL
        if not stale and self._store.signature() == self._signature:
            owners = {
                r.owner
                for r in self._records.values()
                if r.idle_stop_minutes and r.watched and not r.decided_here
            }
            if all(self._owners.alive(owner) for owner in owners):
                return
        await self._save()

    def _take_over(self, state: dict[str, Any]) -> str | None:
        """(In the save's lock.) This process, for an idle stop whose owner is gone."""
        if not state.get("idleStopMinutes") or is_over(state):
            return None
        owner = state.get("owner")
        if owner == self._owners.id or self._owners.alive(owner):
            return None
        log.info(
            "rental %s: its idle stop was decided by %s, which is gone; decided here from now on",
            state["rental"].get("id"),
            owner or "an earlier version",
        )
        return self._owners.id

    async def _take_settings(self, written: dict[str, dict[str, Any]]) -> None:
        """Take the settings other processes made (or a take-over) from what was saved."""
        for rental_id, state in written.items():
            record = self._records.get(rental_id)
            if record is None or record.settings_changed:
                continue  # set again here meanwhile: the next save writes it
            saved_last = state.get("lastActiveAt")
            if saved_last is not None and (
                record.last_active_at is None or saved_last > record.last_active_at
            ):
                record.last_active_at = saved_last
            if record.stop_reason is None:
                record.stop_reason = state.get("stopReason")
            before = (record.owner, record.idle_stop_minutes)
            owner, minutes = state.get("owner"), state.get("idleStopMinutes")
            if (owner, minutes) == before:
                continue
            # No lock here: a save runs inside updates that hold one (it is not reentrant).
            self._set_owner(record, owner, changed=False)
            record.idle_stop_minutes = minutes
            self._judge_idle(record, time.time())
            await self._bump(record, persist=False)

    def _lock(self, rental_id: str) -> asyncio.Lock:
        return self._locks.setdefault(rental_id, asyncio.Lock())

    async def _apply(self, record: RentalRecord, rental: Rental, *, polled: bool = False) -> None:
        """Take the API's latest word on a rental, act on it, and tell the viewers what changed."""
        # A list item may leave out what a GET had (provider, error): keep what it did not say.
        if rental.id == record.rental.id:
            kept = {
                name: getattr(record.rental, name)
                for name in type(rental).model_fields
                if name not in rental.model_fields_set and getattr(record.rental, name) is not None
            }
            if kept:
                rental = rental.model_copy(update=kept)
        async with self._lock(record.id):
            before = _durable(record)
            idle_before = _idle_shown(record)
            had_error = record.upstream_error is not None
            record.rental = rental
            if polled:
                record.polls += 1
                record.upstream_error = None
            if rental.status == "running" and record.last_active_at is None:
                record.last_active_at = time.time()  # the idle timer starts when it runs
            record.mark_ended(time.time())
            self._judge_idle(record, time.time())
            await self._act(record)
            if record.version == 0 or _durable(record) != before:
                await self._bump(record)
            elif _idle_shown(record) != idle_before:
                await self._bump(record, persist=False)
            elif had_error or (polled and rental.status == "provisioning"):
                # Poll progress is what a provisioning rental's viewers watch; nothing to persist.
                await self._bump(record, persist=False)

    async def _act(self, record: RentalRecord, *, rewrite_ssh: bool = False) -> None:
        """Make the SSH entry and kernelspec match the rental: present while running, else gone."""
        rental = record.rental
        if rental.is_ready and record.watched:
            target = (str(rental.host), rental.port if rental.port is not None else -1)
            if rewrite_ssh or record.ssh is None or record.ssh_target != target:
                await self._write_access(record, target)
        elif not record.watched or rental.status == "stopping":
            await self._remove_access(record)

    async def _write_access(self, record: RentalRecord, target: tuple[str, int]) -> None:
        record.ssh_target = target
        if self.ssh is None:
            record.ssh = SSHInfo(error="SSH entries are turned off on this server.")
            return
        try:
            entry = await asyncio.to_thread(self.ssh.write, record.id, target[0], target[1])
        except SSHConfigError as exc:
            # A hostile or broken host/port from the API: nothing was written, and we say so.
            log.warning("rental %s: SSH entry refused: %s", record.id, exc)
            record.ssh = SSHInfo(error=str(exc))
            return
        except OSError as exc:
            # The disk's fault, not the rental's (a read-only or missing ~/.ssh, a full disk):
            # said on the rental, and tried again at its next poll, once the user has fixed it.
            error = (
                f"The SSH entry could not be written in {self.ssh.ssh_dir}: {_os_error(exc)}. "
                "Make sure that folder can be created and written by you; the entry is written "
                "at the next poll once it can."
            )
            if record.ssh is None or record.ssh.error != error:
                log.warning("rental %s: %s", record.id, error)
            record.ssh = SSHInfo(error=error)
            record.ssh_target = None
            return
        record.ssh = SSHInfo(
            alias=entry.alias,
            command=entry.command,
            config_file=str(entry.config_file),
            include_warning=entry.include_warning,
        )
        if self.kernelspecs is not None:
            try:
                record.kernel = await asyncio.to_thread(
                    self.kernelspecs.install, record.rental, entry
                )
            except Exception:
                log.exception("rental %s: could not write its kernelspec", record.id)

    async def _remove_access(self, record: RentalRecord) -> None:
        if record.ssh is None and record.kernel is None:
            return
        removal_error = None
        if self.ssh is not None:
            try:
                await asyncio.to_thread(self.ssh.remove, record.id)
            except (SSHConfigError, OSError) as exc:
                shown = _os_error(exc) if isinstance(exc, OSError) else str(exc)
                removal_error = (
                    f"Its SSH entry {self.ssh.entry_file(record.id)} could not be removed: "
                    f"{shown}. Delete it yourself, or it is tried again at the next restart."
                )
                log.warning("rental %s: %s", record.id, removal_error)
        if self.kernelspecs is not None:
            try:
                await asyncio.to_thread(self.kernelspecs.remove, record.id)
            except Exception:
                log.exception("rental %s: could not remove its kernelspec", record.id)
        # A failed removal stays on the rental (its phase says so); the alias points nowhere.
        record.ssh = SSHInfo(error=removal_error) if removal_error else None
        record.ssh_target = None
        record.kernel = None

    async def _mark_gone(self, record: RentalRecord) -> None:
        async with self._lock(record.id):
            record.gone = True
            record.mark_ended(time.time())
            await self._act(record)
            await self._bump(record)
        self._poke(record.id)
        log.warning("rental %s is no longer reported by the API; marked gone", record.id)

    def _ensure_watcher(self, rental_id: str) -> None:
        record = self._records.get(rental_id)
        if record is None or not record.watched or not self._started:
            return
        task = self._watchers.get(rental_id)
        if task is None or task.done():
            self._wake.setdefault(rental_id, asyncio.Event())
            self._watchers[rental_id] = asyncio.create_task(
                self._watch(rental_id), name=f"gpuoutlet-watch-{rental_id}"
            )

    def _poke(self, rental_id: str) -> None:
        event = self._wake.get(rental_id)
        if event is not None:
            event.set()

    def _delay(self, record: RentalRecord, failures: int, retry_after: float | None) -> float:
        o = self.options
        status = record.rental.status
        if status == "provisioning":
            base = o.poll_interval if record.polls < o.max_polls else o.slow_poll_interval
        elif status == "running":
            base = o.running_poll_interval
        else:
            base = o.poll_interval
        if failures:
            base = min(o.backoff_max, max(base, o.poll_interval * 2**failures))
        if retry_after is not None:
            base = max(base, retry_after)
        return base

    async def _watch(self, rental_id: str) -> None:
        """The one poller of one rental: runs until the rental is final or gone."""
        failures = 0
        retry_after: float | None = None
        wake = self._wake[rental_id]
        while True:
            record = self._records[rental_id]
            if not record.watched:
                return
            delay = self._delay(record, failures, retry_after)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wake.wait(), delay)
            wake.clear()
            # It may have been stopped, failed or forgotten while this watcher slept.
            if not self._records[rental_id].watched:
                return
            try:
                try:
                    self.upstream_polls += 1
                    rental = await self.client.get(rental_id, retry=ONE_TRY)
                except NotFoundError:
                    await self._mark_gone(record)
                    return
                except GpuOutletError as exc:
                    # Network, 5xx, 429, a garbled body, an expired sid: shown, backed off,
                    # retried. The rental is never dropped for it: it may be costing money.
                    failures += 1
                    retry_after = getattr(exc, "retry_after", None)
                    await self._poll_failed(record, exc)
                    continue
                failures, retry_after = 0, None
                await self._apply(record, rental, polled=True)
            except Exception:
                # A bug or a failing disk below (acting on the poll, saving the state): the
                # watcher is all that follows a rental that may cost money, so it never ends
                # here. Logged, backed off, tried again.
                failures += 1
                log.exception("rental %s: the watcher hit an unexpected error; going on", rental_id)

    async def _poll_failed(self, record: RentalRecord, exc: GpuOutletError) -> None:
        async with self._lock(record.id):
            record.polls += 1
            record.upstream_error = str(exc)
            await self._bump(record, persist=False)
        log.info("rental %s: poll failed (%s), will retry", record.id, type(exc).__name__)

    async def _reconcile_forever(self) -> None:
        while True:
            await asyncio.sleep(self.options.reconcile_interval)
            try:
                await self.reconcile()
            except Exception:
                # It finds rentals made elsewhere: one bad round must not end that for good.
                log.exception("gpuoutlet: the reconcile with the API's list failed; going on")


def _os_error(exc: OSError) -> str:
    """``No such file or directory: '<path>'`` (what failed, without a traceback)."""
    text = exc.strerror or type(exc).__name__
    return f"{text}: {exc.filename!r}" if exc.filename else text


def _code(exc: GpuOutletError) -> str:
    """The code a refusal is known by in the REST replies."""
    if isinstance(exc, APIError):
        return exc.code
    if isinstance(exc, SpendingCapError):
        return "spending_cap"
    if isinstance(exc, KeyNotOnAccountError):
        return "key_not_on_account"
    return "refused"


def _gpus(rental: Rental) -> str:
    """``rtx-4090 × 2`` (as much of it as the API reported)."""
    family = rental.family_id or "GPU"
    return f"{family} × {rental.gpu_count}" if rental.gpu_count else family


def _idle_shown(record: RentalRecord) -> tuple[bool, int | None, int, int]:
    """What viewers see of the idle timer: the warning, the deadline (to the second), kernels."""
    stop_at = None if record.idle_stop_at is None else round(record.idle_stop_at)
    return (record.idle_warned_at is not None, stop_at, record.idle_kernels, record.idle_busy)


def _durable(record: RentalRecord) -> dict[str, Any]:
    """The part of a record worth persisting and announcing: all but poll progress."""
    state = record.to_state()
    for key in ("polls", "version", "phase"):
        state.pop(key)
    return state
