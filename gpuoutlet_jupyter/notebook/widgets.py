"""The progress widget (ipywidgets): status, time against gpuoutlet's estimate, price, phase,
upstream errors, SSH command, and once the rental runs, its idle auto-stop with a "Keep it" button."""

from __future__ import annotations

import asyncio
import html
import json
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from ..api import GpuOutletError, NotFoundError
from ..api.cents import format_cents
from .live import LIVE_WAIT_SECONDS, start_live
from .progress import progress_line
from .views import RentalInfo, duration, minutes_text
from .views.text import NO_MATH_CLASSES

if TYPE_CHECKING:
    from .follow import RentalFollow

#: The bar's length while gpuoutlet has given no estimate (a rental made elsewhere).
DEFAULT_EXPECTED_SECONDS = 60

_STATUS_COLOURS = {
    "provisioning": "#b26a00",
    "running": "#1b7f3b",
    "failed": "#b00020",
    "stopping": "#555",
    "stopped": "#555",
}


def copy_button(text: str, label: str = "Copy") -> str:
    """HTML for a button that puts ``text`` on the browser's clipboard.

    The kernel cannot reach the browser's clipboard, so the click is handled in the page.
    """
    payload = html.escape(json.dumps(text), quote=True)
    return (
        f"<button class='jupyter-button' title='Copy to the clipboard' "
        f"onclick='navigator.clipboard.writeText({payload})'>{html.escape(label)}</button>"
    )


def idle_warning_text(rental: RentalInfo) -> str:
    """The warning shown with the "Keep it" button (the panel's too)."""
    left = rental.idle_seconds_left() or 0.0
    return f"Idle: stopping in {duration(left)} unless something runs on it"


def idle_warning_html(rental: RentalInfo) -> str:
    """The warning, bold in the theme's warning colour (the panel's and the widget's)."""
    text = html.escape(idle_warning_text(rental))
    return f"<b style='color:var(--jp-warn-color0, #b00020)'>{text}</b>"


def no_math(widget: w.DOMWidget) -> None:
    """Keep MathJax off the widget and all it holds (its prices carry ``$``): its outer element
    gets the classes MathJax skips, as every HTML output of the notebook layer does."""
    for name in NO_MATH_CLASSES.split():
        widget.add_class(name)


def stopped_idle_text(rental: RentalInfo) -> str:
    idle = rental.idle_stop
    after = f" ({minutes_text(idle.minutes)} with nothing running on it)" if idle else ""
    return f"Stopped for being idle{after}."


class ProgressWidget(w.VBox):  # type: ignore[misc]  # ipywidgets is untyped
    """A rental coming up, as a small box of widgets; ``update()`` is called on the kernel thread.

    With a ``follow``, it keeps following the rental once the magic is done (``finish``): an
    asyncio task on the kernel's loop long-polls it, so the idle countdown, its warning and a
    "Keep it" button show up while the kernel is free for other cells. The task ends when the
    rental is stopped, failed or gone, or on ``close()``.
    """

    def __init__(
        self,
        *,
        follow: RentalFollow | None = None,
        wait: float = LIVE_WAIT_SECONDS,
        **kwargs: Any,
    ) -> None:
        #: Where later states come from once the magic is done (None: nowhere, no Keep it).
        self.source = follow
        #: Seconds one background long-poll waits for a change.
        self.wait = wait
        #: The latest state shown.
        self.rental: RentalInfo | None = None
        self._task: asyncio.Task[None] | None = None
        self.heading = w.HTML("<b>Creating the rental…</b>")
        self.status_line = w.HTML("")
        # Moves with time against gpuoutlet's estimate of the time to running.
        self.bar = w.IntProgress(
            value=0,
            min=0,
            max=DEFAULT_EXPECTED_SECONDS,
            description="time",
            bar_style="info",
            layout=w.Layout(width="320px"),
        )
        self.bar_label = w.Label("")
        # Time against the estimate means something only while it comes up (and once it ran,
        # full): a stop, or a rental followed once it was past that, shows no bar at all.
        self.bar_row = w.HBox([self.bar, self.bar_label], layout=w.Layout(display="none"))
        self._came_up_here = False
        self.money = w.HTML("")
        self.phase = w.HTML("")
        self.upstream = w.HTML("", layout=w.Layout(display="none"))
        self.ssh = w.Text(
            value="", description="ssh", disabled=True, layout=w.Layout(width="480px")
        )
        self.copy = w.HTML("")
        self.ssh_row = w.HBox([self.ssh, self.copy], layout=w.Layout(display="none"))
        self.details = w.HTML("")
        self.idle = w.HTML("")
        self.keep_button = w.Button(
            description="Keep it",
            button_style="warning",
            tooltip="Restart the idle timer: the rental is not stopped for being idle yet",
            layout=w.Layout(display="none"),
        )
        self.keep_button.on_click(lambda _button: self.keep())
        self.idle_row = w.HBox([self.idle, self.keep_button], layout=w.Layout(display="none"))
        self.notes = w.HTML("")
        self._line = ""
        self._shown = False
        super().__init__(
            [
                self.heading,
                self.status_line,
                self.bar_row,
                self.money,
                self.phase,
                self.upstream,
                self.ssh_row,
                self.details,
                self.idle_row,
                self.notes,
            ],
            **kwargs,
        )
        no_math(self)

    def __repr__(self) -> str:
        # The text/plain of the widget's output: what a viewer without widgets sees.
        return self._line

    def update(self, rental: RentalInfo) -> None:
        self.rental = rental
        self._line = progress_line(rental)
        self._render(rental)
        if not self._shown:
            # Displayed at the first state, so its text/plain (a copy without widgets) says
            # something useful.
            from IPython.display import display

            self._shown = True
            display(self)  # type: ignore[no-untyped-call]

    def _render(self, rental: RentalInfo) -> None:
        colour = _STATUS_COLOURS.get(rental.status, "#333")
        self.heading.value = f"<b>{html.escape(rental.title())}</b>"
        self.status_line.value = (
            f"<span style='color:{colour};font-weight:bold'>{html.escape(rental.status)}</span>"
            f" · elapsed {duration(rental.elapsed_seconds())}"
        )
        self._render_bar(rental)
        if rental.upstream_error:
            self.bar.bar_style = "warning"
        elif rental.status == "running":
            self.bar.bar_style = "success"
        elif rental.status == "failed":
            self.bar.bar_style = "danger"
        else:
            self.bar.bar_style = "info"
        price = format_cents(rental.price_per_hour_cents)
        if rental.status == "provisioning":
            money = f"{price}/h · {price} reserved for the first hour"
        elif rental.is_final or rental.status == "stopping":
            money = f"{price}/h · cost {format_cents(rental.cost_cents())} in all"
        else:
            money = f"{price}/h · cost so far {format_cents(rental.cost_cents())}"
        self.money.value = html.escape(money)
        self.phase.value = f"<i>{html.escape(rental.phase)}</i>" if rental.phase else ""
        if rental.upstream_error:
            self.upstream.value = (
                "<span style='color:#b00020'>Upstream error, retrying: "
                f"{html.escape(rental.upstream_error)}</span>"
            )
            self.upstream.layout.display = None
        else:
            self.upstream.value = ""
            self.upstream.layout.display = "none"
        if rental.is_running and rental.ssh_command:
            self.ssh.value = rental.ssh_command
            self.copy.value = copy_button(rental.ssh_command)
            self.ssh_row.layout.display = None
            details = f"host {rental.host} · port {rental.port}"
            if rental.kernel:
                details += (
                    f" · kernel <code>{html.escape(rental.kernel)}</code> "
                    f"(“{html.escape(rental.kernel_display_name)}” in Kernel › Change Kernel…)"
                )
            self.details.value = details
        else:
            self.ssh_row.layout.display = "none"
            self.details.value = ""
        self._render_idle(rental)

    def _render_bar(self, rental: RentalInfo) -> None:
        """Time spent provisioning against gpuoutlet's estimate; full once it runs."""
        if rental.status == "provisioning":
            self._came_up_here = True
        visible = rental.status == "provisioning" or (
            self._came_up_here and rental.status in ("running", "failed")
        )
        self.bar_row.layout.display = None if visible else "none"
        expected = rental.expected_seconds or DEFAULT_EXPECTED_SECONDS
        elapsed = rental.provisioning_seconds()
        self.bar.max = max(1, round(expected))
        if elapsed is None:
            self.bar.value = self.bar.max if rental.status == "running" else self.bar.value
            self.bar_label.value = ""
            return
        # Never full before it runs: past the estimate, it creeps towards the end.
        shown = elapsed if elapsed < expected else expected * (1 - 0.05 * expected / elapsed)
        self.bar.value = min(self.bar.max - 1, round(shown)) if self.bar.max > 1 else 0
        self.bar_label.value = rental.provisioning_text()

    def _render_idle(self, rental: RentalInfo) -> None:
        warning = rental.idle_warning
        if rental.stopped_idle:
            text = f"<b>{html.escape(stopped_idle_text(rental))}</b> Nothing more is billed."
        elif warning:
            text = idle_warning_html(rental)
        elif rental.idle_stop is not None and rental.is_active:
            text = f"Idle stop: {html.escape(rental.idle_sentence())}."
        else:
            text = ""
        self.idle.value = text
        self.idle_row.layout.display = None if text else "none"
        # Keeping goes through the session: without one there is nothing to click.
        self.keep_button.layout.display = None if warning and self.source is not None else "none"

    def note(self, text: str) -> None:
        self.notes.value = f"<span style='color:#555'>{html.escape(text)}</span>" if text else ""

    def finish(self, rental: RentalInfo) -> None:
        self.update(rental)
        self.notes.value = ""
        self.follow()

    # Following in the background, and "Keep it" (both on the kernel's thread).

    @property
    def following(self) -> bool:
        """Whether the background task follows the rental."""
        return self._task is not None and not self._task.done()

    def follow(self) -> None:
        """Keep following the rental on the kernel's loop, until it is final or this is closed."""
        rental = self.rental
        if self.source is None or rental is None or rental.is_final or self.following:
            return
        self._task = start_live(self._step, self._report, name=f"gpuoutlet-progress-{rental.id}")

    def _report(self, text: str, bad: bool) -> None:
        self.note(text)

    async def _step(self) -> bool:
        """One long-poll of the rental; False once there is nothing more to follow."""
        source, rental = self.source, self.rental
        assert source is not None and rental is not None
        if not source.live:
            # Unloaded, or settings changed: do not reconnect behind the user's back.
            self.note(
                f"Live updates ended (the settings changed); %gpu_wait {rental.id} follows it."
            )
            return False
        poll = asyncio.ensure_future(source.changed(rental.version, self.wait))
        try:
            while not poll.done():
                # While the warning shows, its countdown moves every second between replies;
                # while it provisions, so does the bar.
                shown = self.rental
                ticking = shown is not None and (
                    shown.idle_warning or shown.status == "provisioning"
                )
                await asyncio.wait({poll}, timeout=1.0 if ticking else None)
                if not poll.done() and self.rental is not None:
                    self._render_idle(self.rental)
                    self._render_bar(self.rental)
        finally:
            poll.cancel()  # does nothing once it is done; else this task was cancelled
        try:
            latest = poll.result()
        except NotFoundError:
            self.note("The rentals service no longer knows this rental.")
            return False
        current = self.rental
        # A "Keep it" reply may be newer than this poll's answer: never step back.
        if current is None or latest.version >= current.version:
            self.update(latest)
        return self.rental is not None and not self.rental.is_final

    def keep(self) -> RentalInfo | None:
        """The "Keep it" button: restart the rental's idle timer (through the session)."""
        if self.source is None or self.rental is None:
            return None
        try:
            kept = self.source.keep()
        except GpuOutletError as exc:
            self.note(f"Could not keep it: {exc}")
            return None
        self.note("")
        self.update(kept)
        self.follow()
        return kept

    def close(self) -> None:
        """Stop following, then close the widget."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        super().close()
