"""The running sandbox: store, clock, accounts, provider, pods and worker wired together over
a data dir."""

from __future__ import annotations

import logging
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import ids
from .auth import Auth, hash_sid
from .catalogue import Catalogue
from .clock import SandboxClock
from .errors import ApiError
from .faults import FaultState
from .keys import key_lines, parse_public_key
from .pods import PodManager
from .provider import Provider
from .ratelimit import RateLimiter
from .rentals import Rentals
from .settings import SandboxSettings
from .store import SSHKey, Store, Tx, User
from .worker import CLOCK_META_KEY, Worker

logger = logging.getLogger(__name__)

_ADMIN_TOKEN_KEY = "admin_token"  # noqa: S105 (a meta row name, not a secret)
_DEFAULT_USER_KEY = "default_user_id"
_DEFAULT_SID_KEY = "default_sid"


@dataclass(frozen=True)
class Credentials:
    """What a client and a test harness need: printed once the sandbox listens."""

    account_id: str
    email: str
    #: None when the sandbox starts signed out.
    sid: str | None
    admin_token: str


@dataclass(frozen=True)
class Account:
    user: User
    sid: str


class Sandbox:
    """Open with `await Sandbox.open(settings)`; `start()` the worker; `await close()`."""

    def __init__(
        self,
        settings: SandboxSettings,
        store: Store,
        clock: SandboxClock,
        faults: FaultState,
        catalogue: Catalogue,
        provider: Provider,
        rentals: Rentals,
        worker: Worker,
        auth: Auth,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.faults = faults
        self.catalogue = catalogue
        self.provider = provider
        self.rentals = rentals
        self.worker = worker
        self.auth = auth
        self.limiter = RateLimiter(settings.requests_per_minute, settings.requests_per_hour)
        self.credentials = Credentials("", "", None, "")
        #: Set by the HTTP server: closes a client's connection without an answer (the
        #: dropCreateAnswerCount fault); None when nothing can drop connections.
        self.drop_connection: Callable[[tuple[str, int]], bool] | None = None
        self._closed = False

    @classmethod
    async def open(cls, settings: SandboxSettings) -> Sandbox:
        _private_dir(settings.data_dir)
        store = Store(settings.db_path)
        try:
            high_water = store.read.meta(CLOCK_META_KEY)
            # Never behind the last run's clock: rentals must not start in the future.
            start = max(time.time(), float(high_water)) if high_water else None
            clock = SandboxClock(settings.time_scale, start=start)
            faults = FaultState()
            catalogue = Catalogue(capacity_factor=settings.capacity_factor)
            # Provider randomness is not security-relevant; a seed makes runs repeatable.
            rng = random.Random(settings.seed)  # noqa: S311
            pods = PodManager(settings.pods_dir)
            provider = Provider(faults, pods, provision_seconds=settings.provision_seconds, rng=rng)
            rentals = Rentals(store, clock, catalogue, provider)
            worker = Worker(
                store,
                clock,
                rentals,
                provider,
                faults,
                sleep=settings.worker_sleep(),
                poll_interval=settings.worker_interval,
            )
            auth = Auth(store, clock, new_user_balance_cents=settings.new_user_balance_cents)
            sandbox = cls(
                settings, store, clock, faults, catalogue, provider, rentals, worker, auth
            )
            sandbox.credentials = await sandbox._default_account()
            await worker.restore_pods()
        except BaseException:
            store.close()
            raise
        return sandbox

    def start(self) -> None:
        self.worker.start()

    async def close(self) -> None:
        """Stop the worker, every pod (and its processes), and the database."""
        if self._closed:
            return
        self._closed = True
        await self.worker.close()
        logger.info("worker stopped; stopping %d pod(s)", len(self.provider.running()))
        await self.provider.close()
        self.store.close()
        logger.info("sandbox closed")

    # -- accounts -----------------------------------------------------------------------

    async def create_account(
        self, balance_cents: int, authorized_keys: str | None, email: str | None = None
    ) -> Account:
        """A user with money, SSH keys (as if POSTed to /v1/ssh-keys) and a session."""
        email = email or f"user-{secrets.token_hex(6)}@sandbox.gpuoutlet.test"
        lines = key_lines(authorized_keys or "")
        parsed = [parse_public_key(line) for line in lines]  # refuses before anything is made
        async with self.store.transaction() as tx:
            if tx.user_by_email(email) is not None:
                raise ApiError(409, "conflict", f"There is already an account for {email}.")
            user = self.auth.create_user(tx, email, balance_cents=0)
            if balance_cents:
                self._top_up(tx, user.id, balance_cents, "stripe_topup")
            for n, key in enumerate(parsed, 1):
                self._add_key(tx, user.id, f"key-{n}", key.line)
            sid, _ = self.auth.open_session(tx, user.id)
        return Account(user, sid)

    async def new_session(self, user_id: str) -> str:
        async with self.store.transaction() as tx:
            if tx.user(user_id) is None:
                raise ApiError(404, "not_found", f"No account {user_id}.")
            sid, _ = self.auth.open_session(tx, user_id)
        return sid

    def _top_up(self, tx: Tx, user_id: str, cents: int, kind: str) -> None:
        from .billing import stripe_id

        tx.move_money(
            user_id,
            ids.new_id("led"),
            kind,
            cents,
            self.clock.now_seconds(),
            stripe_charge_id=stripe_id("ch") if kind == "stripe_topup" else None,
        )

    async def deposit(self, user_id: str, cents: int, kind: str = "stripe_topup") -> None:
        async with self.store.transaction() as tx:
            if tx.wallet(user_id) is None:
                raise ApiError(404, "not_found", f"No account {user_id}.")
            self._top_up(tx, user_id, cents, kind)

    def _add_key(self, tx: Tx, user_id: str, name: str, line: str) -> SSHKey:
        """POST /v1/ssh-keys's work: a duplicate (same fingerprint) is refused."""
        key = parse_public_key(line)
        if any(k.fingerprint == key.fingerprint for k in tx.ssh_keys(user_id)):
            raise ApiError(
                400,
                "duplicate_key",
                "This public key is already on your account.",
                {"fingerprint": key.fingerprint},
            )
        stored = SSHKey(
            ids.new_id("key"),
            user_id,
            name,
            key.line,
            key.fingerprint,
            key.algorithm,
            self.clock.now_seconds(),
        )
        tx.insert_ssh_key(stored)
        return stored

    async def add_key(self, user_id: str, name: str, line: str) -> SSHKey:
        async with self.store.transaction() as tx:
            return self._add_key(tx, user_id, name, line)

    async def _default_account(self) -> Credentials:
        """The data dir's admin token and default account, made on first start; its keys
        gain the ones given now; a session unless the sandbox starts signed out."""
        settings = self.settings
        lines = key_lines(settings.authorized_keys or "")
        parsed = [parse_public_key(line) for line in lines]
        async with self.store.transaction() as tx:
            token = tx.meta(_ADMIN_TOKEN_KEY)
            if token is None:
                token = secrets.token_urlsafe(32)
                tx.set_meta(_ADMIN_TOKEN_KEY, token)
            user_id = tx.meta(_DEFAULT_USER_KEY)
            user = tx.user(user_id) if user_id else None
            if user is None:
                user = self.auth.create_user(tx, settings.default_email, balance_cents=0)
                if settings.balance_cents:
                    self._top_up(tx, user.id, settings.balance_cents, "stripe_topup")
                tx.set_meta(_DEFAULT_USER_KEY, user.id)
            known = {k.fingerprint for k in tx.ssh_keys(user.id)}
            for key in parsed:
                if key.fingerprint not in known:
                    self._add_key(tx, user.id, f"key-{len(known) + 1}", key.line)
                    known.add(key.fingerprint)
            sid: str | None = None
            if not settings.signed_out:
                sid = tx.meta(_DEFAULT_SID_KEY)
                session = tx.session(hash_sid(sid)) if sid else None
                if sid is None or session is None or session.expires_at <= self.clock.now_seconds():
                    sid, _ = self.auth.open_session(tx, user.id)
                    tx.set_meta(_DEFAULT_SID_KEY, sid)
        return Credentials(user.id, user.email, sid, token)


def _private_dir(path: Path) -> None:
    # The database holds sessions and the pods' disks: keep the folder to ourselves.
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
