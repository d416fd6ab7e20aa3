"""``gpuoutlet_jupyter.rent()``: a GPU for a ``with`` block, or for as long as this kernel runs.

The same core as ``%gpu_rent`` (one session, one backend: the Jupyter server's, else the service
in this process), with one promise more: the rental cannot be left behind. ``with rent(...) as
rental:`` stops it when the block ends, whatever ended it (a failing cell, Ctrl-C); without
``with`` it is stopped when this process ends (a notebook's kernel shut down, ``jupyter nbconvert
--execute`` done or failed, a script's exit), unless ``stop_at_exit=False``. A rental that does not
come up (failed, interrupted while coming up) is stopped before the error is raised: only a
running rental is handed over. ``auto_stop_hours`` (gpuoutlet's own cap) covers what no process
can: a machine that dies, a kernel killed with SIGKILL.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..api import GpuOutletError
from .follow import ready_or_final
from .views import RentalInfo

if TYPE_CHECKING:
    from .core import GpuCore
    from .session import NotebookSession


def _at_exit(callback: Any) -> None:
    """Run ``callback`` when the interpreter exits, while threads can still be started.

    ``atexit`` runs after the thread pools are shut down (``concurrent.futures`` registers its
    own exit with ``threading._register_atexit``), and stopping a rental needs them (the
    in-process service writes files and resolves names on its loop's threads). Registered the
    same way, later, this runs first; plain ``atexit`` where that is missing.
    """
    register = getattr(threading, "_register_atexit", None)
    if register is None:
        atexit.register(callback)
        return
    try:
        register(callback)
    except RuntimeError:  # the interpreter is shutting down already
        atexit.register(callback)


class Rental(RentalInfo):
    """A running rental from :func:`rent`, stopped at the end of its ``with`` block, by
    :meth:`stop`, or when this process exits (``stop_at_exit``). Everything a
    :class:`RentalInfo` has (``id``, ``host``, ``port``, ``ssh_command``, ``kernel``, ...) is
    its latest known state; ``refresh()`` asks again."""

    def __init__(self, info: RentalInfo, core: GpuCore, *, stop_at_exit: bool = True) -> None:
        super().__init__(info.data, core.backend)
        self._core = core
        #: Stopped (for good) by this object: nothing more to do at exit.
        self.stopped = False
        self.stop_at_exit = stop_at_exit
        _at_exit(self._stop_at_exit)

    def _update(self, info: RentalInfo) -> None:
        self.data = dict(info.data)
        self.received = info.received

    def refresh(self) -> Rental:
        """This rental as the service knows it now (updates this object, returns it)."""
        self._update(super().refresh())
        return self

    def stop(self, *, wait: bool = True) -> Rental:
        """Stop it for good (gpuoutlet destroys the pod and its disk) and, by default, wait until
        it is stopped; says what it cost. Stopping twice does nothing more; a rental that failed
        has nothing to stop."""
        if self.stopped or self.is_final:
            return self
        info = self._core.stop(self.id, wait=wait)
        self.stopped = True
        self._update(info)
        return self

    def _stop_at_exit(self) -> None:
        if self.stopped or not self.stop_at_exit or self.is_final:
            return
        # The stop itself first and nothing else: no waiting (a process being shut down may
        # not get many more seconds; the service, or gpuoutlet, sees the stop through) and no
        # printing before it (the output may be closed already).
        try:
            self._core.backend.stop(self.id)
            self.stopped = True
            said = f"{self.id} is stopped, as this process exits (gpuoutlet_jupyter.rent)."
        except (GpuOutletError, OSError, RuntimeError) as exc:
            said = (
                f"Could not stop {self.id} as this process exits ({exc}). It may still be "
                f"running and billed: stop it with %gpu_stop {self.id}, the sidebar, or the "
                "gpuoutlet website (an auto-stop it was given ends it anyway)."
            )
        with contextlib.suppress(Exception):
            self._core.say(said)

    def __enter__(self) -> Rental:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Whatever ended the block (a failure, Ctrl-C, the end), the rental ends with it.
        self.stop()

    def __repr__(self) -> str:
        return "Rental" + super().__repr__().removeprefix("RentalInfo")

    # IPython prefers the most specific class's __repr__ to an inherited _repr_pretty_: the
    # notebook shows the rental's summary, as for any RentalInfo.
    _repr_pretty_ = RentalInfo._repr_pretty_


def rent(
    family: str,
    *,
    gpus: int = 1,
    template: str | None = None,
    region: str | None = None,
    name: str | None = None,
    auto_stop_hours: float | None = None,
    idle_stop_minutes: float | None = None,
    stop_at_exit: bool = True,
    session: NotebookSession | None = None,
) -> Rental:
    """Rent ``gpus`` GPUs of ``family`` (``rtx-4090``), wait until the rental runs, return it.

    ::

        with gpuoutlet_jupyter.rent("rtx-4090", auto_stop_hours=1) as rental:
            print(rental.ssh_command)     # ssh gpuoutlet-rent_…; rental.kernel: its kernelspec
        # stopped here, whatever happened in the block

    What ``%gpu_rent`` does, with its checks (the SSH key on the account, the quote, the wallet,
    a spending cap): the same options (``template``, ``region``, ``name``, ``auto_stop_hours``:
    gpuoutlet stops it after that many hours; ``idle_stop_minutes``: the Jupyter server stops it
    once its kernels have been idle that long, which needs the server). The rental is stopped
    when the ``with`` block ends, by ``rental.stop()``, or when this process exits (unless
    ``stop_at_exit=False``). One that fails to come up, or is interrupted while it does, is
    stopped and the error raised: only a running rental is handed over.
    """
    from .session import NotebookSession

    core = (session or NotebookSession.current()).core
    request = core.request(
        family_id=family,
        gpu_count=gpus,
        template_id=template,
        region=region,
        name=name,
        auto_stop_after_hours=auto_stop_hours,
    )
    created = core.create(request, idle_stop_minutes=idle_stop_minutes)
    # From here it exists and may cost money: it is handed over running, or stopped.
    rental = Rental(created, core, stop_at_exit=stop_at_exit)
    try:
        latest, _ = core.follow(created, ready_or_final, keep=False)
        rental._update(latest)
        core.outcome(latest)  # raises, saying why, unless it runs
    except BaseException:
        if not rental.is_final:
            core.say(f"{rental.id} did not come up: stopping it, so nothing is left behind.")
            with contextlib.suppress(GpuOutletError):
                rental.stop(wait=False)
        raise
    return rental
