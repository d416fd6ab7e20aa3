"""Signing in with gpuoutlet's email code, and out, for a host (the server or a kernel).

``POST /v1/auth/request-code`` mails a 6-digit code; ``POST /v1/auth/verify-code`` trades it for
the ``sid`` cookie, which goes straight into the credentials file (0600, atomic) and into a new
RentalService: no restart. ``POST /v1/auth/logout`` ends it. The sid and the code are never in a
reply, a log line or a message: replies carry who is signed in and where the session is kept.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from dataclasses import replace
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..api import (
    ConfigurationError,
    GpuOutletError,
    RequestValidationError,
    Settings,
    UnauthorizedError,
)
from ..api.credentials import Removed, remove_session, save_session
from ..service.account import Account
from ..service.session import SessionInfo
from . import models
from .errors import OtherAccountError
from .layer import JSON, reply

if TYPE_CHECKING:
    from .host import ServiceHost

log = logging.getLogger(__name__)

#: The vendor's limits on signing in (sheet 1.8 and 2.1).
RESEND_SECONDS = 30
CODE_LIFETIME_SECONDS = 10 * 60
ATTEMPTS_PER_CODE = 5
#: The longest address an email may have (RFC 5321).
MAX_EMAIL_LENGTH = 254
_CODE = re.compile(r"\d{6}")
#: What a person may type between the digits of a code ("123 456", "123-456").
_CODE_SPACING = re.compile(r"[\s-]")


def parse_email(body: JSON) -> str:
    """The ``email`` of a sign-in body, trimmed; gpuoutlet judges the rest (``invalid_email``)."""
    _only(body, {"email", "code"})
    email = body.get("email")
    if not isinstance(email, str) or not email.strip():
        raise RequestValidationError(
            [("email", "is required: the address gpuoutlet emails the code to")], what="sign-in"
        )
    email = email.strip()
    if len(email) > MAX_EMAIL_LENGTH or "@" not in email or any(c.isspace() for c in email):
        raise RequestValidationError(
            [("email", "must be an email address such as you@example.com")], what="sign-in"
        )
    return email


def parse_code(body: JSON) -> str:
    """The 6-digit ``code`` (spaces and dashes between digits dropped). Never echoed back."""
    code = body.get("code")
    digits = _CODE_SPACING.sub("", code) if isinstance(code, str) else ""
    if not _CODE.fullmatch(digits):
        raise RequestValidationError(
            [("code", "must be the 6 digits of the code gpuoutlet emailed")], what="sign-in"
        )
    return digits


def _only(body: JSON, allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise RequestValidationError(
            [(name, "is not part of a sign-in") for name in unknown], what="sign-in"
        )


def local_hint(api_url: str) -> str | None:
    """Where the codes appear when the API runs on this machine (the sandbox sends no mail)."""
    host = urlsplit(api_url).hostname or ""
    try:
        local = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        local = False
    if not local:
        return None
    return (
        f"The rentals API at {api_url} runs on this machine (the gpuoutlet sandbox, say), which "
        "sends no mail: its sign-in codes are in its log, and at "
        f"{api_url}/sandbox/mailbox (with its admin token)."
    )


class SignInFlow:
    """Request a code, verify it, sign out, say who is signed in: for one ServiceHost."""

    def __init__(self, host: ServiceHost) -> None:
        self._host = host

    def _anonymous(self) -> Settings:
        settings = self._host.settings
        return Settings(api_url=settings.api_url, timeout_seconds=settings.timeout_seconds)

    async def request_code(self, body: JSON) -> JSON:
        """Have gpuoutlet email a code (one per email every 30 s)."""
        email = parse_email(body)
        if "code" in body:
            raise RequestValidationError(
                [("code", "goes to auth/verify-code, not here")], what="sign-in"
            )
        await self._check_account(email)
        api_url = self._host.settings.api_url
        client = self._host.client_factory(self._anonymous())
        try:
            sent = await client.request_code(email)
        finally:
            await client.aclose()
        log.info("gpuoutlet: a sign-in code was sent to %s", email)
        return reply(
            models.CodeSentReply,
            {
                "email": email,
                "created": sent.created,
                "message": (
                    f"gpuoutlet emailed a 6-digit sign-in code to {email}"
                    f"{' (a new account)' if sent.created else ''}. It works once, for 10 "
                    "minutes; 5 wrong tries end it. A new code can be sent in 30 s."
                ),
                "resendAfterSeconds": RESEND_SECONDS,
                "codeLifetimeSeconds": CODE_LIFETIME_SECONDS,
                "attemptsPerCode": ATTEMPTS_PER_CODE,
                "hint": local_hint(api_url),
            },
        )

    async def verify_code(self, body: JSON) -> JSON:
        """Trade the code for a session: keep it in the credentials file, use it at once."""
        email = parse_email(body)
        code = parse_code(body)
        self._host.check_open()  # before the code is used up
        await self._check_account(email)
        host = self._host
        anonymous = self._anonymous()
        client = host.client_factory(anonymous)
        try:
            signed = await client.verify_code(email, code)
        finally:
            await client.aclose()
        user = signed.session.user
        saved = note = None
        try:
            saved = save_session(host.credentials_file, signed.sid, anonymous.api_url)
        except ConfigurationError as exc:
            note = str(exc)
            log.warning("gpuoutlet: %s", note)
        source = f"a sign-in from Jupyter (kept in {saved})" if saved else "a sign-in from Jupyter"
        settings = replace(host.settings, sid=signed.sid, sid_source=source)
        host.note_account(Account(user.id, user.email))
        problem = await host.use_session(settings)
        if host.pinned is not None:
            pinned = (
                f"{host.name.capitalize()} had its session from {host.pinned}; the new one "
                f"replaces it now, but after a restart {host.pinned} comes first again. To stay "
                "signed in across restarts, remove it there."
            )
            note = f"{note} {pinned}" if note else pinned
        info = SessionInfo(signed.session)
        until = signed.session.expires_at.strftime("%Y-%m-%d %H:%M UTC")
        kept = (
            f"kept in {saved} (0600), so {host.name} is still signed in after a restart"
            if saved
            else "kept in memory only"
        )
        log.info(
            "gpuoutlet: signed in to %s as %s (session until %s)",
            anonymous.api_url,
            user.email,
            until,
        )
        return reply(
            models.SignedInReply,
            {
                "session": info.to_json(),
                "message": (
                    f"Signed in to {anonymous.api_url} as {user.email} until {until} (every "
                    f"request moves that on by 30 days); the session is {kept}."
                ),
                "sidSource": source,
                "credentialsFile": str(saved) if saved else None,
                "note": note,
                "problem": problem,
            },
        )

    async def sign_out(self) -> JSON:
        """Tell gpuoutlet, stop watching, delete the credentials file (when it holds this
        session). Signs out here even when gpuoutlet cannot be told (then it says so)."""
        host = self._host
        settings = host.settings
        told, why = False, None
        if settings.sid is not None:
            client = host.client_factory(settings)
            try:
                await client.logout()
                told = True
            except UnauthorizedError:
                told = True  # gpuoutlet had ended it already
            except GpuOutletError as exc:
                why = str(exc)
            finally:
                await client.aclose()
        running = await host.end_session()
        outcome = remove_session(host.credentials_file, settings.sid)
        parts = [
            f"Signed out of {settings.api_url}."
            if told or settings.sid is None
            else f"Signed out here, but gpuoutlet could not be told ({why}): the session stays "
            "valid on its side until 30 days without use, or until you sign out on its website."
        ]
        if outcome is Removed.REMOVED:
            parts.append(f"{host.credentials_file} was deleted.")
        elif outcome is Removed.OTHER_SESSION:
            parts.append(
                f"{host.credentials_file} holds another session (signed in elsewhere since), so "
                "it was left alone: delete it to sign that one out too."
            )
        if running:
            parts.append(
                f"{len(running)} rental(s) may still be billed and are no longer watched by "
                f"{host.name}: {', '.join(running)}. Sign in again to watch (or stop) them, or "
                "stop them on the gpuoutlet website."
            )
        note = None
        if host.pinned is not None:
            pinned = host.pinned[0].upper() + host.pinned[1:]
            note = (
                f"{pinned} still holds a session for the next start of {host.name}: remove it "
                "there to stay signed out."
            )
        log.info("gpuoutlet: signed out of %s (gpuoutlet told: %s)", settings.api_url, told)
        return reply(
            models.SignedOutReply,
            {
                "message": " ".join(parts),
                "vendorTold": told,
                "credentialsRemoved": outcome is Removed.REMOVED,
                "credentialsFile": str(host.credentials_file),
                "stillRunning": running,
                "note": note,
            },
        )

    async def auth(self) -> JSON:
        """Who is signed in, until when, and where the session comes from."""
        host = self._host
        state, session, problem = await host.session_state()
        return reply(
            models.AuthView,
            {
                "sessionState": state,
                "session": session,
                "problem": problem,
                "apiUrl": host.settings.api_url,
                "sidSource": host.settings.sid_source if host.settings.sid else None,
                "credentialsFile": str(host.credentials_file),
                "lastEmail": host.last_email,
                "hint": local_hint(host.settings.api_url),
            },
        )

    async def _check_account(self, email: str) -> None:
        """Refuse a sign-in as another account while the last one's rentals may cost money."""
        host = self._host
        known = host.account_note.read()
        if known is None or known.same_as(email):
            return
        running = await host.watched()
        if not running:
            return
        listed = ", ".join(running[:10]) + (", ..." if len(running) > 10 else "")
        raise OtherAccountError(
            f"{host.name.capitalize()} watches {len(running)} rental(s) of {known.email} that "
            f"may still be billed ({listed}). Signing in as {email} would leave them unwatched "
            f"(and take their SSH entries away). Sign in as {known.email} and stop them (or let "
            f"them end) first, then sign in as {email}. Nothing was sent.",
            email=known.email,
            rentals=running,
        )
