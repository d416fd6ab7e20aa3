"""The magics that reach a rental's pod: ``%gpu_top`` (its GPUs, live), ``%gpu_forward``
(open one of its ports here) and ``%gpu_sync`` (copy a folder to or from it). Thin ``magic_arguments`` wrappers, as the other %gpu_* magics,
over the session's backend; light to import (IPython only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from IPython.core.magic import magics_class

from .arguments import argument, help_option, line_magic, magic_arguments
from .magics import GpuMagicError, GpuMagics

if TYPE_CHECKING:
    from .core import GpuCore
    from .top import GpuTopWidget
    from .views.telemetry import ForwardInfo, GpuTable, PortsTable


@magics_class
class PodMagics(GpuMagics):
    """%gpu_top, %gpu_forward and %gpu_sync, over the same NotebookSession as the other %gpu_* magics."""

    @line_magic
    @magic_arguments()
    @help_option()
    @argument(
        "rental_id", metavar="ID", nargs="?", help="A running rental (default: the only one)."
    )
    @argument(
        "--samples",
        "-n",
        type=int,
        metavar="N",
        help="In a terminal: stop after N samples (default: until Ctrl-C).",
    )
    @argument("--once", action="store_true", help="One table of the latest sample, not live.")
    def gpu_top(self, line: str) -> GpuTopWidget | GpuTable | None:
        """A rental's GPUs, live: utilisation, memory, temperature, power, the last minutes.

        Sampled on the pod (nvidia-smi over its shared SSH connection) every 5 s while
        someone looks. In a notebook it is a live view with a Stop button; in a terminal a
        table per sample until Ctrl-C. A pod without nvidia-smi is said to be so, once.
        """
        args = self._parse(self.gpu_top, "gpu_top", line)
        if args is None:
            return None
        if args.samples is not None and args.samples < 1:
            raise GpuMagicError("%gpu_top: --samples must be 1 or more.")
        live = getattr(self.shell, "kernel", None) is not None and not args.once

        def top(core: GpuCore) -> GpuTopWidget | GpuTable | None:
            from .top import GpuTopWidget, follow_text, pick_rental
            from .views.telemetry import GpuTable

            rental_id = pick_rental(core.backend, args.rental_id)
            if live:
                return GpuTopWidget(core.backend, rental_id).start()
            if args.once:
                view = core.backend.telemetry(rental_id, since=0, wait=15.0)
                return GpuTable(view)
            follow_text(core.backend, rental_id, say=core.say, samples=args.samples)
            return None

        return self._run("gpu_top", top)

    @line_magic
    @magic_arguments()
    @help_option()
    @argument("rental_id", metavar="ID", help="A running rental.")
    @argument(
        "port",
        metavar="PORT",
        type=int,
        nargs="?",
        help="The pod's port to open (without: list its ports).",
    )
    @argument("--close", action="store_true", help="End the forward of PORT.")
    def gpu_forward(self, line: str) -> ForwardInfo | PortsTable | None:
        """Open a port of a rental's pod here, and print the URL to open it at.

        The port is forwarded to a free local port over the rental's shared SSH connection,
        and opened through jupyter-server-proxy ({base_url}proxy/<local port>/), so it works
        when JupyterLab itself runs on another machine. Without PORT: the template's known
        ports and those listening on the pod. Forwards end when the rental stops.
        """
        args = self._parse(self.gpu_forward, "gpu_forward", line)
        if args is None:
            return None
        if args.close and args.port is None:
            raise GpuMagicError("%gpu_forward: --close needs the PORT to stop forwarding.")

        def forward(core: GpuCore) -> ForwardInfo | PortsTable | None:
            from .views.telemetry import ForwardInfo, PortsTable

            backend = core.backend
            if args.port is None:
                return PortsTable(backend.ports(args.rental_id), backend.server_url)
            if args.close:
                left = backend.cancel_forward(args.rental_id, args.port)
                core.say(
                    f"Port {args.port} of {args.rental_id} is no longer forwarded "
                    f"({len(left['forwards'])} forward(s) left)."
                )
                return None
            info = ForwardInfo(backend.forward(args.rental_id, args.port), backend.server_url)
            core.say(info.url)
            return info

        return self._run("gpu_forward", forward)

    @line_magic
    @magic_arguments()
    @help_option()
    @argument(
        "action",
        choices=["up", "down", "status", "cancel"],
        help="up: this machine's folder to the pod; down: the pod's folder here; status: the "
        "transfer now (or the last); cancel: stop it (what arrived whole is kept).",
    )
    @argument(
        "paths",
        nargs="*",
        metavar="[ID] [LOCAL] [REMOTE]",
        help="The rental (default: the one running), the local folder (default: this "
        "notebook's) and the pod's folder (default: its work folder, ~/work).",
    )
    @argument("--bwlimit", type=float, metavar="BYTES", help="At most BYTES per second.")
    @argument("--no-wait", dest="no_wait", action="store_true", help="Return once it started.")
    def gpu_sync(self, line: str) -> dict[str, Any] | None:
        """Copy a folder to or from a rental's pod, with progress; only what changed moves.

        rsync over the rental's SSH alias (a tar stream when the pod has no rsync), one shared
        connection; `.gpuoutletignore` (gitignore syntax) excludes files, and by default .git,
        __pycache__, .venv, node_modules and .ipynb_checkpoints. Ctrl-C cancels; running it
        again resumes.
        """
        args = self._parse(self.gpu_sync, "gpu_sync", line)
        if args is None:
            return None
        sync = self.session.sync
        return self._run(
            "gpu_sync",
            lambda core: sync.run(args.action, args.paths, args.bwlimit, wait=not args.no_wait),
        )
