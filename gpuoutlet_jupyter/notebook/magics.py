"""The %gpu_* magics: thin ``magic_arguments`` wrappers over GpuCore, configurable with %config.

Importing this module loads IPython and traitlets only (already loaded in any kernel); the
client, httpx, pydantic and ipywidgets are imported on a magic's first use.
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from IPython.core import magic as _magic
from IPython.core import magic_arguments as _ma
from IPython.core.error import UsageError
from IPython.core.magic import Magics, magics_class
from traitlets import Enum, Float, Unicode, observe

from ..service.traits import ServiceTraits

if TYPE_CHECKING:
    from .backend import Backend, BackendChoice, BackendConfig
    from .core import CoreOptions, GpuCore
    from .panel import Panel
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
F = TypeVar("F", bound=Callable[..., Any])


# IPython's magic_arguments has no type hints: typed wrappers keep the magics checked.
def magic_arguments() -> Callable[[F], F]:
    """``IPython.core.magic_arguments.magic_arguments``, typed."""
    return cast("Callable[[F], F]", _ma.magic_arguments())  # type: ignore[no-untyped-call]


def argument(*args: Any, **kwargs: Any) -> Callable[[F], F]:
    """``IPython.core.magic_arguments.argument``, typed."""
    return cast("Callable[[F], F]", _ma.argument(*args, **kwargs))  # type: ignore[no-untyped-call]


def line_magic(func: F) -> F:
    """``IPython.core.magic.line_magic`` used bare, typed (IPython types it as a decorator factory)."""
    return cast("F", _magic.line_magic(func))


def parse_argstring(magic: Callable[..., Any], line: str) -> Any:
    """``IPython.core.magic_arguments.parse_argstring``, typed."""
    return _ma.parse_argstring(magic, line)  # type: ignore[no-untyped-call]


class HelpRequested(Exception):
    """``-h``/``--help`` was given: ``text`` is the help to show, and nothing else is done."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class _CLIHelpFormatter(_ma.MagicHelpFormatter):
    """IPython's formatter (dedented descriptions), with a CLI's ``usage:`` line instead of the
    reST code block the magic's docstring starts with."""

    def add_usage(
        self, usage: Any, actions: Any, groups: Any, prefix: str | None = "usage: %"
    ) -> None:
        argparse.HelpFormatter.add_usage(self, usage, actions, groups, prefix)


class _ShowHelp(argparse.Action):
    """``-h``/``--help`` as in every CLI: the usage and every option. argparse's own help
    action would print and then exit the process (SystemExit); this one hands the text back."""

    def __init__(
        self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any
    ) -> None:
        kwargs.update(nargs=0, default=argparse.SUPPRESS)
        super().__init__(option_strings, dest, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        shown = copy.copy(parser)
        shown.formatter_class = _CLIHelpFormatter
        raise HelpRequested(shown.format_help())


def help_option() -> Callable[[F], F]:
    """The ``-h``/``--help`` option every magic has."""
    return argument("-h", "--help", action=_ShowHelp, help="Show this help; nothing else is done.")


#: The rental request's wire fields, as the options of %gpu_rent name them.
FLAG_NAMES = {
    "familyId": "FAMILY",
    "gpuCount": "--gpus",
    "templateId": "--template",
    "region": "--region",
    "name": "--name",
    "autoStopAfterHours": "--auto-stop",
    "idleStopMinutes": "--idle-stop",
    "id": "the rental ID",
}
#: Traits that change how the backend is made: a change takes effect on the next magic.
_BACKEND_TRAITS = (
    "backend",
    "request_timeout",
    "state_dir",
    "ssh_dir",
    "ssh_user",
    "identity_file",
    "kernelspecs",
    "remote_python",
    "poll_interval",
    "max_polls",
    "slow_poll_interval",
    "running_poll_interval",
    "reconcile_interval",
    "max_hourly_spend_cents",
)


class GpuMagicError(Exception):
    """A problem to show as one paragraph, without a traceback (IPython calls
    ``_render_traceback_`` instead of formatting one)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def _render_traceback_(self) -> list[str]:
        return [self.message]


def explain_problems(problems: list[tuple[str, str]], names: dict[str, str]) -> str:
    """Validation problems with the names the user typed (``--gpus``, not ``gpuCount``)."""
    parts = []
    for field, problem in problems:
        name = names.get(field, field)
        if field == "name" and "at most" in problem:
            problem = "is longer than the 64 characters allowed; shorten it (e.g. alice/exp-42)"
        else:
            # pydantic's "Input should be greater than 0" reads as "--auto-stop should be ...".
            for prefix in ("Input ", "String ", "Value "):
                problem = problem.removeprefix(prefix)
        parts.append(f"{name} {problem}")
    return "; ".join(parts)


@magics_class
class GpuOutletMagics(ServiceTraits, Magics):
    """Rent GPUs from a notebook: %gpu_rent, %gpu_status, %gpu_rentals, %gpu_wait, %gpu_stop,
    %gpu_keep, %gpu_families, %gpu_templates, %gpu_wallet, %gpu_keys, %gpu_panel. Configure with
    ``%config GpuOutletMagics.<name>``; the service settings (SSH, polling) apply when rentals
    are handled in-process, the server has its own (``c.GpuOutletApp.*``)."""

    backend = Enum(
        ["auto", "server", "in-process"],
        default_value="auto",
        help="""Where rentals are handled. auto: the Jupyter server that started this kernel
        (GPUOUTLET_SERVER_URL, else the server's runtime file through JPY_PARENT_PID), else
        in-process. server: the server only. in-process: this kernel talks to the rentals API
        itself (GPUOUTLET_API_URL, GPUOUTLET_SID or ~/.config/gpuoutlet/credentials).""",
    ).tag(config=True)
    progress = Enum(
        ["auto", "widget", "text"],
        default_value="auto",
        help="How progress is shown: an ipywidgets box (auto in a Jupyter kernel) or one "
        "updating text line.",
    ).tag(config=True)
    wait_seconds = Float(
        5.0, help="Seconds one long-poll waits for a change while following a rental."
    ).tag(config=True)
    # In-process only (the server has its own settings, c.GpuOutletApp.*).
    state_dir = Unicode(
        "",
        help="In-process: where tracked rentals are saved (<Jupyter data dir>/gpuoutlet/in-process).",
    ).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self._core: GpuCore | None = None

    # Wiring (all lazy).

    @property
    def core(self) -> GpuCore:
        """The core, made on first use; its options follow the traits."""
        if self._core is None:
            from .core import GpuCore
            from .progress import make_progress

            self._core = GpuCore(
                self._open_backend,
                progress=lambda core: make_progress(self.progress, shell=self.shell, core=core),
                say=print,
                confirm=self._confirm,
            )
        self._core.options = self.core_options()
        return self._core

    def core_options(self) -> CoreOptions:
        """The traits the core reads on every call."""
        from .core import CoreOptions

        return CoreOptions(wait_seconds=self.wait_seconds)

    def backend_config(self) -> BackendConfig:
        """The traits, as the backend's configuration."""
        from .backend import BackendConfig
        from .inprocess import default_state_dir

        state_dir = Path(self.state_dir).expanduser() if self.state_dir.strip() else None
        return BackendConfig(
            choice=cast("BackendChoice", self.backend),
            request_timeout=self.request_timeout,
            in_process=self.service_config(state_dir or default_state_dir()),
        )

    def _open_backend(self) -> Backend:
        from .backend import open_backend

        return open_backend(self.backend_config())

    @observe(*_BACKEND_TRAITS)
    def _backend_settings_changed(self, change: Any) -> None:
        # getattr: traits given to the constructor are set before __init__ makes `_core`.
        core: GpuCore | None = getattr(self, "_core", None)
        if core is not None:
            core.close()

    def close(self) -> None:
        """Close the backend (the in-process service saves its state; rentals go on)."""
        if self._core is not None:
            self._core.close()

    def _confirm(self, question: str) -> bool:
        from IPython.core.error import StdinNotImplementedError

        try:
            answer = input(question)
        except StdinNotImplementedError:
            raise GpuMagicError(
                "%gpu_stop: this frontend cannot ask for a confirmation. Nothing was stopped; "
                "run `%gpu_stop --all --yes` to stop every active rental."
            ) from None
        except EOFError:
            return False
        return answer.strip().lower() in ("y", "yes")

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
        from .errors import ServerUnreachableError

        try:
            return action(self.core)
        except RequestValidationError as exc:
            raise GpuMagicError(
                f"%{name}: {explain_problems(exc.problems, FLAG_NAMES)}. Nothing was sent and "
                f"nothing was charged; fix it and run again (`%{name}?` lists the options)."
            ) from None
        except GpuOutletError as exc:
            message = str(exc)
            core = self._core
            on_server = core is not None and core.connected and core.backend.kind == "server"
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
            return core.rent(request, wait=not args.no_wait, idle_stop_minutes=args.idle_stop)

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
        return self._run("gpu_status", lambda core: core.status())

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
        "--no-wait", dest="no_wait", action="store_true", help="Return once the stop is asked for."
    )
    def gpu_stop(self, line: str) -> RentalInfo | RentalsTable | None:
        """Stop a rental (or --all of them) for good, and wait until it is stopped.

        Stopping is permanent: gpuoutlet destroys the pod and wipes its disk. Billing ends
        there; the reply says what it cost in all and any refund. A rental already stopped is
        said to be so.
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
        return self._run("gpu_stop", lambda core: core.stop(args.rental_id, wait=not args.no_wait))

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
            "gpu_keep", lambda core: core.keep(args.rental_id, idle_stop_minutes=args.idle_stop)
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

            return Panel(core=core)

        return self._run("gpu_panel", panel)
