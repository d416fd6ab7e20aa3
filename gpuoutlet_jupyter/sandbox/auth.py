"""Accounts and sign-in: users by email, email codes (sent to the sandbox's mailbox and log),
and `sid` sessions with a sliding 30-day expiry (sheet 1.2 and 2.1)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass

from . import ids
from .clock import SandboxClock, iso_utc
from .errors import ApiError
from .store import Session, SignInCode, Store, Tx, User

logger = logging.getLogger(__name__)

SESSION_SECONDS = 30 * 24 * 3600
CODE_TTL_SECONDS = 10 * 60
CODE_REQUEST_INTERVAL_SECONDS = 30
CODE_ATTEMPTS = 5
MAX_EMAIL_CHARS = 254
_EMAIL_RE = re.compile(
    r"[^@\s\"'<>(),;:\\]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
)
#: `Set-Cookie` exactly as the sheet gives its attributes.
COOKIE_ATTRIBUTES = "HttpOnly; Secure; SameSite=Lax; Path=/"


def hash_sid(sid: str) -> str:
    """Sessions are stored and rate-limited by this, never by the sid itself."""
    return hashlib.sha256(sid.encode()).hexdigest()


def new_sid() -> str:
    """An opaque 256-bit value."""
    return secrets.token_hex(32)


def session_cookie(sid: str) -> str:
    return f"sid={sid}; {COOKIE_ATTRIBUTES}; Max-Age={SESSION_SECONDS}"


def cleared_cookie() -> str:
    return f"sid=; {COOKIE_ATTRIBUTES}; Max-Age=0"


def valid_email(email: str) -> bool:
    return len(email) <= MAX_EMAIL_CHARS and _EMAIL_RE.fullmatch(email) is not None


def _code_hash(code: str, salt: str | None = None) -> str:
    salt = salt or secrets.token_hex(8)
    digest = hashlib.sha256(f"{salt}:{code}".encode()).hexdigest()
    return f"{salt}${digest}"


def _code_matches(code: str, stored: str) -> bool:
    salt, _, _ = stored.partition("$")
    return hmac.compare_digest(_code_hash(code, salt), stored)


@dataclass(frozen=True)
class SignedIn:
    user: User
    sid: str
    expires_at: int


class Auth:
    """Users, sessions and sign-in codes; every change in one transaction."""

    def __init__(self, store: Store, clock: SandboxClock, *, new_user_balance_cents: int) -> None:
        self._store = store
        self._clock = clock
        self._new_user_balance = new_user_balance_cents

    # -- users and sessions --------------------------------------------------------------

    def create_user(self, tx: Tx, email: str, *, balance_cents: int) -> User:
        now = self._clock.now_seconds()
        user = User(ids.new_id("usr"), email, now)
        tx.insert_user(user, now)
        if balance_cents > 0:
            tx.move_money(user.id, ids.new_id("led"), "adjustment", balance_cents, now)
        logger.info("user %s (%s) created with %d¢", user.id, email, balance_cents)
        return user

    def open_session(self, tx: Tx, user_id: str) -> tuple[str, Session]:
        sid = new_sid()
        now = self._clock.now_seconds()
        session = Session(hash_sid(sid), user_id, now, now + SESSION_SECONDS)
        tx.insert_session(session)
        return sid, session

    def session(self, sid: str) -> Session | None:
        """The live session of this sid, if any (an expired one is as good as none)."""
        session = self._store.read.session(hash_sid(sid))
        if session is None or session.expires_at <= self._clock.now_seconds():
            return None
        return session

    async def slide(self, session: Session) -> Session:
        """Every authenticated request moves the expiry to 30 days from now (whole seconds:
        at most one write per session per second)."""
        expires_at = self._clock.now_seconds() + SESSION_SECONDS
        if expires_at <= session.expires_at:
            return session
        async with self._store.transaction() as tx:
            tx.extend_session(session.sid_hash, expires_at)
        return Session(session.sid_hash, session.user_id, session.created_at, expires_at)

    async def logout(self, sid_hash: str) -> None:
        async with self._store.transaction() as tx:
            tx.delete_session(sid_hash)

    async def expire(self, sid: str) -> bool:
        """End a session now (a test control: what 30 idle days would do)."""
        async with self._store.transaction() as tx:
            return tx.delete_session(hash_sid(sid))

    # -- email codes ---------------------------------------------------------------------

    async def request_code(self, email: str) -> bool:
        """Upsert the user, mail a fresh 6-digit code (any earlier one dies); True if the user
        is new. One request per email per 30 s."""
        email = email.strip()
        if not valid_email(email):
            raise ApiError(
                400,
                "invalid_email",
                f"{email!r} is not a valid email address; send one such as you@example.com.",
                {"email": "not a valid email address"},
            )
        key = email.lower()
        code = f"{secrets.randbelow(10**6):06d}"
        async with self._store.transaction() as tx:
            now = self._clock.now_seconds()
            previous = tx.sign_in_code(key)
            if previous is not None:
                wait = previous.requested_at + CODE_REQUEST_INTERVAL_SECONDS - now
                if wait > 0:
                    raise ApiError(
                        429,
                        "code_request_rate_limited",
                        f"A code was sent to this address less than "
                        f"{CODE_REQUEST_INTERVAL_SECONDS} seconds ago. Use it, or ask for a "
                        f"new one in {wait} seconds.",
                        {"retryAfterSeconds": wait},
                        headers={"Retry-After": str(wait)},
                    )
            user = tx.user_by_email(email)
            created = user is None
            if user is None:
                user = self.create_user(tx, email, balance_cents=self._new_user_balance)
            tx.save_code(SignInCode(key, _code_hash(code), now, 0, False))
            tx.deliver(
                email,
                f"Your gpuoutlet sign-in code: {code}",
                f"Enter {code} to sign in. It works once, for 10 minutes.",
                now,
                code,
            )
        # The sandbox has no mail: the code goes to its log and to GET /sandbox/mailbox.
        logger.info("sign-in code for %s: %s (also at GET /sandbox/mailbox)", email, code)
        return created

    async def verify_code(self, email: str, code: str) -> SignedIn:
        """Consume the code and open a session, or say why not (the attempt is counted even
        though the answer is an error)."""
        email = email.strip()
        key = email.lower()
        failure: ApiError | None = None
        signed_in: SignedIn | None = None
        async with self._store.transaction() as tx:
            now = self._clock.now_seconds()
            stored = tx.sign_in_code(key)
            if stored is None or stored.consumed:
                failure = _invalid(
                    "No sign-in code is waiting for this email. Request one with "
                    "POST /v1/auth/request-code.",
                    0,
                )
            elif now - stored.requested_at > CODE_TTL_SECONDS:
                failure = ApiError(
                    401,
                    "code_expired",
                    "This code is more than 10 minutes old. Request a new one.",
                    {"attemptsLeft": 0},
                )
            elif stored.attempts >= CODE_ATTEMPTS:
                failure = _invalid("Too many attempts. Request a new code.", 0)
            elif not _code_matches(code, stored.code_hash):
                attempts = stored.attempts + 1
                tx.save_code(
                    SignInCode(key, stored.code_hash, stored.requested_at, attempts, False)
                )
                left = CODE_ATTEMPTS - attempts
                failure = _invalid(
                    f"Code is incorrect or expired. {left} attempt(s) left for this code."
                    if left
                    else "Code is incorrect. Too many attempts: request a new code.",
                    left,
                )
            else:
                tx.save_code(
                    SignInCode(key, stored.code_hash, stored.requested_at, stored.attempts, True)
                )
                user = tx.user_by_email(email)
                if user is None:  # the code was sent, so the user exists; never expected
                    user = self.create_user(tx, email, balance_cents=0)
                sid, session = self.open_session(tx, user.id)
                signed_in = SignedIn(user, sid, session.expires_at)
        if failure is not None:
            raise failure
        assert signed_in is not None
        logger.info(
            "user %s signed in (session until %s)", signed_in.user.id, iso_utc(signed_in.expires_at)
        )
        return signed_in


def _invalid(message: str, attempts_left: int) -> ApiError:
    return ApiError(401, "code_invalid", message, {"attemptsLeft": attempts_left})
