"""Who is signed in and until when, with the warning a session about to end deserves."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..api import Session

#: Warn when the session ends sooner than this (it slides forward with every request, so a
#: session this close to its end has not been used by anything for almost a month).
SESSION_WARNING_DAYS = 3


@dataclass(frozen=True)
class SessionInfo:
    """The signed-in user and the session's end, as ``GET /v1/auth/me`` said."""

    session: Session

    def seconds_left(self, now: datetime | None = None) -> float:
        now = now or datetime.now(timezone.utc)
        return (self.session.expires_at - now).total_seconds()

    def warning(self, now: datetime | None = None) -> str | None:
        """A sentence when fewer than three days are left; None otherwise."""
        left = self.seconds_left(now)
        if left >= SESSION_WARNING_DAYS * 86400:
            return None
        when = self.session.expires_at.strftime("%Y-%m-%d %H:%M UTC")
        if left <= 0:
            return f"Your gpuoutlet session ended at {when}: sign in again to keep renting."
        hours = left / 3600
        span = f"{hours:.0f} hours" if hours < 48 else f"{hours / 24:.1f} days"
        return (
            f"Your gpuoutlet session ends in about {span} ({when}). Any request extends it "
            "by 30 days; if it lapses, sign in again to keep renting."
        )

    def to_json(self, now: datetime | None = None) -> dict[str, Any]:
        """The ``session`` member of the REST status."""
        user = self.session.user
        return {
            "userId": user.id,
            "email": user.email,
            "expiresAt": self.session.expires_at.isoformat().replace("+00:00", "Z"),
            "secondsLeft": round(max(0.0, self.seconds_left(now))),
            "warning": self.warning(now),
        }
