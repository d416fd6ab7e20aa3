"""``%gpu_panel`` / ``gpuoutlet_jupyter.Panel()``: a launch form, the wallet and a live list of rentals.

Every widget is touched on the kernel's thread: button clicks arrive there, and the live list
is refreshed by an asyncio task on the kernel's own loop that long-polls the rentals list
(live.py). A rental about to be stopped for being idle shows the warning and a "Keep it" button.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import re
import time
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from ..api import GpuOutletError, RequestValidationError, format_cents
from ..api.models import STOP_NOTICE
from ..api.templates import DEFAULT_TEMPLATE, TEMPLATES
from .errors import explain_problems
from .live import LIVE_WAIT_SECONDS, start_live
from .session import NotebookSession
from .views import ELSEWHERE, RentalInfo, WalletInfo
from .widgets import copy_button, idle_warning_html, no_math, stopped_idle_text

if TYPE_CHECKING:
    from .core import GpuCore

#: The form's labels for the request's fields, for validation messages.
FORM_NAMES = {
    "familyId": "Family",
    "gpuCount": "GPUs",
    "templateId": "Template",
    "region": "Region",
    "name": "Name",
    "autoStopAfterHours": "Auto-stop",
    "idleStopMinutes": "Idle stop",
}
_COLOURS = {"provisioning": "#b26a00", "running": "#1b7f3b", "failed": "#b00020"}


#: Seconds a Stop button waits for its second click (the confirmation) before it resets.
STOP_CONFIRM_SECONDS = 10.0


def _family_label(family: dict[str, Any]) -> str:
    price = format_cents(int(family.get("minPricePerGpuHourCents") or 0))
    memory = family.get("vramGb")
    gb = f", {memory:g} GB" if isinstance(memory, (int, float)) else ""
    return f"{family.get('id')} — from {price}/h per GPU{gb}"


def _per_gpu_price(family: dict[str, Any]) -> int:
    return int(family.get("minPricePerGpuHourCents") or 0)


def next_name(name: str) -> str:
    """The name to suggest after renting ``name``: ``alice/exp-42`` → ``alice/exp-43``
    (``exp-009`` → ``exp-010``); a name without a number at its end gets ``-2``."""
    match = re.search(r"(\d+)$", name)
    if match is None:
        return f"{name}-2" if name else ""
    digits = match.group(1)
    return name[: match.start()] + str(int(digits) + 1).zfill(len(digits))


def _template_label(template: Any) -> str:
    ports = ", ".join(str(p) for p in template.ports)
    return f"{template.id} — {template.contents}" + (f" (port {ports})" if ports else "")


class _Row:
    """One rental's line in the list; updated in place so no widget is rebuilt per change."""

    def __init__(self, panel: Panel, rental: RentalInfo) -> None:
        self.rental_id = rental.id
        self.label = w.HTML(layout=w.Layout(width="300px"))
        self.state = w.HTML(layout=w.Layout(width="110px"))
        self.money = w.HTML(layout=w.Layout(width="170px"))
        self.phase = w.HTML(layout=w.Layout(flex="1"))
        self.stop = w.Button(
            description="Stop",
            button_style="danger",
            tooltip=STOP_NOTICE,
            layout=w.Layout(width="110px"),
        )
        # Two clicks: the first says a stop is permanent, the second stops.
        self.armed_at: float | None = None
        #: Not stopped, failed or gone: it may cost money, and has a Stop button.
        self.active = True
        self.stop.on_click(lambda _button: panel.stop_clicked(self))
        self.keep = w.Button(
            description="Keep it",
            button_style="warning",
            tooltip="Restart the idle timer: the rental is not stopped for being idle yet",
            layout=w.Layout(width="80px", display="none"),
        )
        self.keep.on_click(lambda _button: panel.keep(self.rental_id))
        self.box = w.HBox([self.label, self.state, self.money, self.phase, self.keep, self.stop])
        self.update(rental)

    def update(self, rental: RentalInfo) -> None:
        name = f" · {html.escape(rental.name)}" if rental.name else ""
        if not rental.created_here:
            name += f" · <i title='{html.escape(ELSEWHERE)}'>made elsewhere</i>"
        self.label.value = (
            f"<code>{html.escape(rental.id)}</code><br>{html.escape(rental.gpus)}{name}"
        )
        colour = _COLOURS.get(rental.status, "#555")
        gone = " (gone)" if rental.gone else ""
        why = "<br>idle" if rental.stopped_idle else ""
        self.state.value = f"<b style='color:{colour}'>{html.escape(rental.status)}{gone}</b>{why}"
        self.money.value = (
            f"{format_cents(rental.price_per_hour_cents)}/h<br>"
            f"so far {format_cents(rental.cost_cents())}"
        )
        phase = html.escape(rental.phase)
        if rental.is_running and rental.ssh_command:
            phase = (
                f"<code>{html.escape(rental.ssh_command)}</code> {copy_button(rental.ssh_command)}"
            )
            if rental.kernel:
                phase += f"<br>kernel <code>{html.escape(rental.kernel)}</code>"
        if rental.stopped_idle:
            phase = html.escape(stopped_idle_text(rental))
        elif rental.idle_warning:
            phase += f"<br>{idle_warning_html(rental)}"
        elif rental.is_active and (summary := rental.idle_summary()):
            phase += f"<br>{html.escape(summary)}"
        self.phase.value = phase
        self.keep.layout.display = None if rental.idle_warning else "none"
        # Nothing to stop once it is over: no button. While it stops: said, not clickable.
        self.active = rental.is_active
        self.stop.layout.display = None if rental.is_active else "none"
        self.stop.disabled = rental.status == "stopping"
        if rental.status == "stopping":
            self.stop.description = "Stopping…"
            self.armed_at = None

    def close(self) -> None:
        widgets = (self.label, self.state, self.money, self.phase, self.keep, self.stop, self.box)
        for widget in widgets:
            widget.close()


class Panel(w.VBox):  # type: ignore[misc]  # ipywidgets is untyped
    """Rent and watch GPUs: families with prices, a launch form, the wallet, live rentals.

    ``Panel()`` uses the magics' session (their settings, ``%config NotebookSession``, and
    their backend). The live list follows the service with long-polls on the kernel's event
    loop; ``close()`` ends that.
    """

    def __init__(
        self, session: NotebookSession | None = None, *, live: bool = True, **kwargs: Any
    ) -> None:
        self.session = session or NotebookSession.current()
        self._families: dict[str, dict[str, Any]] = {}
        self._rows: dict[str, _Row] = {}
        self._version = 0
        self._task: asyncio.Task[None] | None = None
        #: The message saying live updates paused, cleared once they resume.
        self._live_problem = ""

        self.family = w.Dropdown(description="Family", layout=w.Layout(width="420px"))
        self.gpus = w.Dropdown(options=[1, 2, 4, 8], value=1, description="GPUs")
        self.template = w.Dropdown(
            options=[(_template_label(t), t.id) for t in TEMPLATES],
            value=DEFAULT_TEMPLATE,
            description="Template",
            layout=w.Layout(width="420px"),
        )
        self.region = w.Combobox(description="Region", placeholder="anywhere", ensure_option=False)
        self.name = w.Text(description="Name", placeholder="alice/exp-42")
        self.auto_stop = w.BoundedFloatText(
            value=0,
            min=0,
            max=10_000,
            step=0.5,
            description="Auto-stop h",
            tooltip="Stop after this many hours (0: never)",
        )
        self.idle_stop = w.Text(
            description="Idle stop",
            placeholder="server default",
            tooltip="Minutes with nothing running on it before it is stopped (0: never; empty: "
            "the Jupyter server's default)",
        )
        self.launch = w.Button(description="Launch", button_style="primary", icon="rocket")
        self.launch.on_click(lambda _button: self.launch_rental())
        self.message = w.HTML("")
        self.wallet = w.HTML("")
        self.rentals = w.VBox([])
        self.family.observe(self._family_changed, names="value")
        form = w.VBox(
            [
                w.HTML("<b>Rent a GPU</b>"),
                self.family,
                self.template,
                self.gpus,
                w.HBox([self.region, self.name]),
                w.HBox([self.auto_stop, self.idle_stop]),
                self.launch,
            ]
        )
        # The rentals first: what runs (and costs) matters more than the form to rent more.
        super().__init__(
            [self.message, self.wallet, w.HTML("<b>Rentals</b>"), self.rentals, form], **kwargs
        )
        no_math(self)
        self._load()
        if live:
            self.start()

    @property
    def core(self) -> GpuCore:
        return self.session.core

    def __repr__(self) -> str:
        # The text/plain of the panel's output, for viewers without widgets.
        active = sum(1 for r in self._rows.values() if r.active)
        return f"gpuoutlet panel: {len(self._rows)} rentals ({active} active); use %gpu_rentals for text"

    # Loading and rendering (kernel thread only).

    def _load(self) -> None:
        backend = self.core.backend
        families: list[dict[str, Any]] = backend.families()["families"]
        self._families = {str(f["id"]): f for f in families}
        self.family.options = [(_family_label(f), str(f["id"])) for f in families]
        if self.family.value is None and families:
            # Never an empty choice: the cheapest GPU hour first, as the sidebar does.
            self.family.value = str(min(families, key=_per_gpu_price)["id"])
        self._show_wallet(backend.wallet())
        listed = backend.rentals()
        self._render(listed)

    def _family_changed(self, change: Any) -> None:
        family = self._families.get(change["new"]) or {}
        # What a create's region takes: ISO codes, as the catalog lists them for this family.
        self.region.options = tuple(str(r) for r in family.get("regionCodes") or ())

    def _show_wallet(self, data: dict[str, Any]) -> None:
        # One paragraph per line: the balance, the burn and hours left, the cap.
        self.wallet.value = WalletInfo(data)._repr_html_()

    def _render(self, listed: dict[str, Any]) -> None:
        self._version = int(listed.get("version") or self._version)
        rentals = [RentalInfo(r, self.core.backend) for r in listed.get("rentals") or []]
        seen = set()
        for rental in rentals:
            seen.add(rental.id)
            row = self._rows.get(rental.id)
            if row is None:
                self._rows[rental.id] = _Row(self, rental)
            else:
                row.update(rental)
        for rental_id in [r for r in self._rows if r not in seen]:
            self._rows.pop(rental_id).close()
        self.rentals.children = [self._rows[r.id].box for r in rentals]
        if not rentals:
            self.rentals.children = [w.HTML("<i>No rentals yet.</i>")]

    def say(self, text: str, *, error: bool = False) -> None:
        colour = "#b00020" if error else "#1b7f3b"
        self.message.value = f"<span style='color:{colour}'>{html.escape(text)}</span>"

    # Actions (button clicks arrive on the kernel thread).

    def launch_rental(self) -> RentalInfo | None:
        """Create a rental from the form; the live list shows its progress."""
        fields = {
            "family_id": self.family.value,
            "gpu_count": self.gpus.value,
            "template_id": self.template.value or None,
            "region": self.region.value.strip() or None,
            "name": self.name.value.strip() or None,
            "auto_stop_after_hours": self.auto_stop.value or None,
        }
        try:
            request = self.core.request(**fields)
            # The one create path of the magics (the service checks, quotes, creates once).
            rental = self.core.create(
                request, idle_stop_minutes=self.idle_stop.value.strip() or None
            )
        except RequestValidationError as exc:
            self.say(f"Not launched: {explain_problems(exc.problems, FORM_NAMES)}.", error=True)
            return None
        except GpuOutletError as exc:
            # The balance message (what the hour costs, where to top up) comes from the core.
            self.say(f"Not launched: {exc}", error=True)
            return None
        self.say(f"Launched {rental.quote_line()} It shows above as it comes up.")
        # The next rental gets the next name (alice/exp-42, then alice/exp-43), not this one's.
        self.name.value = next_name(self.name.value.strip())
        self.refresh()
        return rental

    def stop_clicked(self, row: _Row) -> None:
        """A row's Stop button: the first click arms it and says a stop is permanent."""
        now = time.monotonic()
        if row.armed_at is None or now - row.armed_at > STOP_CONFIRM_SECONDS:
            row.armed_at = now
            row.stop.description = "Confirm stop"
            self.say(f"{row.rental_id}: {STOP_NOTICE} Click “Confirm stop” to stop it.", error=True)
            return
        row.armed_at = None
        row.stop.description = "Stop"
        self.stop(row.rental_id)

    def stop(self, rental_id: str) -> None:
        """Stop one rental for good (after its row's confirmation)."""
        try:
            stopped = RentalInfo(self.core.backend.stop(rental_id), self.core.backend)
        except GpuOutletError as exc:
            self.say(f"Could not stop {rental_id}: {exc}", error=True)
            return
        self.say(stopped.stop_line())
        self.refresh()

    def keep(self, rental_id: str) -> None:
        """Restart one rental's idle timer (its row's Keep it button)."""
        try:
            kept = self.core.keep(rental_id)
        except GpuOutletError as exc:
            self.say(f"Could not keep {rental_id}: {exc}", error=True)
            return
        self.say(kept.kept_line())
        self.refresh()

    def refresh(self) -> None:
        """Reload the list and the wallet now."""
        try:
            self._render(self.core.backend.rentals())
            self._show_wallet(self.core.backend.wallet())
        except GpuOutletError as exc:
            self.say(str(exc), error=True)

    # Live refresh: a task on the kernel's loop, never a thread touching widgets.

    def start(self) -> None:
        """Follow the rentals list with long-polls, if this kernel has a running event loop
        (without one, as in plain IPython, call refresh())."""
        if self._task is None or self._task.done():
            self._task = start_live(self._step, self._report, name="gpuoutlet-panel")

    def _report(self, text: str, bad: bool) -> None:
        if text:
            self.say(text, error=bad)
            self._live_problem = self.message.value
        elif self.message.value == self._live_problem:
            self.message.value = ""  # updates resumed; a newer message stays

    async def _step(self) -> bool:
        backend = self.core.backend
        listed = await backend.arentals(since=self._version, wait=LIVE_WAIT_SECONDS)
        changed = int(listed.get("version") or 0) != self._version
        self._render(listed)  # also moves each "so far" cost and idle countdown on
        if changed:
            self._show_wallet(await backend.awallet())
        return True

    def close(self) -> None:
        """Stop the live updates and close the widgets."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        for row in self._rows.values():
            row.close()
        self._rows.clear()
        with contextlib.suppress(Exception):
            super().close()
