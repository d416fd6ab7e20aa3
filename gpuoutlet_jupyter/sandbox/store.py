"""SQLite persistence: users, sessions, sign-in codes, wallets and their ledger, invoices, SSH
keys, listing stock in use, and rentals. Money is integer cents."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The CHECKs make the money invariant the database's job too: a bug that would break it
# aborts its transaction instead of corrupting a wallet.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE COLLATE NOCASE,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    sid_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (user_id);
CREATE TABLE IF NOT EXISTS sign_in_codes (
    email_key TEXT PRIMARY KEY,
    code_hash TEXT NOT NULL,
    requested_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    consumed INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS mailbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    email TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    code TEXT,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS wallets (
    user_id TEXT PRIMARY KEY REFERENCES users(id),
    total_cents INTEGER NOT NULL CHECK (total_cents >= 0),
    deposited_cents INTEGER NOT NULL CHECK (deposited_cents >= 0),
    spent_cents INTEGER NOT NULL CHECK (spent_cents >= 0),
    updated_at INTEGER NOT NULL,
    CHECK (total_cents = deposited_cents - spent_cents)
);
CREATE TABLE IF NOT EXISTS ledger (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL REFERENCES users(id),
    type TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    balance_after_cents INTEGER NOT NULL CHECK (balance_after_cents >= 0),
    created_at INTEGER NOT NULL,
    rental_id TEXT,
    stripe_charge_id TEXT
);
CREATE INDEX IF NOT EXISTS ledger_by_user ON ledger (user_id, seq);
CREATE TABLE IF NOT EXISTS invoices (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL REFERENCES users(id),
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
    rental_id TEXT,
    stripe_invoice_id TEXT NOT NULL,
    line_item_id TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    due_at INTEGER NOT NULL,
    paid_at INTEGER,
    voided_at INTEGER
);
CREATE INDEX IF NOT EXISTS invoices_by_user ON invoices (user_id, seq);
CREATE TABLE IF NOT EXISTS ssh_keys (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    public_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (user_id, fingerprint)
);
CREATE TABLE IF NOT EXISTS listing_usage (
    listing_id TEXT PRIMARY KEY,
    used INTEGER NOT NULL CHECK (used >= 0)
);
CREATE TABLE IF NOT EXISTS rentals (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL REFERENCES users(id),
    name TEXT,
    status TEXT NOT NULL,
    family_id TEXT NOT NULL,
    gpu_count INTEGER NOT NULL,
    template_id TEXT NOT NULL,
    listing_id TEXT NOT NULL,
    region TEXT NOT NULL,
    provider TEXT NOT NULL,
    provider_host TEXT NOT NULL,
    price_cents INTEGER NOT NULL,
    host TEXT,
    port INTEGER,
    pod_port INTEGER,
    error TEXT,
    started_at INTEGER NOT NULL,
    ready_at REAL NOT NULL,
    running_at INTEGER,
    stopped_at INTEGER,
    ended_at INTEGER,
    auto_stop_at INTEGER,
    stop_reason TEXT,
    seconds_billed INTEGER NOT NULL CHECK (seconds_billed >= 0),
    charged_cents INTEGER NOT NULL CHECK (charged_cents >= 0),
    debited_cents INTEGER NOT NULL CHECK (debited_cents >= 0),
    refunded_cents INTEGER NOT NULL CHECK (refunded_cents >= 0),
    overage_cents INTEGER NOT NULL CHECK (overage_cents >= 0),
    refunded INTEGER NOT NULL,
    last_metered_at INTEGER,
    authorized_keys TEXT NOT NULL,
    capacity_held INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS rentals_by_user ON rentals (user_id, seq);
CREATE INDEX IF NOT EXISTS rentals_by_status ON rentals (status, ready_at);
"""

ACTIVE = ("provisioning", "running")


@dataclass(frozen=True)
class User:
    id: str
    email: str
    created_at: int


@dataclass(frozen=True)
class Session:
    sid_hash: str
    user_id: str
    created_at: int
    expires_at: int


@dataclass(frozen=True)
class SignInCode:
    email_key: str
    code_hash: str
    requested_at: int
    attempts: int
    consumed: bool


@dataclass(frozen=True)
class Wallet:
    user_id: str
    total_cents: int
    deposited_cents: int
    spent_cents: int
    updated_at: int


@dataclass(frozen=True)
class LedgerEntry:
    id: str
    user_id: str
    type: str
    amount_cents: int
    balance_after_cents: int
    created_at: int
    rental_id: str | None
    stripe_charge_id: str | None
    seq: int | None = None


@dataclass(frozen=True)
class Invoice:
    id: str
    user_id: str
    status: str
    reason: str
    amount_cents: int
    rental_id: str | None
    stripe_invoice_id: str
    line_item_id: str
    description: str
    created_at: int
    due_at: int
    paid_at: int | None
    voided_at: int | None
    seq: int | None = None


@dataclass(frozen=True)
class SSHKey:
    id: str
    user_id: str
    name: str
    public_key: str
    fingerprint: str
    algorithm: str
    created_at: int
    seq: int | None = None


@dataclass(frozen=True)
class RentalRow:
    """A rental as stored. `charged_cents` is the metered usage (price × seconds billed, half
    up); `debited_cents` what the wallet paid of it; the difference, once settled, is an
    overage invoice (`overage_cents`) unless the rental was refunded."""

    id: str
    user_id: str
    name: str | None
    status: str
    family_id: str
    gpu_count: int
    template_id: str
    listing_id: str
    region: str
    provider: str
    provider_host: str
    price_cents: int
    host: str | None
    port: int | None
    pod_port: int | None
    error: str | None
    started_at: int
    ready_at: float
    running_at: int | None
    stopped_at: int | None
    ended_at: int | None
    auto_stop_at: int | None
    stop_reason: str | None
    seconds_billed: int
    charged_cents: int
    debited_cents: int
    refunded_cents: int
    overage_cents: int
    #: Settled with a full refund (failed, or ran under a minute): it costs nothing.
    refunded: bool
    last_metered_at: int | None
    #: The account's SSH keys when the rental was created: what its pod accepts.
    authorized_keys: str
    capacity_held: bool
    deleted: bool = False
    seq: int | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def hold_cents(self) -> int:
        """The rental's part of the wallet's reserve: what is left of its first hour's cost
        (the hour is reserved at create and metering eats into it, sheet 3.4)."""
        return max(0, self.price_cents - self.charged_cents) if self.active else 0

    @property
    def net_charged_cents(self) -> int:
        """totalChargedCents: the usage, or nothing once refunded."""
        return 0 if self.refunded else self.charged_cents


def _columns(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls) if f.name != "seq")


_RENTAL_COLUMNS = _columns(RentalRow)
_BOOLS = {"capacity_held", "deleted", "consumed", "refunded"}


def _row(cls: type[Any], row: sqlite3.Row) -> Any:
    names = [f.name for f in dataclasses.fields(cls)]
    values = {name: row[name] for name in names if name in row.keys()}  # noqa: SIM118 (a Row iterates its values)
    for name in _BOOLS & values.keys():
        values[name] = bool(values[name])
    return cls(**values)


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

    def _one(self, cls: type[Any], sql: str, params: Iterable[object]) -> Any:
        row = self._conn.execute(sql, tuple(params)).fetchone()
        return None if row is None else _row(cls, row)

    def _all(self, cls: type[Any], sql: str, params: Iterable[object]) -> list[Any]:
        return [_row(cls, row) for row in self._conn.execute(sql, tuple(params))]

    def meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    # -- users and sessions ---------------------------------------------------------------

    def user(self, user_id: str) -> User | None:
        result: User | None = self._one(User, "SELECT * FROM users WHERE id = ?", (user_id,))
        return result

    def user_by_email(self, email: str) -> User | None:
        result: User | None = self._one(User, "SELECT * FROM users WHERE email = ?", (email,))
        return result

    def session(self, sid_hash: str) -> Session | None:
        result: Session | None = self._one(
            Session, "SELECT * FROM sessions WHERE sid_hash = ?", (sid_hash,)
        )
        return result

    def sign_in_code(self, email_key: str) -> SignInCode | None:
        result: SignInCode | None = self._one(
            SignInCode, "SELECT * FROM sign_in_codes WHERE email_key = ?", (email_key,)
        )
        return result

    def mailbox(self, email: str | None, limit: int) -> list[sqlite3.Row]:
        if email is None:
            sql, params = "SELECT * FROM mailbox ORDER BY seq DESC LIMIT ?", (limit,)
        else:
            sql = "SELECT * FROM mailbox WHERE email = ? COLLATE NOCASE ORDER BY seq DESC LIMIT ?"
            params = (email, limit)  # type: ignore[assignment]
        return list(self._conn.execute(sql, params))

    # -- money ----------------------------------------------------------------------------

    def wallet(self, user_id: str) -> Wallet | None:
        result: Wallet | None = self._one(
            Wallet, "SELECT * FROM wallets WHERE user_id = ?", (user_id,)
        )
        return result

    def holds(self, user_id: str) -> int:
        """The sum of the user's active rentals' holds (see RentalRow.hold_cents)."""
        row = self._conn.execute(
            "SELECT COALESCE(SUM(MAX(0, price_cents - charged_cents)), 0) AS held FROM rentals "
            "WHERE user_id = ? AND status IN ('provisioning', 'running')",
            (user_id,),
        ).fetchone()
        return int(row["held"])

    def ledger(
        self, user_id: str, *, before_seq: int | None, entry_type: str | None, limit: int
    ) -> list[LedgerEntry]:
        sql = "SELECT * FROM ledger WHERE user_id = ?"
        params: list[object] = [user_id]
        if before_seq is not None:
            sql += " AND seq < ?"
            params.append(before_seq)
        if entry_type is not None:
            sql += " AND type = ?"
            params.append(entry_type)
        sql += " ORDER BY seq DESC LIMIT ?"
        params.append(limit)
        result: list[LedgerEntry] = self._all(LedgerEntry, sql, params)
        return result

    def ledger_entry(self, entry_id: str) -> LedgerEntry | None:
        result: LedgerEntry | None = self._one(
            LedgerEntry, "SELECT * FROM ledger WHERE id = ?", (entry_id,)
        )
        return result

    def invoices(self, user_id: str, *, status: str | None, limit: int) -> list[Invoice]:
        sql = "SELECT * FROM invoices WHERE user_id = ? AND status != 'draft'"
        params: list[object] = [user_id]
        if status is not None:
            sql += " AND status = ?"
            params.append(status)
        sql += " ORDER BY seq DESC LIMIT ?"
        params.append(limit)
        result: list[Invoice] = self._all(Invoice, sql, params)
        return result

    def invoice(self, invoice_id: str) -> Invoice | None:
        result: Invoice | None = self._one(
            Invoice, "SELECT * FROM invoices WHERE id = ?", (invoice_id,)
        )
        return result

    def open_invoices(self, user_id: str) -> tuple[int, int]:
        """(count, cents) of the user's open invoices."""
        row = self._conn.execute(
            "SELECT COUNT(*) AS n, COALESCE(SUM(amount_cents), 0) AS cents FROM invoices "
            "WHERE user_id = ? AND status = 'open'",
            (user_id,),
        ).fetchone()
        return int(row["n"]), int(row["cents"])

    # -- SSH keys -------------------------------------------------------------------------

    def ssh_keys(self, user_id: str) -> list[SSHKey]:
        """Newest first."""
        result: list[SSHKey] = self._all(
            SSHKey, "SELECT * FROM ssh_keys WHERE user_id = ? ORDER BY seq DESC", (user_id,)
        )
        return result

    def ssh_key(self, key_id: str) -> SSHKey | None:
        result: SSHKey | None = self._one(SSHKey, "SELECT * FROM ssh_keys WHERE id = ?", (key_id,))
        return result

    # -- rentals --------------------------------------------------------------------------

    def usage(self) -> dict[str, int]:
        """Machines in use per listing."""
        rows = self._conn.execute("SELECT listing_id, used FROM listing_usage")
        return {row["listing_id"]: row["used"] for row in rows}

    def rental(self, rental_id: str, *, include_deleted: bool = False) -> RentalRow | None:
        rental: RentalRow | None = self._one(
            RentalRow, "SELECT * FROM rentals WHERE id = ?", (rental_id,)
        )
        if rental is None or (rental.deleted and not include_deleted):
            return None
        return rental

    def rentals_of(
        self,
        user_id: str,
        *,
        status: str | None = None,
        before_seq: int | None = None,
        limit: int | None = None,
    ) -> list[RentalRow]:
        """The user's rentals, newest first."""
        sql = "SELECT * FROM rentals WHERE user_id = ? AND deleted = 0"
        params: list[object] = [user_id]
        if status is not None:
            sql += " AND status = ?"
            params.append(status)
        if before_seq is not None:
            sql += " AND seq < ?"
            params.append(before_seq)
        sql += " ORDER BY seq DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        result: list[RentalRow] = self._all(RentalRow, sql, params)
        return result

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
        result: list[RentalRow] = self._all(RentalRow, sql + " ORDER BY seq", params)
        return result

    def active_rentals_of(self, user_id: str) -> list[RentalRow]:
        """The user's provisioning and running rentals, oldest first."""
        result: list[RentalRow] = self._all(
            RentalRow,
            "SELECT * FROM rentals WHERE user_id = ? AND status IN ('provisioning', 'running') "
            "ORDER BY seq",
            (user_id,),
        )
        return result

    def active_users(self) -> list[str]:
        """Users with a provisioning or running rental."""
        rows = self._conn.execute(
            "SELECT DISTINCT user_id FROM rentals WHERE status IN ('provisioning', 'running')"
        )
        return [row["user_id"] for row in rows]


class Tx(Queries):
    """Reads and writes inside one `BEGIN IMMEDIATE` transaction."""

    def set_meta(self, key: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def insert_user(self, user: User, now: int) -> None:
        self._conn.execute(
            "INSERT INTO users (id, email, created_at) VALUES (?, ?, ?)",
            (user.id, user.email, user.created_at),
        )
        self._conn.execute(
            "INSERT INTO wallets (user_id, total_cents, deposited_cents, spent_cents, updated_at) "
            "VALUES (?, 0, 0, 0, ?)",
            (user.id, now),
        )

    def insert_session(self, session: Session) -> None:
        self._conn.execute(
            "INSERT INTO sessions (sid_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
            (session.sid_hash, session.user_id, session.created_at, session.expires_at),
        )

    def extend_session(self, sid_hash: str, expires_at: int) -> None:
        self._conn.execute(
            "UPDATE sessions SET expires_at = ? WHERE sid_hash = ? AND expires_at < ?",
            (expires_at, sid_hash, expires_at),
        )

    def delete_session(self, sid_hash: str) -> bool:
        cursor = self._conn.execute("DELETE FROM sessions WHERE sid_hash = ?", (sid_hash,))
        return cursor.rowcount == 1

    def save_code(self, code: SignInCode) -> None:
        self._conn.execute(
            "INSERT INTO sign_in_codes (email_key, code_hash, requested_at, attempts, consumed) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (email_key) DO UPDATE SET "
            "code_hash = excluded.code_hash, requested_at = excluded.requested_at, "
            "attempts = excluded.attempts, consumed = excluded.consumed",
            (code.email_key, code.code_hash, code.requested_at, code.attempts, int(code.consumed)),
        )

    def deliver(self, email: str, subject: str, body: str, now: int, code: str | None) -> None:
        self._conn.execute(
            "INSERT INTO mailbox (email, subject, body, code, created_at) VALUES (?, ?, ?, ?, ?)",
            (email, subject, body, code, now),
        )

    def move_money(
        self,
        user_id: str,
        entry_id: str,
        entry_type: str,
        amount_cents: int,
        now: int,
        *,
        rental_id: str | None = None,
        stripe_charge_id: str | None = None,
    ) -> LedgerEntry:
        """Credit (> 0) or debit (< 0) the wallet's total and write the ledger entry for it.
        Money in (top-ups, adjustments) is deposited; charges are spent; refunds un-spend."""
        deposited = (
            amount_cents if entry_type in ("stripe_topup", "auto_topup", "adjustment") else 0
        )
        spent = deposited - amount_cents
        self._conn.execute(
            "UPDATE wallets SET total_cents = total_cents + ?, deposited_cents = deposited_cents "
            "+ ?, spent_cents = spent_cents + ?, updated_at = ? WHERE user_id = ?",
            (amount_cents, deposited, spent, now, user_id),
        )
        wallet = self.wallet(user_id)
        assert wallet is not None
        entry = LedgerEntry(
            entry_id,
            user_id,
            entry_type,
            amount_cents,
            wallet.total_cents,
            now,
            rental_id,
            stripe_charge_id,
        )
        cursor = self._conn.execute(
            "INSERT INTO ledger (id, user_id, type, amount_cents, balance_after_cents, "
            "created_at, rental_id, stripe_charge_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                entry.id,
                entry.user_id,
                entry.type,
                entry.amount_cents,
                entry.balance_after_cents,
                entry.created_at,
                entry.rental_id,
                entry.stripe_charge_id,
            ),
        )
        return dataclasses.replace(entry, seq=cursor.lastrowid)

    def touch_wallet(self, user_id: str, now: int) -> None:
        """A wallet movement that is not a ledger entry (a reserve taken or released)."""
        self._conn.execute("UPDATE wallets SET updated_at = ? WHERE user_id = ?", (now, user_id))

    def insert_invoice(self, invoice: Invoice) -> None:
        columns = _columns(Invoice)
        marks = ",".join("?" * len(columns))
        self._conn.execute(
            f"INSERT INTO invoices ({','.join(columns)}) VALUES ({marks})",  # noqa: S608
            [getattr(invoice, name) for name in columns],
        )

    def update_invoice(self, invoice: Invoice) -> None:
        self._conn.execute(
            "UPDATE invoices SET status = ?, paid_at = ?, voided_at = ? WHERE id = ?",
            (invoice.status, invoice.paid_at, invoice.voided_at, invoice.id),
        )

    def insert_ssh_key(self, key: SSHKey) -> None:
        self._conn.execute(
            "INSERT INTO ssh_keys (id, user_id, name, public_key, fingerprint, algorithm, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                key.id,
                key.user_id,
                key.name,
                key.public_key,
                key.fingerprint,
                key.algorithm,
                key.created_at,
            ),
        )

    def delete_ssh_key(self, key_id: str) -> None:
        self._conn.execute("DELETE FROM ssh_keys WHERE id = ?", (key_id,))

    def insert_rental(self, rental: RentalRow) -> RentalRow:
        marks = ",".join("?" * len(_RENTAL_COLUMNS))
        cursor = self._conn.execute(
            f"INSERT INTO rentals ({','.join(_RENTAL_COLUMNS)}) VALUES ({marks})",  # noqa: S608
            [getattr(rental, name) for name in _RENTAL_COLUMNS],
        )
        return dataclasses.replace(rental, seq=cursor.lastrowid)

    def save_rental(self, rental: RentalRow) -> None:
        columns = [name for name in _RENTAL_COLUMNS if name != "id"]
        sql = f"UPDATE rentals SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?"  # noqa: S608
        self._conn.execute(sql, [getattr(rental, c) for c in columns] + [rental.id])

    def use_stock(self, listing_id: str, machines: int) -> None:
        """Take (`machines` > 0) or give back (< 0) machines of a listing."""
        if machines >= 0:
            self._conn.execute(
                "INSERT INTO listing_usage (listing_id, used) VALUES (?, ?) ON CONFLICT "
                "(listing_id) DO UPDATE SET used = used + excluded.used",
                (listing_id, machines),
            )
        else:
            # Not an upsert: SQLite checks the CHECK on the would-be inserted row first.
            self._conn.execute(
                "UPDATE listing_usage SET used = used + ? WHERE listing_id = ?",
                (machines, listing_id),
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
