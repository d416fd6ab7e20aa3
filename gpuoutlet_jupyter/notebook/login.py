"""Signing in from a kernel: the testable core behind %gpu_login, %gpu_logout and the form.

The code goes to whatever handles this kernel's rentals (the Jupyter server, or the in-process
service), which trades it for the session, keeps the session in the credentials file and uses
it at once. Nothing here keeps the code once it is sent, and the session never comes back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..api import (
    CodeRequestRateLimitedError,
    ConfigurationError,
    GpuOutletError,
    UnauthorizedError,
)
from .views.session import AuthInfo, CodeSent, SignedIn, SignedOut

if TYPE_CHECKING:
    from .core import GpuCore

#: Asks for the code without showing it (getpass); None when nobody can be asked here.
AskSecret = Callable[[str], "str | None"]
#: Shows the sign-in form (ipywidgets) for an email; False when no form can be shown here.
ShowForm = Callable[["LoginCore", str, "CodeSent | None"], bool]

CODE_PROMPT = "Sign-in code from gpuoutlet's email (6 digits; not shown, not kept): "


class LoginCore:
    """Sign in and out through the session's backend; ``ask`` prompts in a terminal,
    ``form`` shows the notebook form."""

    def __init__(
        self,
        core: GpuCore,
        *,
        ask: AskSecret | None = None,
        form: ShowForm | None = None,
        say: Callable[[str], None] = print,
    ) -> None:
        self.core = core
        self._ask = ask
        self._form = form
        self.say = say

    # One step each.

    def request_code(self, email: str) -> CodeSent:
        """Have gpuoutlet email a code; a code sent under 30 s ago is no failure (use it)."""
        try:
            return CodeSent(self.core.backend.request_code(email))
        except CodeRequestRateLimitedError as exc:
            return CodeSent.rate_limited(email, exc)

    def verify(self, email: str, code: str) -> SignedIn:
        """Sign in with the code; the backend keeps and uses the session."""
        return SignedIn(self.core.backend.verify_code(email, code.strip()))

    def sign_out(self) -> SignedOut:
        return SignedOut(self.core.backend.sign_out())

    def who(self) -> AuthInfo:
        return AuthInfo(self.core.backend.auth())

    # %gpu_login.

    def login(self, email: str, code: str | None = None) -> SignedIn | CodeSent | None:
        """With ``code``: sign in. Without: have a code sent, then take it in the notebook's
        form (the kernel stays free) or at a hidden prompt (a terminal)."""
        if code is not None:
            return self.verify(email, code)
        sent = self.request_code(email)
        if self._form is not None and self._form(self, email, sent):
            return None
        self.say(sent.to_text())
        typed = self._ask(CODE_PROMPT) if self._ask is not None else None
        if typed is None:
            self.say(
                f"Then sign in with: %gpu_login {email} --code CODE (the 6 digits of the email)."
            )
            return sent
        if not typed.strip():
            self.say(f"No code typed: nothing was done. %gpu_login {email} asks again.")
            return sent
        return self.verify(email, typed)

    # No session, or one that ended under a magic.

    def offer_status(self, status: dict[str, Any]) -> bool:
        """After %gpu_status: the form, when the status says nobody is signed in."""
        if self._form is None or status.get("sessionState") not in ("signed_out", "expired"):
            return False
        return self._form(self, str(status.get("lastEmail") or ""), None)

    def offer(self, error: GpuOutletError) -> bool:
        """After ``error``: when it means "not signed in" (401, or no session at all), show the
        sign-in form with the last email; True when it was shown."""
        if not isinstance(error, (UnauthorizedError, ConfigurationError)) or self._form is None:
            return False
        try:
            auth = self.who()
        except GpuOutletError:
            return False
        if not isinstance(error, UnauthorizedError) and auth.state not in ("signed_out", "expired"):
            return False
        return self._form(self, auth.last_email or "", None)
