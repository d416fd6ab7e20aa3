"""%gpu_kernels: the rentals' remote kernels, and Reattach or Shut down of a detached one.

A thin ``magic_arguments`` wrapper over the backend's kernel calls (the server's REST API, or
the kernel records themselves in-process); the rest of the magics are GpuMagics'.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from IPython.core.magic import magics_class

from .arguments import argument, help_option, line_magic, magic_arguments
from .magics import GpuMagicError, GpuMagics

if TYPE_CHECKING:
    from .views.kernels import KernelAction, KernelsTable


@magics_class
class KernelMagics(GpuMagics):
    """%gpu_kernels over the session's backend."""

    @line_magic
    @magic_arguments()
    @help_option()
    @argument("rental_id", metavar="ID", nargs="?", help="Only this rental's kernels (rent_…).")
    @argument(
        "--reattach",
        metavar="KERNEL",
        help="Give this detached kernel back to its notebook: the rental's kernel is started "
        "for it and adopts it, variables and all (KERNEL: the second column).",
    )
    @argument(
        "--shutdown",
        metavar="KERNEL",
        help="End this detached kernel and its folder on its machine (its variables go too).",
    )
    def gpu_kernels(self, line: str) -> KernelsTable | KernelAction | None:
        """The remote kernels of your rentals and how each is connected.

        A kernel on a rental survives its connection: when it drops (a closed laptop, a
        restarted Jupyter) the kernel runs on, detached, with its variables, and Jupyter
        reconnects to it by itself; one whose Jupyter went away is listed here as detached
        until its rental stops. --reattach KERNEL gives it back to its notebook, --shutdown
        KERNEL ends it.
        """
        args = self._parse(self.gpu_kernels, "gpu_kernels", line)
        if args is None:
            return None
        from .views.kernels import KernelAction, KernelsTable

        wrapper = args.reattach or args.shutdown
        if args.reattach and args.shutdown:
            raise GpuMagicError(
                "%gpu_kernels: --reattach and --shutdown cannot go together: one kernel, one "
                "action. Nothing was done."
            )
        if wrapper is None:
            rental_id = args.rental_id
            return self._run(
                "gpu_kernels",
                lambda core: KernelsTable(
                    core.backend.kernels(rental_id)["kernels"], rental_id=rental_id
                ),
            )
        if args.rental_id:
            raise GpuMagicError(
                "%gpu_kernels: give a rental ID to list its kernels, or --reattach/--shutdown "
                "KERNEL, not both. Nothing was done."
            )
        if not wrapper.isalnum() or not wrapper.isascii():
            raise GpuMagicError(
                f"%gpu_kernels: {wrapper!r} is not a kernel id (letters and digits, as the "
                "second column of %gpu_kernels shows). Nothing was done."
            )
        if args.reattach:
            return self._run(
                "gpu_kernels",
                lambda core: KernelAction("reattach", core.backend.reattach_kernel(wrapper)),
            )
        return self._run(
            "gpu_kernels",
            lambda core: KernelAction("shutdown", core.backend.shut_down_kernel(wrapper)),
        )
