"""Showing a rental come up: one updating text line (the ipywidgets view is widgets.py).

Every update happens on the kernel's own thread, from the loop that follows the long-poll.
"""

from __future__ import annotations

import shutil
import sys
from typing import Any, Protocol, TextIO

from ..api.cents import format_cents
from .views import RentalInfo, duration


class ProgressView(Protocol):
    """Something that shows a rental's progress while the kernel follows it."""

    def update(self, rental: RentalInfo) -> None:
        """The latest state (also called when a long-poll timed out, to move the clock)."""

    def note(self, text: str) -> None:
        """A remark that is not the rental's state (connection trouble, Ctrl-C)."""

    def finish(self, rental: RentalInfo) -> None:
        """The last state: the magic's following is over (a widget may go on in the background)."""


def progress_line(rental: RentalInfo) -> str:
    """One line with everything the widget shows."""
    parts = [rental.id, rental.status, duration(rental.elapsed_seconds())]
    price = format_cents(rental.price_per_hour_cents)
    if rental.status == "provisioning":
        # Progress in time against gpuoutlet's own estimate, not in polls.
        if rental.provisioning_text():
            parts.append(rental.provisioning_text())
        parts.append(f"{price}/h, {price} reserved")
    elif rental.is_running:
        parts.append(f"{rental.host}:{rental.port}")
        if rental.ssh_command:
            parts.append(rental.ssh_command)
        parts.append(f"{price}/h")
        if rental.kernel:
            parts.append(f"kernel {rental.kernel}")
    else:
        parts.append(f"{price}/h")
    idle = rental.idle_summary()
    if idle:
        parts.append(idle)
    parts.extend(workdir_parts(rental.data.get("workdir") or {}))
    line = " · ".join(parts)
    detail = rental.phase
    if rental.upstream_error:
        # The most pressing news first: a line may be cut to the terminal's width.
        detail = f"last poll failed, retrying: {rental.upstream_error}"
    if detail and not (rental.is_running and rental.ssh_command):
        line += f" — {detail}"
    return line


_WORKDIR_STATES = {
    "pending": "working folder: waiting to push",
    "syncing": "working folder: pushing",
    "setup": "working folder: running the setup",
}


def workdir_parts(workdir: dict[str, Any]) -> list[str]:
    """The working folder's push and setup while the kernel waits for them (the last line of
    the setup's output, as it runs); how it ended once it failed."""
    state = workdir.get("state")
    if state in _WORKDIR_STATES:
        output = workdir.get("output") or []
        return [_WORKDIR_STATES[state], *([f"> {output[-1]}"] if output else [])]
    if state == "failed":
        return [f"working folder failed: {workdir.get('error') or 'no reason given'}"]
    return []


class StreamProgress:
    """One line rewritten in place with ``\\r`` (terminal IPython, plain Python)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self._shown = 0

    def _write(self, text: str, *, final: bool = False) -> None:
        width = max(20, shutil.get_terminal_size((120, 24)).columns - 1)
        if not final and len(text) > width:
            text = text[: width - 1] + "…"
        pad = max(0, self._shown - len(text))
        self.stream.write("\r" + text + " " * pad + ("\n" if final else ""))
        self.stream.flush()
        self._shown = 0 if final else len(text)

    def update(self, rental: RentalInfo) -> None:
        self._write(progress_line(rental))

    def show_text(self, text: str, final: bool) -> None:
        """Any line (a transfer's), rewritten in place; ``final`` ends it."""
        self._write(text, final=final)

    def note(self, text: str) -> None:
        if self._shown:
            self._write("", final=True)
        self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self, rental: RentalInfo) -> None:
        self._write(progress_line(rental), final=True)


class _Line:
    """A text/plain-only display object."""

    def __init__(self, text: str) -> None:
        self.text = text

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, str]:
        return {"text/plain": self.text}


class DisplayProgress:
    """One output line updated in place through a display id (a kernel without widgets)."""

    def __init__(self) -> None:
        self._handle: Any = None
        self._notes: list[str] = []
        self._last = ""

    def _show(self, text: str) -> None:
        from IPython.display import display

        line = _Line("\n".join([text, *self._notes]))
        if self._handle is None:
            # Shown at the first state, so even a static copy of the output says something.
            self._handle = display(line, display_id=True)  # type: ignore[no-untyped-call]
        else:
            self._handle.update(line)

    def update(self, rental: RentalInfo) -> None:
        self._last = progress_line(rental)
        self._show(self._last)

    def show_text(self, text: str, final: bool) -> None:
        """Any line (a transfer's), updated in place."""
        self._last = text
        self._show(text)

    def note(self, text: str) -> None:
        self._notes = [text]
        self._show(self._last)

    def finish(self, rental: RentalInfo) -> None:
        self._notes = []
        self.update(rental)
