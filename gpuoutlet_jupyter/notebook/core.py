"""The testable core behind the magics and the panel: rent, follow, stop, list, in the user's terms."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..api import (
    CreateAmbiguousError,
    GpuOutletError,
    MalformedResponseError,
    RateLimitedError,
    RentalRequest,
    ServerError,
    TransportError,
    format_cents,
)
from ..api.models import STOP_NOTICE
from ..service.idle import GPU_FIELD, parse_gpu_util, parse_idle_minutes
from .backend import Backend, RentalJSON
from .errors import NotebookError, NotReadyError
from .follow import FollowOptions, RentalFollow, next_steps, ready_or_final, stopped_or_final
from .progress import ProgressView
from .sync import save_line
from .views import (
    FamiliesTable,
    KeysTable,
    RentalInfo,
    RentalsTable,
    StatusInfo,
    TemplatesTable,
    WalletInfo,
)
from .views.freshness import problem_of

#: Failures of one follow-up request that are worth retrying: the rental is unaffected by them.
_TRANSIENT = (TransportError, ServerError, RateLimitedError, MalformedResponseError)


class GpuCore:
    """Rentals in the user's terms, over one Backend made on first use.

    ``progress(follow)`` makes a view for a rental being followed (a widget may keep following
    it through ``follow`` once the magic returns); ``say`` prints a message;
    ``confirm(question)`` asks yes/no. The session supplies them.
    """

    def __init__(
        self,
        connect: Callable[[], Backend],
        *,
        options: FollowOptions | None = None,
        progress: Callable[[RentalFollow], ProgressView] | None = None,
        say: Callable[[str], None] = print,
        confirm: Callable[[str], bool] | None = None,
        ask: Callable[[str], str | None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        notebook: str | None = None,
        stop_saving: Callable[[str], RentalJSON] | None = None,
    ) -> None:
        self._connect = connect
        #: Asks a question and returns the answer (None, or it answers None: nothing can be
        #: asked here).
        self._ask = ask
        #: The notebook this kernel runs, for the automatic names of its rentals.
        self.notebook = notebook
        self.options = options or FollowOptions()
        self._progress = progress
        self.say = say
        self._confirm = confirm
        self._sleep = sleep
        #: Asks for a stop that saves first, showing the save's progress (sync.py).
        self._stop_saving = stop_saving
        self._backend: Backend | None = None

    # The backend.

    @property
    def backend(self) -> Backend:
        """Made on first use: finding the server and importing httpx happen here, not at load."""
        if self._backend is None:
            self._backend = self._connect()
        return self._backend

    @property
    def connected(self) -> bool:
        return self._backend is not None

    def close(self) -> None:
        """Forget the backend (the next call makes a new one, with the current settings)."""
        backend, self._backend = self._backend, None
        if backend is not None:
            backend.close()

    def _info(self, data: RentalJSON) -> RentalInfo:
        return RentalInfo(data, self._backend)

    # Reading.

    def families(self) -> FamiliesTable:
        return FamiliesTable(self.backend.families()["families"])

    def templates(self) -> TemplatesTable:
        return TemplatesTable(self.backend.templates()["templates"])

    def wallet(self) -> WalletInfo:
        return WalletInfo(self.backend.wallet())

    def keys(self) -> KeysTable:
        """The account's SSH keys, this machine's marked."""
        return KeysTable(self.backend.keys())

    def add_key(self, name: str | None = None) -> KeysTable:
        """Add this machine's public key to the account, then list the keys."""
        added = self.backend.add_key(name)
        self.say(str(added.get("note") or "Added."))
        return self.keys()

    def rentals(self) -> RentalsTable:
        """Every rental, with how long the wallet lasts at their burn and its warnings; when the
        rentals API does not answer, how old the list is and why (``apiProblem``)."""
        reply = self.backend.rentals()
        listed = [self._info(r) for r in reply["rentals"]]
        wallet: dict[str, Any] | None = None
        wallet_problem = None
        try:
            wallet = self.backend.wallet()
        except GpuOutletError as exc:
            wallet_problem = str(exc)  # the table, without the hours left, and why
        return RentalsTable(
            listed, wallet=wallet, problem=problem_of(reply), wallet_problem=wallet_problem
        )

    def rental(self, rental_id: str) -> RentalInfo:
        return self._info(self.backend.rental(rental_id))

    def status(self) -> StatusInfo:
        backend = self.backend
        status = backend.status()
        rentals: list[RentalInfo] = []
        if status.get("configured"):
            rentals = [self._info(r) for r in backend.rentals()["rentals"]]
        return StatusInfo(backend.where, status, rentals)

    # Renting.

    @staticmethod
    def request(**fields: Any) -> RentalRequest:
        """Validate the fields of a rental (snake_case) before anything is sent."""
        return RentalRequest.build(**{k: v for k, v in fields.items() if v is not None})

    @staticmethod
    def check_idle_stop(minutes: float | str | None) -> float | None:
        """Check an idle stop (None: the server's default; 0: none) before anything is sent."""
        # The service's own rule, so the magic refuses exactly what the server would.
        return parse_idle_minutes(minutes)

    def rent(
        self,
        request: RentalRequest,
        *,
        wait: bool = True,
        idle_stop_minutes: float | None = None,
        work: dict[str, Any] | None = None,
        idle_gpu_util: float | None = None,
    ) -> RentalInfo:
        """Create the rental, then (unless ``wait`` is False) follow it until it runs.

        ``idle_stop_minutes``: stop it after that long with nothing running on it (0: never;
        None: the Jupyter server's default); ``idle_gpu_util``: its GPUs busier than that
        (percent) count as something running. ``work``: ``savePaths``, ``syncWorkdir``,
        ``setup``.
        """
        rental = self.create(
            request, idle_stop_minutes=idle_stop_minutes, idle_gpu_util=idle_gpu_util, work=work
        )
        if not wait:
            self.say(f"{rental.id} is {rental.status}; %gpu_wait {rental.id} follows it.")
            return rental
        rental, interrupted = self.follow(rental, ready_or_final)
        if interrupted:
            return rental
        return self.outcome(rental)

    def create(
        self,
        request: RentalRequest,
        *,
        idle_stop_minutes: float | str | None = None,
        work: dict[str, Any] | None = None,
        idle_gpu_util: float | None = None,
    ) -> RentalInfo:
        """Check the idle stop, then create the rental once (nothing followed). The service
        checks the family, the SSH key, the quote, the balance and the cap first."""
        # The work's members are ours (the save paths, the working folder), beside the request's.
        body = {**request.to_wire(), **{k: v for k, v in (work or {}).items() if v}}
        minutes = self.check_idle_stop(idle_stop_minutes)
        if minutes is not None:
            # Beside the request's fields: the idle stop is the server's, not the rentals API's.
            body["idleStopMinutes"] = minutes
        if self.notebook:
            body["notebook"] = self.notebook  # ours too: for the rental's automatic name
        gpu = parse_gpu_util(idle_gpu_util)
        if gpu is not None:
            body[GPU_FIELD] = gpu
        backend = self.backend
        try:
            created = self._info(backend.create(body))
        except KeyboardInterrupt:
            self.say(
                "Interrupted while the rental was being created: it may or may not exist. "
                "%gpu_rentals lists your rentals; stop any you do not want with %gpu_stop ID."
            )
            raise
        except CreateAmbiguousError as exc:
            # Imported here: only a lost answer matched by several rentals needs it.
            from .choice import which_to_keep

            return which_to_keep(self, exc, self._ask)
        except TransportError as exc:
            # Sent once, never again: the rental may exist even though no answer came.
            raise NotebookError(
                f"{exc} The create was sent once and not repeated (the rentals API has no way "
                "to make a repeat safe), so a rental may exist: %gpu_rentals shows it within a "
                "few minutes if it does, and running the same %gpu_rent again waits for it "
                "rather than rent a second one."
            ) from None
        if created.data.get("note"):
            self.say(str(created.data["note"]))
        self.say(created.quote_line())
        return created

    def wait(self, rental_id: str) -> RentalInfo:
        """Follow an existing rental until it runs (or is final)."""
        rental = self.rental(rental_id)
        rental, interrupted = self.follow(rental, ready_or_final)
        if interrupted or rental.status in ("stopping", "stopped"):
            return rental
        return self.outcome(rental)

    def outcome(self, rental: RentalInfo) -> RentalInfo:
        """The rental once followed: returned when it runs, else why there is nothing to use."""
        if rental.status == "failed":
            raise NotReadyError(
                f"Rental {rental.id} failed to provision: {rental.error or 'no reason given'}. "
                "Try again, perhaps in another region or with another GPU family "
                "(%gpu_families shows what is available)."
            )
        if rental.gone or rental.status in ("stopping", "stopped"):
            raise NotReadyError(
                f"Rental {rental.id} was {'lost by the API' if rental.gone else rental.status} "
                "before it became ready, so there is nothing to connect to. Rent again if you "
                "still need a GPU."
            )
        return rental

    # Following.

    def following(self, rental_id: str) -> RentalFollow:
        """The rental, followed through this core (what a progress view keeps)."""
        return _Following(self, rental_id)

    def _view(self, rental_id: str) -> ProgressView | None:
        return self._progress(self.following(rental_id)) if self._progress is not None else None

    def follow(
        self, rental: RentalInfo, done: Callable[[RentalInfo], bool], *, keep: bool = True
    ) -> tuple[RentalInfo, bool]:
        """Long-poll the rental, updating a progress view, until ``done``.

        Returns the last state and whether Ctrl-C ended the following. Ctrl-C stops the
        following only: the rental goes on, watched by the service. With ``keep=False`` Ctrl-C
        is raised instead (the caller stops the rental: ``rent()`` hands over ready rentals only).
        """
        view = self._view(rental.id)
        seen = [rental]
        try:
            latest = self._follow(rental, done, view, seen)
        except KeyboardInterrupt:
            if not keep:
                raise
            latest = seen[0]
            where = (
                "the Jupyter server"
                if self._backend and self._backend.kind == "server"
                else "this kernel"
            )
            text = (
                f"Stopped waiting for {latest.id} (interrupted). The rental goes on: it is "
                f"{latest.status}, still watched by {where}, and may be billed until it is "
                f"stopped. Next:\n"
                f"{next_steps(latest.id)}"
            )
            if view is not None:
                view.note("Stopped waiting (interrupted); the rental goes on.")
            self.say(text)
            return latest, True
        if view is not None:
            view.finish(latest)
        return latest, False

    def _follow(
        self,
        rental: RentalInfo,
        done: Callable[[RentalInfo], bool],
        view: ProgressView | None,
        seen: list[RentalInfo],
    ) -> RentalInfo:
        failures = 0
        if view is not None:
            view.update(rental)
        while not done(rental):
            try:
                data = self.backend.rental(
                    rental.id, since=rental.version, wait=self.options.wait_seconds
                )
            except _TRANSIENT as exc:
                failures += 1
                if failures > self.options.max_failures:
                    raise NotebookError(
                        f"Stopped waiting for {rental.id}: {exc} The rental goes on.\n"
                        f"{next_steps(rental.id)}"
                    ) from None
                if view is not None:
                    view.note(
                        f"Lost contact, retrying ({failures} of {self.options.max_failures}): {exc}"
                    )
                self._sleep(min(8.0, 0.5 * 2**failures))
                continue
            if failures and view is not None:
                view.note("")
            failures = 0
            rental = self._info(data)
            seen[0] = rental  # what Ctrl-C reports
            if view is not None:
                view.update(rental)
        return rental

    # Keeping it from being stopped for being idle.

    def keep(self, rental_id: str, *, idle_stop_minutes: float | None = None) -> RentalInfo:
        """Restart the rental's idle timer; with ``idle_stop_minutes``, also change its idle
        stop (0 turns it off)."""
        minutes = self.check_idle_stop(idle_stop_minutes)
        return self._info(self.backend.keep(rental_id, idle_stop_minutes=minutes))

    def keep_and_say(self, rental_id: str, *, idle_stop_minutes: float | None = None) -> RentalInfo:
        """``keep``, then say what it did (a rental without idle stop has nothing to keep)."""
        kept = self.keep(rental_id, idle_stop_minutes=idle_stop_minutes)
        self.say(kept.kept_line(self.check_idle_stop(idle_stop_minutes)))
        return kept

    # Stopping.

    def stop(self, rental_id: str, *, wait: bool = True, save: bool = True) -> RentalInfo:
        """Save its work (unless ``save`` is False), stop the rental for good, then (by
        default) follow it until it is stopped.

        Says first that a stop is permanent; then what was saved, what it cost in all and any
        refund. A rental gpuoutlet already stopped is said to be so: not an error.
        """
        first = "Its work is saved first. " if save else "Not saving its work (--no-save). "
        self.say(f"Stopping {rental_id}. {first}{STOP_NOTICE}")
        if save and self._stop_saving is not None:
            rental = self._info(self._stop_saving(rental_id))
        else:
            rental = self._info(self.backend.stop(rental_id, save=save))
        if save and rental.saves:
            self.say(save_line(rental.saves[0]))
        if wait and not stopped_or_final(rental) and not rental.data.get("alreadyStopped"):
            rental, _ = self.follow(rental, stopped_or_final)
        self.say(rental.stop_line())
        return rental

    def active(self) -> list[RentalInfo]:
        """Rentals that may cost money and are not already stopping."""
        return [r for r in self.rentals() if r.is_active and r.status != "stopping"]

    def stop_all(self, *, yes: bool = False, wait: bool = True) -> RentalsTable:
        """Stop every active rental; asks first unless ``yes``."""
        active = self.active()
        if not active:
            self.say("No active rentals: nothing to stop.")
            return RentalsTable([], totals=False)
        hourly = format_cents(sum(r.price_per_hour_cents for r in active))
        listed = ", ".join(r.id + (f" ({r.name})" if r.name else "") for r in active)
        if not yes:
            if self._confirm is None:
                raise NotebookError(
                    "Stopping every rental needs a confirmation, and none can be asked here: "
                    "add --yes (%gpu_stop --all --yes)."
                )
            question = (
                f"Stop {len(active)} rental(s), {hourly}/h in all: {listed}? {STOP_NOTICE} [y/N] "
            )
            if not self._confirm(question):
                self.say("Nothing was stopped.")
                return RentalsTable(active, title="Not stopped", totals=False)
        if yes:
            self.say(f"Stopping {len(active)} rental(s): {listed}. {STOP_NOTICE}")
        stopped: list[RentalInfo] = []
        problems: list[str] = []
        for rental in active:
            try:
                stopped.append(self._info(self.backend.stop(rental.id)))
            except GpuOutletError as exc:
                problems.append(f"{rental.id}: {exc}")
        if wait:
            stopped = [
                r if stopped_or_final(r) else self.follow(r, stopped_or_final)[0] for r in stopped
            ]
        if problems:
            raise NotebookError(
                f"Stopped {len(stopped)} of {len(active)} rentals; these could not be stopped "
                f"(try %gpu_stop ID again): {'; '.join(problems)}"
            )
        return RentalsTable(stopped, title=f"Stopped {len(stopped)} rental(s)", totals=False)


class _Following:
    """``RentalFollow`` over a core: its backend while the core keeps it, never a new one."""

    def __init__(self, core: GpuCore, rental_id: str) -> None:
        self._core = core
        self._rental_id = rental_id

    @property
    def rental_id(self) -> str:
        return self._rental_id

    @property
    def live(self) -> bool:
        return self._core.connected

    async def changed(self, since: int, wait: float) -> RentalInfo:
        backend = self._core.backend
        data = await backend.arental(self._rental_id, since=since, wait=wait)
        return RentalInfo(data, backend)

    def keep(self) -> RentalInfo:
        return self._core.keep(self._rental_id)
