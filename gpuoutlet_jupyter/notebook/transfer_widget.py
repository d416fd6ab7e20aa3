"""A transfer's progress as widgets (ipywidgets): a bar of bytes, the rate and the file moving now."""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as w

from .sync import transfer_line

_STATE_COLOURS = {
    "done": "var(--jp-success-color1, #1b7f3b)",
    "failed": "var(--jp-error-color1, #b00020)",
    "cancelled": "var(--jp-warn-color1, #b26a00)",
}


class TransferWidget(w.VBox):  # type: ignore[misc]  # ipywidgets is untyped
    """One upload, download or save: a progress bar (bytes) and a line of text under it."""

    def __init__(self, **kwargs: Any) -> None:
        self.bar = w.FloatProgress(value=0.0, min=0.0, max=1.0, layout=w.Layout(width="60%"))
        self.label = w.HTML()
        super().__init__([self.bar, self.label], **kwargs)
        self.add_class("gpuoutlet-transfer")
        self._shown = False

    def _ensure_shown(self) -> None:
        if not self._shown:
            from IPython.display import display

            display(self)  # type: ignore[no-untyped-call]
            self._shown = True

    def update(self, transfer: dict[str, Any]) -> None:
        done, total = int(transfer.get("bytesDone") or 0), int(transfer.get("bytesTotal") or 0)
        # A transfer over before its plan was reported has its bytes done only.
        self.bar.max = float(max(total, done, 1))
        self.bar.value = float(done)
        self.bar.bar_style = "info"
        self.label.value = f"<span>{html.escape(transfer_line(transfer))}</span>"
        self._ensure_shown()

    def finish(self, transfer: dict[str, Any]) -> None:
        state = str(transfer.get("state") or "")
        done, total = int(transfer.get("bytesDone") or 0), int(transfer.get("bytesTotal") or 0)
        self.bar.max = float(max(total, done, 1))
        self.bar.value = float(done)
        self.bar.bar_style = {"done": "success", "failed": "danger"}.get(state, "warning")
        if state == "done":
            self.bar.value = self.bar.max
        colour = _STATE_COLOURS.get(state, "inherit")
        text = html.escape(transfer_line(transfer))
        self.label.value = f"<span style='color:{colour}'>{text}</span>"
        self._ensure_shown()
