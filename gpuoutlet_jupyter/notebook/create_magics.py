"""The magic that settles creates whose answer was lost: ``%gpu_creates``. A thin
``magic_arguments`` wrapper, as the other %gpu_* magics, over the session's core."""

from __future__ import annotations

from typing import TYPE_CHECKING

from IPython.core.magic import magics_class

from .arguments import argument, help_option, line_magic, magic_arguments
from .magics import GpuMagicError, GpuMagics

if TYPE_CHECKING:
    from .core import GpuCore
    from .views import CreatesTable, RentalsTable


@magics_class
class CreateMagics(GpuMagics):
    """%gpu_creates, over the same NotebookSession as the other %gpu_* magics."""

    @line_magic
    @magic_arguments()
    @help_option()
    @argument(
        "action",
        nargs="?",
        choices=["list", "keep"],
        default="list",
        help="list (default): the creates not settled yet; keep: which of the rentals that "
        "match one to keep (the others are stopped).",
    )
    @argument("create_id", nargs="?", metavar="CREATE_ID", help="With keep: the create.")
    @argument("rental_ids", nargs="*", metavar="RENTAL_ID", help="With keep: the rentals kept.")
    @argument("--all", dest="all", action="store_true", help="With keep: keep them all.")
    def gpu_creates(self, line: str) -> CreatesTable | RentalsTable | None:
        """Creates whose answer is still awaited or was lost, not settled yet.

        A create is sent once, never twice (gpuoutlet has no idempotency key). When its answer
        is lost, the rental is looked for by its name; when several rentals match, all are
        watched (each may cost money) until you keep some: `%gpu_creates keep CREATE_ID
        RENTAL_ID` stops the others.
        """
        args = self._parse(self.gpu_creates, "gpu_creates", line)
        if args is None:
            return None
        if args.action == "list":
            if args.create_id or args.rental_ids or args.all:
                raise GpuMagicError("%gpu_creates: CREATE_ID and --all go with keep.")

            def listed(core: GpuCore) -> CreatesTable:
                from .choice import pending_creates
                from .views import CreatesTable

                return CreatesTable(pending_creates(core))

            return self._run("gpu_creates", listed)
        if not args.create_id or bool(args.rental_ids) == args.all:
            raise GpuMagicError(
                "%gpu_creates keep: give the create and the rentals to keep (%gpu_creates keep "
                "create_… rent_…), or --all to keep every one. %gpu_creates lists them."
            )
        keep = None if args.all else list(args.rental_ids)

        def settled(core: GpuCore) -> RentalsTable:
            from .choice import settle

            return settle(core, args.create_id, keep)

        return self._run("gpu_creates", settled)
