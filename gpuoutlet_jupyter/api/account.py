"""Pydantic models of the account: who is signed in, the wallet's balance, the SSH keys, sign-in replies."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pydantic import SecretStr

from .models import Cents, Reply


class User(Reply):
    """The signed-in user (``user`` of ``GET /v1/auth/me`` and of verify-code)."""

    id: str
    email: str
    created_at: datetime | None = None


class Session(Reply):
    """``GET /v1/auth/me`` (and the verify-code reply): who, and when the session ends.

    The session slides: every authenticated request moves ``expires_at`` forward.
    """

    user: User
    expires_at: datetime


class CodeRequested(Reply):
    """``POST /v1/auth/request-code``: a code was mailed; ``created`` when the account is new."""

    ok: bool
    created: bool = False


class LoggedOut(Reply):
    """``POST /v1/auth/logout``: the session is deleted; its sid answers 401 from now on."""

    ok: bool


@dataclass(frozen=True)
class SignIn:
    """A verified code: the session, and the new ``sid`` from ``Set-Cookie``.

    The sid is a SecretStr and left out of the repr: it must reach only the credentials file.
    """

    session: Session
    sid: SecretStr = field(repr=False)


class Balance(Reply):
    """``GET /v1/billing/balance``. ``total`` = available + reserved."""

    #: Spendable on a new rental.
    available_cents: Cents
    #: Held for running rentals (their first hour).
    reserved_cents: Cents
    total_cents: Cents
    #: Owed on open invoices (0: nothing owed); "added in v0.5", so 0 when absent.
    open_invoices_cents: Cents = 0
    open_invoice_count: int = 0
    updated_at: datetime | None = None


class SSHKey(Reply):
    """One of the account's SSH keys (the public key text is never returned)."""

    id: str
    name: str
    #: ``SHA256:…``, as ``ssh-keygen -lf`` prints it.
    fingerprint: str
    algorithm: str | None = None
    created_at: datetime | None = None


class SSHKeyList(Reply):
    """``GET /v1/ssh-keys``: every key, newest first (no paging)."""

    keys: list[SSHKey]
