"""Signing in and out as the magics show it: the code sent, signed in, signed out, who."""

from __future__ import annotations

from typing import Any

from ...api import CodeRequestRateLimitedError
from .text import cell, parse_time


class _Lines:
    """A reply shown as a few lines: text in a terminal, paragraphs in a notebook."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = dict(data)

    def lines(self) -> list[str]:
        raise NotImplementedError

    def to_text(self) -> str:
        return "\n".join(self.lines())

    def _summary(self) -> str:
        return ""

    # Here, not in the subclasses: IPython prefers a subclass's __repr__ to this _repr_pretty_.
    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._summary()})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.to_text())

    def _repr_html_(self) -> str:
        return "".join(
            f"<p style='color:var(--jp-warn-color0, #b00020)'>{cell(line)}</p>"
            if line.startswith("⚠")
            else f"<p>{cell(line)}</p>"
            for line in self.lines()
        )


class CodeSent(_Lines):
    """gpuoutlet emailed a code (or sent one under 30 s ago: use that one)."""

    @classmethod
    def rate_limited(cls, email: str, error: CodeRequestRateLimitedError) -> CodeSent:
        wait = max(1, round(error.retry_after))
        return cls(
            {
                "email": email,
                "message": (
                    f"A code was sent to {email} less than 30 s ago: use that one (gpuoutlet "
                    f"sends one per address every 30 s; a new one can be sent in {wait} s)."
                ),
                "resendAfterSeconds": wait,
                "rateLimited": True,
            }
        )

    @property
    def email(self) -> str:
        return str(self.data.get("email") or "")

    @property
    def resend_after(self) -> int:
        value = self.data.get("resendAfterSeconds")
        return int(value) if isinstance(value, (int, float)) else 30

    def lines(self) -> list[str]:
        lines = [str(self.data.get("message") or f"A sign-in code was sent to {self.email}.")]
        if self.data.get("hint"):
            lines.append(str(self.data["hint"]))
        return lines

    def _summary(self) -> str:
        return f"email={self.email!r}"


class SignedIn(_Lines):
    """Signed in: who, until when, where the session is kept (never the session itself)."""

    @property
    def email(self) -> str:
        return str((self.data.get("session") or {}).get("email") or "")

    def lines(self) -> list[str]:
        lines = [str(self.data.get("message") or f"Signed in as {self.email}.")]
        lines += [f"⚠ {self.data[key]}" for key in ("problem", "note") if self.data.get(key)]
        return lines

    def _summary(self) -> str:
        return f"email={self.email!r}"


class SignedOut(_Lines):
    """Signed out: whether gpuoutlet was told, the file, what is no longer watched."""

    def lines(self) -> list[str]:
        lines = [str(self.data.get("message") or "Signed out.")]
        if self.data.get("note"):
            lines.append(f"⚠ {self.data['note']}")
        return lines

    def _summary(self) -> str:
        return f"vendor_told={bool(self.data.get('vendorTold'))}"


class AuthInfo(_Lines):
    """Who is signed in (``AuthView``)."""

    @property
    def state(self) -> str:
        return str(self.data.get("sessionState") or "unknown")

    @property
    def last_email(self) -> str | None:
        value = self.data.get("lastEmail")
        return str(value) if value else None

    def lines(self) -> list[str]:
        session = self.data.get("session") or {}
        if self.state == "signed_in" and session:
            ends = parse_time(session.get("expiresAt"))
            when = ends.strftime("%Y-%m-%d %H:%M UTC") if ends else session.get("expiresAt")
            return [f"Signed in as {session.get('email')} until {when}."]
        email = self.last_email or "you@example.com"
        what = "Your gpuoutlet session has ended" if self.state == "expired" else "Not signed in"
        return [f"{what}: %gpu_login {email} signs in (gpuoutlet emails a 6-digit code)."]

    def _summary(self) -> str:
        return f"state={self.state!r}"
