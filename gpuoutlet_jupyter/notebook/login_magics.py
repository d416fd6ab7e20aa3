"""%gpu_login and %gpu_logout: thin wrappers over the session's LoginCore (``login.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from IPython.core.magic import magics_class

from .arguments import argument, help_option, line_magic, magic_arguments
from .magics import GpuMagics

if TYPE_CHECKING:
    from .views.session import CodeSent, SignedIn, SignedOut


@magics_class
class LoginMagics(GpuMagics):
    """Sign in to gpuoutlet with its email code, and out (the rest of the magics: GpuMagics)."""

    @line_magic
    @magic_arguments()
    @help_option()
    @argument("email", metavar="EMAIL", help="Your gpuoutlet account's email address.")
    @argument(
        "--code",
        metavar="CODE",
        help="The 6-digit code gpuoutlet emailed (for scripts; without it the code is sent, "
        "then asked for: a form in a notebook, a hidden prompt in a terminal).",
    )
    def gpu_login(self, line: str) -> SignedIn | CodeSent | None:
        """Sign in to gpuoutlet: it emails a 6-digit code, and the code signs you in.

        The session is kept by whatever handles this kernel's rentals (the Jupyter server, or
        this kernel when it rents by itself) in ~/.config/gpuoutlet/credentials (0600), and
        used at once: no restart. The code works once, for 10 minutes; 5 wrong tries end it;
        one code per email every 30 s.
        """
        args = self._parse(self.gpu_login, "gpu_login", line)
        if args is None:
            return None
        login = self.session.login
        return self._run("gpu_login", lambda _core: login.login(args.email, args.code))

    @line_magic
    @magic_arguments()
    @help_option()
    def gpu_logout(self, line: str) -> SignedOut | None:
        """Sign out: gpuoutlet ends the session and the credentials file is deleted.

        Rentals keep running (and billing) upstream: sign in again to watch or stop them.
        """
        if self._parse(self.gpu_logout, "gpu_logout", line) is None:
            return None
        login = self.session.login
        return self._run("gpu_logout", lambda _core: login.sign_out())
