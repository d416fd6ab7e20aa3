"""RentalService: the one place that handles rentals for every viewer of a host (the Jupyter
server, or a kernel renting by itself). A facade: it wires the parts, each with one job.

- ``Upstream`` (upstream.py): every request to the rentals API, within the host's request
  budget (budget.py); the account's reads shared;
- ``Tracker`` (tracker.py): the tracked records, their versions and the viewers' long-polls;
- ``Watcher`` (watcher.py): batched polls of the rentals that may cost money, the reconcile;
- ``Creator`` (creator.py): the checks, the quote, the wallet, the cap, the create sent once
  and settled when its answer is lost (pending.py);
- ``AccessWriter`` (access.py): the SSH entry and kernelspec, present exactly while it runs;
- ``IdleStopper`` (idle_stopper.py): the idle auto-stop, with the other servers' kernels;
- ``SharedState`` (state.py): the state file shared with other processes, and its owners;
- ``RentalHooks`` (hooks.py): what other work runs before a stop and once a rental ended.

Every change of a rental goes through ``_apply`` (the API's latest word: act on it, then tell
the viewers); every stop through ``_stop`` (hooks first).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..api import (
    AlreadyStoppedError,
    AsyncRentalsClient,
    Balance,
    Rental,
    RentalRequest,
    SSHKey,
)
from ..remote import RemoteManager
from ..ssh import SSHConfigWriter
from .access import AccessWriter, KernelSpecs
from .catalog import Family
from .creator import Creator
from .health import ApiHealth
from .hooks import RentalHooks, StopRequest
from .idle import ActivitySource
from .idle_stopper import IdleStopper, shown
from .keys import AccountKeys, KeyCheck
from .money import Spending, spending_of, wallet_json, warn_left_running
from .options import ServiceOptions
from .pods import Pods
from .record import QuoteInfo, RentalRecord, StopInfo
from .session import SessionInfo
from .state import SharedState
from .tracker import RentalView, Tracker, durable
from .upstream import Upstream
from .watcher import Watcher
from .work import WorkRequest, WorkUpdates

log = logging.getLogger(__name__)


class RentalService:
    """Creates rentals, watches each with one poller however many viewers, acts on changes."""

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
        remotes: RemoteManager | None = None,
    ) -> None:
        self.options = options or ServiceOptions()
        self.ssh = ssh
        #: Before a stop and once a rental ended (see hooks.py); add to them before ``start``.
        self.hooks = RentalHooks()
        #: The host's one RemoteManager (see build.py); a rental's connection ends with it.
        self.remotes = remotes or RemoteManager()
        self.hooks.ended.append(self.remotes.rental_ended)
        self.upstream = Upstream(client, self.options, owns_client=owns_client)
        #: When the API last answered the watching, and since when it does not (health.py).
        self.health = ApiHealth()
        self._state = SharedState(state_dir, idle_check_interval=self.options.idle_check_interval)
        self._tracker = Tracker(self.options, persist=self._save)
        self._access = AccessWriter(ssh, kernelspecs)
        self.work = WorkUpdates(self._tracker, self._access)
        #: The rentals' pods over the host's one RemoteManager: telemetry, ports (pods.py).
        self.pods = Pods(self.remotes, self._tracker.get)
        self._keys = AccountKeys(self.upstream, ssh)
        self._watcher = Watcher(
            self._tracker,
            self.upstream,
            self.options,
            apply=self._apply,
            mark_gone=self._mark_gone,
            health=self.health,
        )
        self._idle = IdleStopper(
            self._tracker,
            self._state,
            activity,
            self.options,
            stop=lambda rental_id: self._stop(rental_id, StopRequest("idle")),
            sync=self._sync,
            gpus=self.pods.gpu_look,
        )
        self._creator = Creator(
            self.upstream,
            self._keys,
            self.options,
            spending=self.spending,
            track=self._track_created,
            taken=lambda rid: bool((r := self._tracker.get(rid)) and r.created_here),
            changed=self._tracker.touch,
            stop=lambda rental_id: self._stop(rental_id, StopRequest("user")),
        )
        self.pending = self._creator.pending  # the creates not settled yet (pending.py)
        self._started = False

    # Lifecycle.

    def continue_after(self, version: int) -> None:
        """Before ``start``: number this service's rentals above ``version``, the last version
        of the service it replaces (another session), so viewers' long-poll cursors hold."""
        self._tracker.continue_after(version)

    async def start(self) -> None:
        """Load persisted rentals, reconcile with the API's list, and resume watching."""
        if self._started:
            return
        self._started = True
        # Last of the ended hooks: the others (a save's transfer) may still use the connection.
        self.hooks.ended.append(self.pods.ended)
        self._watcher.open()
        loaded = await self._state.open()
        for record in loaded.records:
            if record.ended_at is None:
                record.mark_ended(time.time())  # a state file from before endedAt was kept
                record.changed = record.ended_at is not None
            self._tracker.restore(record)
        listed = await self._watcher.reconcile()
        if loaded.damaged:
            self._state.report_damage(loaded, listed is not None)
        for record in self._tracker.all():
            if record.rental.is_ready and record.watched:
                # The entry may have been removed while the server was down: write it again.
                try:
                    async with self._tracker.lock(record.id):
                        await self._access.act(record, rewrite=True)
                        await self._tracker.bump(record)
                except Exception:
                    # Its watcher tries again; the other rentals (and the service) go on.
                    log.exception("rental %s: could not restore its SSH entry", record.id)
            self._watcher.ensure(record.id)
        if listed is not None:
            await self._access.sweep(listed, self._tracker.all())
        # Takes over the idle stops of owners that are gone (see owners.py), before any look.
        await self._save()
        self._watcher.start_reconciling()
        self._idle.start()

    async def close(self, *, warn_running: bool = True) -> None:
        """Stop every watcher and persist; rentals keep running upstream.

        With `warn_running`, rentals that may still be billed are named in one warning: once
        no service watches them, nothing here will notice or stop them.
        """
        if warn_running:
            warn_left_running(self._tracker.watched(), idle_here=self._idle.activity is not None)
        await self._tracker.close()  # long-polls answer now, and ask the next service
        await self._watcher.close()
        await self._idle.close()
        await self.pods.close()
        if self._started:
            await self._save()
            # Its idle stops may now be taken over by another server on this state dir.
            await self._state.release()
        await self.upstream.aclose()
        await self.remotes.close()
        self._started = False

    # Reading.

    def rentals(self) -> list[RentalView]:
        """Every tracked rental, newest first."""
        return self._tracker.views()

    @property
    def version(self) -> int:
        """Grows on every change of any rental: the list long-poll's cursor."""
        return self._tracker.version

    @property
    def state_problems(self) -> list[str]:
        """What was wrong with the state file (empty: nothing), for the status."""
        return self._state.problems

    def watching(self) -> list[str]:
        """Ids of the rentals that have a live watcher."""
        return self._watcher.watching()

    async def rental(self, rental_id: str) -> RentalView:
        """One rental from the service's state; an unknown id is fetched once and then tracked."""
        return (await self._track(rental_id)).view()

    async def wait_for_change(self, rental_id: str, since: int, timeout: float) -> RentalView:
        """Long-poll: the rental as soon as its version exceeds `since`, or as it is at `timeout`."""
        record = await self._track(rental_id)
        if record.version <= since:
            await self._tracker.wait(lambda: self._tracker[rental_id].version > since, timeout)
        return self._tracker[rental_id].view()

    async def wait_for_any_change(self, since: int, timeout: float) -> list[RentalView]:
        """Long-poll over the whole list: one request per page, however many rentals."""
        if self._tracker.version <= since:
            await self._tracker.wait(lambda: self._tracker.version > since, timeout)
        return self.rentals()

    async def balance(self) -> Balance:
        """The wallet's balance, shared by every viewer for ``balance_ttl`` seconds."""
        return await self.upstream.balance()

    async def families(self) -> list[Family]:
        """The GPU families, derived from the catalog's listings (shared for ``catalog_ttl``)."""
        return await self._creator.families()

    async def session(self) -> SessionInfo:
        """Who is signed in and when the session ends (shared for ``session_ttl``)."""
        return SessionInfo(await self.upstream.session())

    def spending(self) -> Spending:
        """The hourly burn of the rentals that may be billed (and of the creates not settled
        yet: their rental may exist), and what they have cost so far."""
        return spending_of(
            self._tracker.watched(),
            self._tracker.all(),
            pending_burn_cents_per_hour=self._creator.pending.burn_cents_per_hour(),
        )

    @property
    def site(self) -> str:
        """Where the user tops up and manages the account, for messages."""
        return self.upstream.site

    async def wallet_view(self) -> dict[str, Any]:
        """The balance plus the burn, how long the wallet lasts at it, the cap and warnings."""
        cap = self.options.max_hourly_spend_cents
        return wallet_json(await self.balance(), self.spending(), cap_cents=cap, site=self.site)

    # SSH keys: a pod lets in the account's keys as they were when it was created.

    async def key_check(self, *, fresh: bool = False) -> KeyCheck:
        """The SSH entries' key against the account's keys (fetched anew with ``fresh``)."""
        return await self._keys.check(fresh=fresh)

    async def add_local_key(self, name: str | None = None) -> tuple[SSHKey, bool]:
        """Post the SSH entries' public key to the account; (the key, whether it was there)."""
        return await self._keys.add_local(name)

    # Acting.

    async def quote(self, request: RentalRequest) -> dict[str, Any]:
        """What a create of ``request`` would do, without doing it (see ``Creator.quote``)."""
        return await self._creator.quote(request)

    async def create(
        self,
        request: RentalRequest,
        *,
        idle_stop_minutes: float | None = None,
        notebook: str | None = None,
        work: WorkRequest | None = None,
        idle_gpu_util: float | None = None,
    ) -> RentalView:
        """Check, quote and create a rental once, then watch it (see ``Creator.create``).
        ``idle_stop_minutes``: None for the service's default, 0 for none; ``idle_gpu_util``
        the same for its GPU threshold; ``notebook``: where it was asked from, for its
        automatic name; ``work``: see work.py. The view's ``note`` tells of a lost answer."""
        idle = self._idle.setting(idle_stop_minutes)
        gpu = self._idle.gpu_setting(idle_gpu_util, idle)
        records, note = await self._creator.create(request, idle, notebook)
        record = records[0]
        if gpu is not None:
            await self._idle.set_gpu_util(record, gpu)
        record.work.start(work, request.auto_stop_after_hours)
        await self._tracker.bump(record)
        rental = record.rental
        what = f"{request.describe()}, {rental.price_per_hour_cents} cents/h, {rental.name}"
        log.info("created rental %s (%s)", record.id, what)
        return {**record.view(), "note": note}

    async def settle_create(self, create_id: str, keep: list[str] | None) -> dict[str, Any]:
        """Keep ``keep`` (None: all) of a lost create's matches, stop the others."""
        kept, stopped = await self._creator.settle(create_id, keep)
        return {"kept": [self._tracker[rid].view() for rid in kept], "stopped": stopped}

    async def _track_created(
        self,
        rental: Rental,
        request: RentalRequest,
        quote: QuoteInfo,
        idle: float | None,
    ) -> RentalRecord:
        """Track a rental just created, or found by its name after its answer was lost (a
        poll may have taken it in first, as made elsewhere): made here, with its quote."""
        record = self._tracker.get(rental.id) or self._tracker.add(rental, created_here=True)
        record.created_here = True
        if record.quote is None:
            record.idle_stop_minutes = idle
            record.template_id = request.template_id
            record.quote = quote
            record.provision_started_at = time.time()
            self._state.claim(record)
        await self._apply(record, rental)
        self._watcher.ensure(record.id)
        return record

    async def keep(
        self,
        rental_id: str,
        *,
        idle_stop_minutes: float | None = None,
        idle_gpu_util: float | None = None,
    ) -> RentalView:
        """ "Keep it": restart the rental's idle timer; with minutes (or a GPU threshold), also
        change its idle stop."""
        record = await self._track(rental_id)
        await self._idle.keep(record, idle_stop_minutes, idle_gpu_util)
        log.info("rental %s: kept (idle timer restarted)", rental_id)
        return record.view()

    async def stop(self, rental_id: str, *, save: bool = True) -> RentalView:
        """Stop the rental for good (gpuoutlet destroys the pod and its disk).

        The reply's settled cost and refund are kept; a rental the API says is stopped
        already (409 ``already_stopped``) is a stop done, not an error: the view then says
        ``alreadyStopped``. Its watcher sees it through to ``stopped``; ``save``: save it first.
        """
        return await self._stop(rental_id, StopRequest("user", save=save))

    async def _stop(self, rental_id: str, request: StopRequest) -> RentalView:
        """Every stop the service makes: the before-stop hooks, then the API's stop, once."""
        known = self._tracker.get(rental_id)
        if known is not None and known.watched:
            await self.hooks.stopping(known, request)
        now = time.time()
        try:
            result = await self.upstream.stop(rental_id)
        except AlreadyStoppedError:
            rental = await self.upstream.rental(rental_id)
            stop = StopInfo(rental.total_charged_cents or 0, 0, now, already_stopped=True)
        else:
            known = self._tracker.get(rental_id)
            rental = known.rental if known is not None else await self.upstream.rental(rental_id)
            stop = StopInfo.from_result(result, now)
            rental = rental.model_copy(
                update={
                    "status": result.status,
                    "total_charged_cents": result.final_charged_cents,
                    "stopped_at": rental.stopped_at or datetime.fromtimestamp(now, timezone.utc),
                }
            )
        record = self._tracker.get(rental_id) or self._tracker.add(rental, created_here=False)
        # A second stop changes nothing: the first one's settled cost and refund are kept.
        if record.stop is None or not stop.already_stopped:
            record.stop = stop
        await self._apply(record, rental)
        self._watcher.ensure(rental_id)
        self._watcher.poke(rental_id)
        log.info("stop requested for rental %s", rental_id)
        return {**record.view(), "alreadyStopped": stop.already_stopped}

    async def reconcile(self) -> list[Rental] | None:
        """Match the tracked rentals with the API's list (see ``Watcher.reconcile``)."""
        return await self._watcher.reconcile()

    async def check_idle(self) -> None:
        """One look at every running rental with an idle stop (see ``IdleStopper.check``)."""
        await self._idle.check()

    # Changes: the API's word, acted on, then told.

    async def _apply(self, record: RentalRecord, rental: Rental, polled: bool = False) -> None:
        """Take the API's latest word on a rental, act on it, and tell the viewers what changed."""
        rental = rental.keeping_unsaid(record.rental)
        async with self._tracker.lock(record.id):
            was_watched = record.watched
            before = durable(record)
            idle_before = shown(record)
            had_error = record.upstream_error is not None
            record.rental = rental
            record.checked_at = time.time()  # the API's own word: a poll, list, create or stop
            self.health.ok(record.checked_at)
            if polled:
                record.polls += 1
                record.upstream_error = None
            if rental.status == "running" and record.last_active_at is None:
                record.last_active_at = time.time()  # the idle timer starts when it runs
            record.mark_ended(time.time())
            self._idle.judge(record, time.time())
            await self._access.act(record)
            if record.version == 0 or durable(record) != before:
                await self._tracker.bump(record)
            elif shown(record) != idle_before:
                await self._tracker.bump(record, persist=False)
            elif had_error or (polled and rental.status == "provisioning"):
                # Poll progress is what a provisioning rental's viewers watch; nothing to persist.
                await self._tracker.bump(record, persist=False)
        if was_watched and not record.watched:
            await self.hooks.end(record)

    async def _mark_gone(self, record: RentalRecord) -> None:
        async with self._tracker.lock(record.id):
            was_watched = record.watched
            record.gone = True
            record.checked_at = time.time()  # the API said so: a 404, or a list without it
            record.mark_ended(time.time())
            await self._access.act(record)
            await self._tracker.bump(record)
        self._watcher.poke(record.id)
        log.warning("rental %s is no longer reported by the API; marked gone", record.id)
        if was_watched:
            await self.hooks.end(record)

    async def _track(self, rental_id: str) -> RentalRecord:
        record = self._tracker.get(rental_id)
        if record is None:
            rental = await self.upstream.rental(rental_id)
            record = self._tracker.get(rental_id) or self._tracker.add(rental, created_here=False)
            await self._apply(record, rental)
            self._watcher.ensure(rental_id)
        return record

    # Persisting, shared with the other processes on the state dir.

    async def _save(self) -> None:
        """Merge the records into the shared state file, then take what others set."""
        written = await self._state.save(self._tracker.all())
        if written is None:
            return
        # No lock here: a save runs inside updates that hold one (it is not reentrant).
        for record in self._state.take_settings(self._tracker.get, written):
            self._idle.judge(record, time.time())
            await self._tracker.bump(record, persist=False)

    async def _sync(self) -> None:
        """Save (and so read the others' settings) when another process may have changed some."""
        if self._state.needs_sync(self._tracker.all()):
            await self._save()
