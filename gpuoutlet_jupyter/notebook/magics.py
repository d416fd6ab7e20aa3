"""The %gpu_* magics: thin ``magic_arguments`` wrappers over the session's GpuCore.

Importing this module loads IPython and traitlets only (already loaded in any kernel); the
client, httpx, pydantic and ipywidgets are imported on a magic's first use. The settings are the
session's (``%config NotebookSession``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from IPython.core.error import UsageError
from IPython.core.magic import Magics, magics_class

from .arguments import (
    HelpRequested,
    argument,
    help_option,
    line_magic,
    magic_arguments,
    parse_argstring,
)

if TYPE_CHECKING:
    from .core import GpuCore
    from .panel import Panel
    from .session import NotebookSession
    from .views import (
        FamiliesTable,
        KeysTable,
        RentalInfo,
        RentalsTable,
        StatusInfo,
        TemplatesTable,
        WalletInfo,
    )

T = TypeVar("T")

#: The rental request's wire fields, as the options of %gpu_rent name them.
FLAG_NAMES = {
    "familyId": "FAMILY",
    "gpuCount": "--gpus",
    "templateId": "--template",
    "region": "--region",
    "name": "--name",
    "autoStopAfterHours": "--auto-stop",
    "idleStopMinutes": "--idle-stop",
    "savePaths": "--save",
    "syncWorkdir": "--sync-workdir",
    "setup": "--setup",
    "localDir": "LOCAL",
    "remoteDir": "REMOTE",
    "bwlimit": "--bwlimit",
    "idleGpuUtil": "--idle-gpu-util",
    "id": "the rental ID",
}


class GpuMagicError(Exception):
    """A problem to show as one paragraph, without a traceback (IPython calls
    ``_render_traceback_`` instead of formatting one)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def _render_traceback_(self) -> list[str]:
        return [self.message]


def _unquote(text: str | None) -> str | None:
    """``"a b"`` → ``a b``: the quotes around one argument, as a shell would take them off."""
    if text and len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


@magics_class
class GpuMagics(Magics):
    """Rent GPUs from a notebook: %gpu_rent, %gpu_status, %gpu_rentals, %gpu_wait, %gpu_stop,
    %gpu_sync, %gpu_keep, %gpu_creates, %gpu_families, %gpu_templates, %gpu_wallet, %gpu_keys,
    %gpu_panel, over one NotebookSession (its settings: ``%config NotebookSession``); %gpu_login
    and %gpu_logout are LoginMagics'."""

    def __init__(self, shell: Any = None, *, session: NotebookSession | None = None) -> None:
        super().__init__(shell=shell)
        if session is None:
            from .session import NotebookSession

            session = NotebookSession.current()
        self.session = session

    @property
    def core(self) -> GpuCore:
        return self.session.core

    # Error handling: every expected failure is one paragraph, never a traceback.

    def _parse(self, magic: Callable[..., Any], name: str, line: str) -> Any:
        """The magic's arguments; None when the help was asked for (and shown): do nothing."""
        try:
            return parse_argstring(magic, line)
        except HelpRequested as shown:
            print(shown.text, end="")
            return None
        except UsageError as exc:
            text = str(exc).rstrip(".")
            raise GpuMagicError(
                f"%{name}: {text}. Nothing was done. `%{name} --help` shows the usage and every "
                "option."
            ) from None
        except ValueError as exc:
            # shlex's "No closing quotation" (or "No escaped character"), before argparse.
            raise GpuMagicError(
                f"%{name}: the line could not be split into arguments ({exc}): an unbalanced "
                f"quote? Close it, or drop it. Nothing was done. `%{name} --help` shows the usage."
            ) from None

    def _run(self, name: str, action: Callable[[GpuCore], T]) -> T:
        from ..api import GpuOutletError, RequestValidationError, TransportError
        from .errors import ServerUnreachableError, explain_problems

        core = self.core
        try:
            return action(core)
        except RequestValidationError as exc:
            raise GpuMagicError(
                f"%{name}: {explain_problems(exc.problems, FLAG_NAMES)}. Nothing was sent and "
                f"nothing was charged; fix it and run again (`%{name}?` lists the options)."
            ) from None
        except GpuOutletError as exc:
            # Not signed in, or the session ended under it: the sign-in form, in a notebook.
            self.session.offer_sign_in(exc)
            message = str(exc)
            on_server = core.connected and core.backend.kind == "server"
            if (
                isinstance(exc, TransportError)
                and not isinstance(exc, ServerUnreachableError)
                and on_server
            ):
                message += (
                    " (This is the Jupyter server's setting: GPUOUTLET_API_URL in the "
                    "environment it starts from, or c.GpuOutletApp.api_url.)"
                )
            raise GpuMagicError(f"%{name}: {message}") from None

    # The magics.

    @line_magic
    @magic_arguments()
    @help_option()
    @argument(
        "family", metavar="FAMILY", help="GPU family, e.g. rtx-4090 (%%gpu_families lists them)."
    )
    @argument("--gpus", type=int, default=1, metavar="N", help="GPUs: 1, 2, 4 or 8 (default 1).")
    @argument(
        "--template",
        metavar="ID",
        help="Machine image: ubuntu-24-04 (default), pytorch, vllm, ollama, a1111, "
        "text-gen-webui (%%gpu_templates says what each holds; Tab completes).",
    )
    @argument("--region", metavar="R", help="ISO country code or broader region (EU, NA, APAC).")
    @argument("--name", metavar="NAME", help="Your label, at most 64 characters (alice/exp-42).")
    @argument(
        "--auto-stop",
        dest="auto_stop",
        type=float,
        metavar="HOURS",
        help="Stop it after HOURS whatever happens: caps what it can cost.",
    )
    @argument(
        "--idle-stop",
        dest="idle_stop",
        type=float,
        metavar="MINUTES",
        help="Stop it after MINUTES with nothing running on its kernels (0: never; default: "
        "the Jupyter server's c.GpuOutletApp.idle_stop_minutes). Needs the Jupyter server.",
    )
    @argument(
        "--save",
        dest="save",
        action="append",
        metavar="PATH",
        help="A folder on the pod saved to this machine before any stop (repeat for more; "
        "default: the remote work folder, ~/work).",
    )
    @argument(
        "--sync-workdir",
        dest="sync_workdir",
        nargs="?",
        const=".",
        metavar="FOLDER",
        help="Push FOLDER (default: this notebook's folder) to the pod's work folder before "
        "its kernel is offered; the remote kernel starts there.",
    )
    @argument(
        "--setup",
        metavar="CMD",
        help="A command run once on the pod after the push, before the kernel is offered "
        "(e.g. 'pip install -r requirements.txt').",
    )
    @argument(
        "--idle-gpu-util",
        dest="idle_gpu_util",
        type=float,
        metavar="PERCENT",
        help="With an idle stop: idle only if its GPUs also stayed under PERCENT utilisation "
        "(a job started over plain ssh keeps it). 0: GPUs do not count.",
    )
    @argument("--no-wait", dest="no_wait", action="store_true", help="Return once it is created.")
    def gpu_rent(self, line: str) -> RentalInfo | None:
        """Rent GPUs: create the rental, show its progress until it runs, and return it.

        One hour of its price is reserved from the wallet up front. Once it runs you get its
        host, port, an `ssh gpuoutlet-<id>` alias and a kernel to pick. Ctrl-C stops the
        waiting, not the rental.
        """
        args = self._parse(self.gpu_rent, "gpu_rent", line)
        if args is None:
            return None

        def rent(core: GpuCore) -> RentalInfo:
            request = core.request(
                family_id=args.family,
                gpu_count=args.gpus,
                template_id=args.template,
                region=args.region,
                name=args.name,
                auto_stop_after_hours=args.auto_stop,
            )
            # IPython splits a magic's line keeping the quotes: --setup "pip install …".
            work = {"savePaths": args.save, "setup": _unquote(args.setup)}
            if args.sync_workdir:
                import os

                work["syncWorkdir"] = os.path.abspath(os.path.expanduser(args.sync_workdir))
            return core.rent(
                request,
                wait=not args.no_wait,
                idle_stop_minutes=args.idle_stop,
                idle_gpu_util=args.idle_gpu_util,
                work=work,
            )

        return self._run("gpu_rent", rent)

    @line_magic
    @magic_arguments()
    @help_option()
    @argument("rental_id", metavar="ID", nargs="?", help="A rental id (rent_…).")
    def gpu_status(self, line: str) -> RentalInfo | StatusInfo | None:
        """Show one rental, or (without ID) where rentals are handled and whether it can rent."""
        args = self._parse(self.gpu_status, "gpu_status", line)
        if args is None:
            return None
        if args.rental_id:
            return self._run("gpu_status", lambda core: core.rental(args.rental_id))
        status = self._run("gpu_status", lambda core: core.status())
        # Not signed in (or the session ended): the sign-in form, in a notebook.
        self.session.login.offer_status(status.status)
        return status

    @line_magic
    @magic_arguments()
    @help_option()
    def gpu_rentals(self, line: str) -> RentalsTable | None:
        """List your rentals, newest first: status, price, cost so far, SSH alias or phase."""
        if self._parse(self.gpu_rentals, "gpu_rentals", line) is None:
            return None
        return self._run("gpu_rentals", lambda core: core.rentals())

    @line_magic
    @magic_arguments()
    @help_option()
    @argument("rental_id", metavar="ID", help="A rental id (rent_…).")
    def gpu_wait(self, line: str) -> RentalInfo | None:
        """Follow a rental until it runs (or fails), with the progress view; Ctrl-C stops waiting."""
        args = self._parse(self.gpu_wait, "gpu_wait", line)
        if args is None:
            return None
        return self._run("gpu_wait", lambda core: core.wait(args.rental_id))

    @line_magic
    @magic_arguments()
    @help_option()
    @argument("rental_id", metavar="ID", nargs="?", help="The rental to stop.")
    @argument(
        "--all", dest="all", action="store_true", help="Stop every active rental (asks first)."
    )
    @argument("--yes", action="store_true", help="With --all: do not ask.")
    @argument(
        "--no-save",
        dest="no_save",
        action="store_true",
        help="Do not save its work first (its save paths, by default ~/work): it is lost.",
    )
    @argument(
        "--no-wait", dest="no_wait", action="store_true", help="Return once the stop is asked for."
    )
    def gpu_stop(self, line: str) -> RentalInfo | RentalsTable | None:
        """Save a rental's work, stop it (or --all of them) for good, and wait until it is stopped.

        Stopping is permanent: gpuoutlet destroys the pod and wipes its disk, so its save paths
        (by default ~/work) are copied to c.GpuOutletApp.saves_dir first, within max_save_bytes
        and save_timeout; --no-save skips that. Billing ends there; the reply says what was
        saved, what it cost in all and any refund. A rental already stopped is said to be so.
        """
        args = self._parse(self.gpu_stop, "gpu_stop", line)
        if args is None:
            return None
        if args.all == bool(args.rental_id):
            raise GpuMagicError(
                "%gpu_stop: give one rental ID (%gpu_stop rent_…) or --all (%gpu_stop --all), "
                "not both and not neither. %gpu_rentals lists your rentals."
            )
        if args.all:
            return self._run(
                "gpu_stop", lambda core: core.stop_all(yes=args.yes, wait=not args.no_wait)
            )
        return self._run(
            "gpu_stop",
            lambda core: core.stop(args.rental_id, wait=not args.no_wait, save=not args.no_save),
        )

    @line_magic
    @magic_arguments()
    @help_option()
    @argument("rental_id", metavar="ID", help="The rental to keep.")
    @argument(
        "--idle-stop",
        dest="idle_stop",
        type=float,
        metavar="MINUTES",
        help="Also change its idle stop to MINUTES (0: never stop it for being idle).",
    )
    def gpu_keep(self, line: str) -> RentalInfo | None:
        """Keep a rental from being stopped for being idle: its idle timer starts again.

        The Jupyter server stops a rental with an idle stop once none of its kernels has run
        anything for that long, after a warning; this is the warning's "Keep it".
        """
        args = self._parse(self.gpu_keep, "gpu_keep", line)
        if args is None:
            return None
        return self._run(
            "gpu_keep",
            lambda core: core.keep_and_say(args.rental_id, idle_stop_minutes=args.idle_stop),
        )

    @line_magic
    @magic_arguments()
    @help_option()
    def gpu_families(self, line: str) -> FamiliesTable | None:
        """The GPU families: per-GPU price per hour, memory, regions and availability."""
        if self._parse(self.gpu_families, "gpu_families", line) is None:
            return None
        return self._run("gpu_families", lambda core: core.families())

    @line_magic
    @magic_arguments()
    @help_option()
    def gpu_templates(self, line: str) -> TemplatesTable | None:
        """gpuoutlet's machine templates: what each holds and the ports its software serves."""
        if self._parse(self.gpu_templates, "gpu_templates", line) is None:
            return None
        return self._run("gpu_templates", lambda core: core.templates())

    @line_magic
    @magic_arguments()
    @help_option()
    @argument(
        "action",
        nargs="?",
        choices=["list", "add"],
        default="list",
        help="list (default): the account's keys, this machine's marked; add: add this "
        "machine's public key to the account.",
    )
    @argument("--name", metavar="NAME", help="With add: the key's name on the account.")
    def gpu_keys(self, line: str) -> KeysTable | None:
        """Your gpuoutlet account's SSH keys; `%gpu_keys add` adds this machine's.

        A pod lets in the keys the account has when the pod is created, never later: add the
        key before you rent. The key is the one the SSH entries use (your ~/.ssh/id_ed25519 or
        id_rsa, else one made for gpuoutlet-jupyter; GpuOutletApp.identity_file changes it).
        """
        args = self._parse(self.gpu_keys, "gpu_keys", line)
        if args is None:
            return None
        if args.action == "add":
            return self._run("gpu_keys", lambda core: core.add_key(args.name))
        if args.name:
            raise GpuMagicError("%gpu_keys: --name goes with add (%gpu_keys add --name NAME).")
        return self._run("gpu_keys", lambda core: core.keys())

    @line_magic
    @magic_arguments()
    @help_option()
    def gpu_wallet(self, line: str) -> WalletInfo | None:
        """The wallet: what is available, and what is reserved for running rentals."""
        if self._parse(self.gpu_wallet, "gpu_wallet", line) is None:
            return None
        return self._run("gpu_wallet", lambda core: core.wallet())

    @line_magic
    @magic_arguments()
    @help_option()
    def gpu_panel(self, line: str) -> Panel | None:
        """A panel to rent and watch GPUs: families, wallet, a launch form, live rentals."""
        if self._parse(self.gpu_panel, "gpu_panel", line) is None:
            return None
        if getattr(self.shell, "kernel", None) is None:
            raise GpuMagicError(
                "%gpu_panel: the panel is made of widgets, which need a notebook frontend "
                "(JupyterLab, Jupyter Notebook, VS Code). Here, use %gpu_families, %gpu_rent "
                "and %gpu_rentals."
            )

        def panel(core: GpuCore) -> Panel:
            from .panel import Panel

            return Panel(self.session)

        return self._run("gpu_panel", panel)
