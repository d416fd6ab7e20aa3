"""``%gpu_top``: a rental's GPUs, refreshed with every sample while someone looks.

In a notebook it is a widget updated from the kernel's event loop (a long-poll per sample, so a
waiting view costs no CPU) until its Stop button, the rental's end, or a pod without
``nvidia-smi`` (said once). In a terminal it prints a plain-text table per sample, as ``top``
does, until Ctrl-C (or ``--samples N``). Every viewer shares the server's one sampler per rental.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ..api import GpuOutletError
from .backend import Backend
from .errors import NotebookError
from .live import start_live
from .views.telemetry import GpuTable

#: Seconds one request waits for the next sample (samples come every 5 s).
SAMPLE_WAIT = 15.0
#: The REST error code of a rental whose pod cannot be reached any more (it ended).
ENDED_CODE = "pod_not_reachable"

#: The live widget of each rental, so a second %gpu_top on it replaces the first.
_LIVE: dict[str, GpuTopWidget] = {}


def pick_rental(backend: Backend, rental_id: str | None) -> str:
    """The rental to look at: the one given, else the only running one."""
    if rental_id:
        return rental_id
    running = [
        r["id"] for r in backend.rentals()["rentals"] if r["status"] == "running" and not r["gone"]
    ]
    if len(running) == 1:
        return str(running[0])
    if not running:
        raise NotebookError(
            "No rental is running, so there are no GPUs to show. %gpu_rent rents one; "
            "%gpu_rentals lists yours."
        )
    raise NotebookError(
        f"{len(running)} rentals are running: say which one, e.g. %gpu_top {running[0]} "
        f"(running: {', '.join(running)})."
    )


def follow_text(
    backend: Backend,
    rental_id: str,
    *,
    say: Callable[[str], None],
    samples: int | None = None,
) -> GpuTable | None:
    """Print a table per sample until Ctrl-C, ``samples`` tables, or no nvidia-smi (said once).

    Returns the last table (None when interrupted before the first one).
    """
    table: GpuTable | None = None
    since, shown = 0, 0
    try:
        while samples is None or shown < samples:
            view = backend.telemetry(rental_id, since=since, wait=SAMPLE_WAIT)
            if view["version"] <= since and view["state"] != "unavailable":
                continue  # no sample within the wait (a slow pod): ask again
            since = view["version"]
            table = GpuTable(view)
            say(table.to_text() + "\n")
            shown += 1
            if table.state == "unavailable":
                break
    except KeyboardInterrupt:
        pass  # Ctrl-C ends the watching, as in top; the server's sampler stops by itself
    return table


class GpuTopWidget:
    """A live view of one rental's GPUs in a notebook (ipywidgets)."""

    def __init__(self, backend: Backend, rental_id: str, *, wait: float = SAMPLE_WAIT) -> None:
        import ipywidgets as w

        self.backend = backend
        self.rental_id = rental_id
        self._wait = wait
        self._since = 0
        self.table: GpuTable | None = None
        self.html = w.HTML(value=f"<i>Waiting for the first sample of {rental_id}…</i>")
        self.status = w.HTML(value="")
        self.stop_button = w.Button(description="Stop", tooltip="Stop watching (the GPUs run on)")
        self.stop_button.on_click(lambda _button: self.stop())
        self.widget = w.VBox([self.html, w.HBox([self.stop_button, self.status])])
        self._task: asyncio.Task[None] | None = None
        previous = _LIVE.pop(rental_id, None)
        if previous is not None:
            previous.stop()
        _LIVE[rental_id] = self

    def start(self) -> GpuTopWidget:
        self._task = start_live(self._step, self._report, name=f"gpu-top-{self.rental_id}")
        if self._task is None:
            # No running loop (a frontend without an event loop): one table, then stop.
            self.show(GpuTable(self.backend.telemetry(self.rental_id, since=0, wait=self._wait)))
            self.stop("Live updates need a kernel's event loop: run %gpu_top again to refresh.")
        return self

    async def _step(self) -> bool:
        try:
            view = await self.backend.atelemetry(self.rental_id, since=self._since, wait=self._wait)
        except GpuOutletError as exc:
            if getattr(exc, "code", None) == ENDED_CODE:
                self.stop(str(exc))
                return False
            raise
        if view["version"] > self._since or view["state"] == "unavailable":
            self._since = view["version"]
            self.show(GpuTable(view))
        if view["state"] == "unavailable":
            self.stop("")
            return False
        return True

    def show(self, table: GpuTable) -> None:
        self.table = table
        self.html.value = table._repr_html_()

    def _report(self, text: str, bad: bool) -> None:
        color = "var(--jp-error-color1)" if bad else "var(--jp-ui-font-color2)"
        self.status.value = f"<span style='color:{color}'>{text}</span>" if text else ""

    def stop(self, why: str = "Stopped watching.") -> None:
        """Stop following (the server's sampler stops once nobody else looks)."""
        task, self._task = self._task, None
        if task is not None and task is not _current_task():
            task.cancel()
        self.stop_button.disabled = True
        if why:
            self._report(why, False)
        if _LIVE.get(self.rental_id) is self:
            del _LIVE[self.rental_id]

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def _current_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None
