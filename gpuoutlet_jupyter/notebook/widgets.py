"""The progress widget (ipywidgets): status, time, polls, price, phase, upstream errors, SSH command."""

from __future__ import annotations

import html
import json
from typing import Any

import ipywidgets as w

from ..api.models import format_cents
from .progress import progress_line
from .views import RentalInfo, duration

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


class ProgressWidget(w.VBox):  # type: ignore[misc]  # ipywidgets is untyped
    """A rental coming up, as a small box of widgets; ``update()`` is called on the kernel thread."""

    def __init__(self, *, expected_polls: int = 60, **kwargs: Any) -> None:
        self.expected_polls = expected_polls
        self.heading = w.HTML("<b>Creating the rental…</b>")
        self.status_line = w.HTML("")
        self.bar = w.IntProgress(
            value=0,
            min=0,
            max=expected_polls,
            description="polls",
            bar_style="info",
            layout=w.Layout(width="320px"),
        )
        self.bar_label = w.Label("")
        self.money = w.HTML("")
        self.phase = w.HTML("")
        self.upstream = w.HTML("", layout=w.Layout(display="none"))
        self.ssh = w.Text(
            value="", description="ssh", disabled=True, layout=w.Layout(width="480px")
        )
        self.copy = w.HTML("")
        self.ssh_row = w.HBox([self.ssh, self.copy], layout=w.Layout(display="none"))
        self.details = w.HTML("")
        self.notes = w.HTML("")
        self._line = ""
        self._shown = False
        super().__init__(
            [
                self.heading,
                self.status_line,
                w.HBox([self.bar, self.bar_label]),
                self.money,
                self.phase,
                self.upstream,
                self.ssh_row,
                self.details,
                self.notes,
            ],
            **kwargs,
        )

    def __repr__(self) -> str:
        # The text/plain of the widget's output: what a viewer without widgets sees.
        return self._line

    def update(self, rental: RentalInfo) -> None:
        self._line = progress_line(rental, expected_polls=self.expected_polls)
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
        self.bar.max = max(self.expected_polls, rental.polls)
        self.bar.value = rental.polls
        self.bar_label.value = f"{rental.polls} of ~{self.expected_polls} polls"
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

    def note(self, text: str) -> None:
        self.notes.value = f"<span style='color:#555'>{html.escape(text)}</span>"

    def finish(self, rental: RentalInfo) -> None:
        self.update(rental)
        self.notes.value = ""
