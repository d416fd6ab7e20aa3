"""The sign-in form of %gpu_login (ipywidgets): the email, "Send code", the code, "Sign in".

It does not block the kernel: the buttons act when clicked. The code field is emptied the
moment its value is read, so the code is not kept in the widget's state (nor in a notebook
saved with widget state). The vendor's limits are said as they apply: one code per email every
30 s (the resend button counts down), 10 minutes per code, 5 wrong tries per code.
"""

from __future__ import annotations

import asyncio
import html
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from ..api import CodeExpiredError, CodeInvalidError, GpuOutletError, RequestValidationError
from .errors import explain_problems

if TYPE_CHECKING:
    from .login import LoginCore
    from .views.session import CodeSent

_ERROR = "color:var(--jp-error-color1, #b00020)"


class LoginForm(w.VBox):  # type: ignore[misc]  # ipywidgets is untyped
    """Sign in to gpuoutlet in two steps; ``sent`` starts at the code step."""

    def __init__(self, login: LoginCore, email: str = "", sent: CodeSent | None = None) -> None:
        self.login = login
        self.heading = w.HTML("<b>Sign in to gpuoutlet</b>")
        self.email = w.Text(
            value=email, placeholder="you@example.com", description="Email", continuous_update=True
        )
        self.send = w.Button(description="Send code", button_style="primary")
        self.send.on_click(lambda _b: self.send_code())
        self.code = w.Text(value="", placeholder="6 digits", description="Code")
        self.sign_in_button = w.Button(description="Sign in", button_style="primary")
        self.sign_in_button.on_click(lambda _b: self.sign_in())
        self.resend = w.Button(description="Send a new code")
        self.resend.on_click(lambda _b: self.send_code())
        self.other = w.Button(description="Use another email")
        self.other.on_click(lambda _b: self.show_email_step())
        self.message = w.HTML("")
        self.error = w.HTML("")
        self._countdown: asyncio.Task[None] | None = None
        super().__init__([self.heading])
        if sent is None:
            self.show_email_step()
        else:
            self.show_code_step(sent)

    # The two steps.

    def show_email_step(self, note: str = "") -> None:
        self.message.value = html.escape(
            note or "gpuoutlet emails you a 6-digit code: no password, no cookie to copy."
        )
        self.error.value = ""
        self.children = [
            self.heading,
            self.message,
            w.HBox([self.email, self.send]),
            self.error,
        ]

    def show_code_step(self, sent: CodeSent) -> None:
        self.message.value = "<br>".join(html.escape(line) for line in sent.lines())
        self.error.value = ""
        self.children = [
            self.heading,
            self.message,
            w.HBox([self.code, self.sign_in_button]),
            w.HBox([self.resend, self.other]),
            self.error,
        ]
        self._count_down(sent.resend_after)

    # The buttons.

    def send_code(self) -> None:
        email = self.email.value.strip()
        if not email or "@" not in email:
            self._fail("Type your email address (you@example.com), then Send code.")
            return
        try:
            sent = self.login.request_code(email)
        except RequestValidationError as exc:
            self._fail(explain_problems(exc.problems, {"email": "The email"}) + ".")
            return
        except GpuOutletError as exc:
            self._fail(str(exc))
            return
        self.show_code_step(sent)

    def sign_in(self) -> None:
        code, self.code.value = self.code.value, ""  # not kept in the widget's state
        email = self.email.value.strip()
        if not code.strip():
            self._fail("Type the 6 digits of the code gpuoutlet emailed, then Sign in.")
            return
        try:
            signed = self.login.verify(email, code)
        except RequestValidationError as exc:
            self._fail(explain_problems(exc.problems, {"code": "The code"}) + ".")
            return
        except (CodeInvalidError, CodeExpiredError) as exc:
            dead = isinstance(exc, CodeExpiredError) or exc.details.get("attemptsLeft") == 0
            self._fail(str(exc) + (" Press “Send a new code”." if dead else ""))
            return
        except GpuOutletError as exc:
            self._fail(str(exc))
            return
        self._stop_countdown()
        self.children = [w.HTML(signed._repr_html_())]

    # Helpers.

    def _fail(self, text: str) -> None:
        self.error.value = f"<span style='{_ERROR}'>{html.escape(text)}</span>"

    def _count_down(self, seconds: int) -> None:
        """ "Send a new code" waits out gpuoutlet's 30 s per email (counting, when a loop runs)."""
        self._stop_countdown()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.resend.disabled = False  # no loop to count on: a click too early is explained
            return
        self._countdown = loop.create_task(self._tick(seconds))

    async def _tick(self, seconds: int) -> None:
        self.resend.disabled = True
        try:
            for left in range(max(0, seconds), 0, -1):
                self.resend.description = f"Send a new code ({left} s)"
                await asyncio.sleep(1)
        finally:
            self.resend.description = "Send a new code"
            self.resend.disabled = False

    def _stop_countdown(self) -> None:
        if self._countdown is not None and not self._countdown.done():
            self._countdown.cancel()
        self._countdown = None

    def close(self, *args: Any, **kwargs: Any) -> None:
        self._stop_countdown()
        super().close(*args, **kwargs)
