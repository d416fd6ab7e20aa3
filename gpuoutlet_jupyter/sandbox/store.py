"""SQLite persistence: accounts, wallets (integer cents), rentals, capacity and idempotency keys."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .settings import HOUR_SECONDS

# The CHECKs make the money invariant the database's job too: a bug that would break it
# aborts its transaction instead of corrupting a wallet.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY,
    sid TEXT NOT NULL UNIQUE,
    authorized_keys TEXT,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS wallets (
    account_id TEXT PRIMARY KEY REFERENCES accounts(id),
    deposited_cents INTEGER NOT NULL,
    available_cents INTEGER NOT NULL CHECK (available_cents >= 0),
    reserved_cents INTEGER NOT NULL CHECK (reserved_cents >= 0),
    spent_cents INTEGER NOT NULL CHECK (spent_cents >= 0),
    CHECK (available_cents + reserved_cents + spent_cents = deposited_cents)
);
CREATE TABLE IF NOT EXISTS listing_usage (
    listing_id TEXT PRIMARY KEY,
    used_gpus INTEGER NOT NULL CHECK (used_gpus >= 0)
);
CREATE TABLE IF NOT EXISTS rentals (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    family_id TEXT NOT NULL,
    gpu_count INTEGER NOT NULL,
    template_id TEXT NOT NULL,
    listing_id TEXT NOT NULL,
    region TEXT NOT NULL,
    provider_host TEXT NOT NULL,
    price_per_hour_cents INTEGER NOT NULL,
    status TEXT NOT NULL,
    host TEXT,
    port INTEGER,
    pod_port INTEGER,
    error TEXT,
    name TEXT,
    auto_stop_after_hours REAL,
    started_at INTEGER NOT NULL,
    ready_at REAL NOT NULL,
    stop_requested_at INTEGER,
    stopped_at INTEGER,
    reserved_cents INTEGER NOT NULL CHECK (reserved_cents >= 0),
    charged_cents INTEGER NOT NULL CHECK (charged_cents >= 0),
    capacity_held INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS rentals_by_account ON rentals (account_id, seq);
CREATE INDEX IF NOT EXISTS rentals_by_status ON rentals (status, ready_at);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    account_id TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    rental_id TEXT NOT NULL,
    PRIMARY KEY (account_id, key)
);
"""


@dataclass(frozen=True)
class Account:
    id: str
    sid: str
    authorized_keys: str | None
    created_at: int


@dataclass(frozen=True)
class Wallet:
    account_id: str
    deposited_cents: int
    available_cents: int
    reserved_cents: int
    spent_cents: int


@dataclass(frozen=True)
class RentalRow:
    """A rental as stored; `reserved_cents`/`charged_cents` are this rental's share of the
    wallet's reserved and spent money."""

    id: str
    account_id: str
    family_id: str
    gpu_count: int
    template_id: str
    listing_id: str
    region: str
    provider_host: str
    price_per_hour_cents: int
    status: str
    host: str | None
    port: int | None
    pod_port: int | None
    error: str | None
    name: str | None
    auto_stop_after_hours: float | None
    started_at: int
    ready_at: float
    stop_requested_at: int | None
    stopped_at: int | None
    reserved_cents: int
    charged_cents: int
    capacity_held: bool
    deleted: bool = False
    seq: int | None = None


_RENTAL_COLUMNS = tuple(f.name for f in dataclasses.fields(RentalRow) if f.name != "seq")


def _rental(row: sqlite3.Row) -> RentalRow:
    values: dict[str, Any] = {name: row[name] for name in (*_RENTAL_COLUMNS, "seq")}
    values["capacity_held"] = bool(values["capacity_held"])
    values["deleted"] = bool(values["deleted"])
    return RentalRow(**values)


def _wallet(row: sqlite3.Row) -> Wallet:
    return Wallet(
        row["account_id"],
        row["deposited_cents"],
        row["available_cents"],
        row["reserved_cents"],
        row["spent_cents"],
    )


def _connect(path: Path) -> sqlite3.Connection:
    # isolation_level=None: transactions are exactly the BEGIN/COMMIT this module issues.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=True)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode = WAL")
    # WAL + NORMAL: a commit does not fsync; a power cut may lose the last commits but
    # never corrupts the file. The sandbox trades that for create throughput.
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


class Queries:
    """Reads, on whichever connection they are given."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    def account(self, account_id: str) -> Account | None:
        row = self._conn.execute("SELECT * FROM accounts WHERE id = ?", (account_id,)).fetchone()
        return None if row is None else Account(**dict(row))

    def account_by_sid(self, sid: str) -> Account | None:
        row = self._conn.execute("SELECT * FROM accounts WHERE sid = ?", (sid,)).fetchone()
        return None if row is None else Account(**dict(row))

    def wallet(self, account_id: str) -> Wallet | None:
        row = self._conn.execute(
            "SELECT * FROM wallets WHERE account_id = ?", (account_id,)
        ).fetchone()
        return None if row is None else _wallet(row)

    def rental(self, rental_id: str, *, include_deleted: bool = False) -> RentalRow | None:
        row = self._conn.execute("SELECT * FROM rentals WHERE id = ?", (rental_id,)).fetchone()
        if row is None:
            return None
        rental = _rental(row)
        return None if rental.deleted and not include_deleted else rental

    def rentals_of(self, account_id: str) -> list[RentalRow]:
        """The account's rentals, newest first."""
        rows = self._conn.execute(
            "SELECT * FROM rentals WHERE account_id = ? AND deleted = 0 ORDER BY seq DESC",
            (account_id,),
        )
        return [_rental(row) for row in rows]

    def rentals_in(
        self, statuses: Iterable[str], *, ready_by: float | None = None
    ) -> list[RentalRow]:
        """Rentals (deleted ones included) in any of `statuses`, oldest first."""
        wanted = tuple(statuses)
        marks = ",".join("?" * len(wanted))
        sql = f"SELECT * FROM rentals WHERE status IN ({marks})"  # noqa: S608 (only "?" marks)
        params: list[object] = list(wanted)
        if ready_by is not None:
            sql += " AND ready_at <= ?"
            params.append(ready_by)
        return [_rental(row) for row in self._conn.execute(sql + " ORDER BY seq", params)]

    def rentals_to_meter(self, now: int) -> list[RentalRow]:
        """Active rentals with something due: past their first hour, or past auto-stop.

        A superset (the Python side decides exactly); rentals in their first hour without a
        due auto-stop cost nothing to skip here, however many there are."""
        rows = self._conn.execute(
            "SELECT * FROM rentals WHERE status IN ('provisioning', 'running') AND "
            "(started_at + ? <= ? OR (auto_stop_after_hours IS NOT NULL AND "
            "started_at + auto_stop_after_hours * ? <= ? + 1)) ORDER BY seq",
            (HOUR_SECONDS, now, HOUR_SECONDS, now),
        )
        return [_rental(row) for row in rows]

    def usage(self) -> dict[str, int]:
        """GPUs in use per listing."""
        rows = self._conn.execute("SELECT listing_id, used_gpus FROM listing_usage")
        return {row["listing_id"]: row["used_gpus"] for row in rows}

    def idempotent(self, account_id: str, key: str) -> tuple[str, str] | None:
        """(request hash, rental id) recorded for this account's Idempotency-Key, if any."""
        row = self._conn.execute(
            "SELECT request_hash, rental_id FROM idempotency_keys WHERE account_id = ? AND key = ?",
            (account_id, key),
        ).fetchone()
        return None if row is None else (row["request_hash"], row["rental_id"])


class Tx(Queries):
    """Reads and writes inside one `BEGIN IMMEDIATE` transaction."""

    def set_meta(self, key: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def insert_account(self, account: Account, *, balance_cents: int) -> None:
        self._conn.execute(
            "INSERT INTO accounts (id, sid, authorized_keys, created_at) VALUES (?, ?, ?, ?)",
            (account.id, account.sid, account.authorized_keys, account.created_at),
        )
        self._conn.execute(
            "INSERT INTO wallets (account_id, deposited_cents, available_cents, reserved_cents, "
            "spent_cents) VALUES (?, ?, ?, 0, 0)",
            (account.id, balance_cents, balance_cents),
        )

    def set_authorized_keys(self, account_id: str, keys: str | None) -> None:
        self._conn.execute(
            "UPDATE accounts SET authorized_keys = ? WHERE id = ?", (keys, account_id)
        )

    def lock_wallet(self, account_id: str) -> Wallet | None:
        """Read the wallet row inside the transaction, which already holds SQLite's write lock:
        SQLite locks the whole database, so the row is locked with everything else."""
        return self.wallet(account_id)

    def adjust_wallet(
        self,
        account_id: str,
        *,
        available: int = 0,
        reserved: int = 0,
        spent: int = 0,
        deposited: int = 0,
    ) -> None:
        if available + reserved + spent != deposited:
            raise ValueError("a wallet movement must conserve money")
        self._conn.execute(
            "UPDATE wallets SET available_cents = available_cents + ?, "
            "reserved_cents = reserved_cents + ?, spent_cents = spent_cents + ?, "
            "deposited_cents = deposited_cents + ? WHERE account_id = ?",
            (available, reserved, spent, deposited, account_id),
        )

    def insert_rental(self, rental: RentalRow) -> RentalRow:
        marks = ",".join("?" * len(_RENTAL_COLUMNS))
        cursor = self._conn.execute(
            f"INSERT INTO rentals ({','.join(_RENTAL_COLUMNS)}) VALUES ({marks})",  # noqa: S608
            [getattr(rental, name) for name in _RENTAL_COLUMNS],
        )
        return dataclasses.replace(rental, seq=cursor.lastrowid)

    def save_rental(self, rental: RentalRow, *, expect_status: str | None = None) -> bool:
        """Write every column of `rental`; with `expect_status`, only if it still has that status."""
        columns = [name for name in _RENTAL_COLUMNS if name != "id"]
        sql = f"UPDATE rentals SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?"  # noqa: S608
        params: list[object] = [getattr(rental, c) for c in columns] + [rental.id]
        if expect_status is not None:
            sql += " AND status = ?"
            params.append(expect_status)
        return self._conn.execute(sql, params).rowcount == 1

    def use_capacity(self, listing_id: str, gpus: int) -> None:
        """Take (`gpus` > 0) or give back (`gpus` < 0) GPUs of a listing."""
        if gpus >= 0:
            self._conn.execute(
                "INSERT INTO listing_usage (listing_id, used_gpus) VALUES (?, ?) ON CONFLICT "
                "(listing_id) DO UPDATE SET used_gpus = used_gpus + excluded.used_gpus",
                (listing_id, gpus),
            )
        else:
            # Not an upsert: SQLite checks the CHECK on the would-be inserted row first.
            self._conn.execute(
                "UPDATE listing_usage SET used_gpus = used_gpus + ? WHERE listing_id = ?",
                (gpus, listing_id),
            )

    def remember_idempotency(
        self, account_id: str, key: str, request_hash: str, rental_id: str
    ) -> None:
        self._conn.execute(
            "INSERT INTO idempotency_keys (account_id, key, request_hash, rental_id) "
            "VALUES (?, ?, ?, ?)",
            (account_id, key, request_hash, rental_id),
        )


class Store:
    """One writer connection (transactions serialised by an asyncio lock) and one reader.

    Both are used only from the event loop's thread; each statement takes well under a
    millisecond, and WAL lets the reader see the last commit while a transaction is open.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = _connect(path)
        self._writer.executescript(_SCHEMA)
        self._reader = _connect(path)
        self._lock = asyncio.Lock()
        self.read = Queries(self._reader)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """`BEGIN IMMEDIATE` ... `COMMIT`, or `ROLLBACK` if the body raises."""
        # One connection runs one transaction at a time; the lock queues the others (FIFO)
        # instead of letting them spin on SQLITE_BUSY.
        async with self._lock:
            self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield Tx(self._writer)
            except BaseException:
                self._writer.execute("ROLLBACK")
                raise
            self._writer.execute("COMMIT")

    def close(self) -> None:
        self._reader.close()
        self._writer.close()
