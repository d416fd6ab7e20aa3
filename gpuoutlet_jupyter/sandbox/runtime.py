"""The running sandbox: store, clock, provider, pods and worker wired together over a data dir."""

from __future__ import annotations

import logging
import random
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from . import ids
from .catalogue import Catalogue
from .clock import SandboxClock
from .errors import not_found
from .faults import FaultState
from .pods import PodManager
from .provider import Provider
from .rentals import Rentals
from .settings import SandboxSettings
from .store import Account, Store, Wallet
from .worker import CLOCK_META_KEY, Worker

logger = logging.getLogger(__name__)

_ADMIN_TOKEN_KEY = "admin_token"  # noqa: S105 (a meta row name, not a secret)
_DEFAULT_ACCOUNT_KEY = "default_account_id"


@dataclass(frozen=True)
class Credentials:
    """What a client and a test harness need: printed once the sandbox listens."""

    account_id: str
    sid: str
    admin_token: str


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
        credentials: Credentials,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.faults = faults
        self.catalogue = catalogue
        self.provider = provider
        self.rentals = rentals
        self.worker = worker
        self.credentials = credentials
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
            provider = Provider(
                catalogue, faults, pods, provision_seconds=settings.provision_seconds, rng=rng
            )
            rentals = Rentals(store, clock, catalogue, provider)
            worker = Worker(store, clock, rentals, provider, faults, sleep=settings.worker_sleep())
            credentials = await _credentials(store, settings, clock)
            sandbox = cls(
                settings, store, clock, faults, catalogue, provider, rentals, worker, credentials
            )
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

    async def create_account(self, balance_cents: int, authorized_keys: str | None) -> Account:
        account = Account(
            ids.account_id(), secrets.token_urlsafe(32), authorized_keys, self.clock.now_seconds()
        )
        async with self.store.transaction() as tx:
            tx.insert_account(account, balance_cents=balance_cents)
        logger.info("account %s created with %d¢", account.id, balance_cents)
        return account

    async def deposit(self, account_id: str, cents: int) -> Wallet:
        async with self.store.transaction() as tx:
            if tx.wallet(account_id) is None:
                raise not_found(f"No account {account_id}.")
            tx.adjust_wallet(account_id, available=cents, deposited=cents)
            wallet = tx.wallet(account_id)
        assert wallet is not None
        return wallet

    def wallet(self, account_id: str) -> Wallet:
        wallet = self.store.read.wallet(account_id)
        if wallet is None:
            raise not_found(f"No account {account_id}.")
        return wallet


def _private_dir(path: Path) -> None:
    # The database holds session ids: keep the folder to ourselves.
    path.mkdir(parents=True, exist_ok=True, mode=0o700)


async def _credentials(store: Store, settings: SandboxSettings, clock: SandboxClock) -> Credentials:
    """The data dir's admin token and default account, created on first start."""
    async with store.transaction() as tx:
        token = tx.meta(_ADMIN_TOKEN_KEY)
        if token is None:
            token = secrets.token_urlsafe(32)
            tx.set_meta(_ADMIN_TOKEN_KEY, token)
        account_id = tx.meta(_DEFAULT_ACCOUNT_KEY)
        account = tx.account(account_id) if account_id else None
        if account is None:
            account = Account(
                ids.account_id(),
                secrets.token_urlsafe(32),
                settings.authorized_keys,
                clock.now_seconds(),
            )
            tx.insert_account(account, balance_cents=settings.balance_cents)
            tx.set_meta(_DEFAULT_ACCOUNT_KEY, account.id)
            logger.info("created default account %s with %d¢", account.id, settings.balance_cents)
        elif settings.authorized_keys is not None:
            tx.set_authorized_keys(account.id, settings.authorized_keys)
    return Credentials(account.id, account.sid, token)
