"""The rentals' remote kernels as %gpu_kernels shows them, and what Reattach and Shut down said."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from .text import cell, duration, html_table, parse_time, text_table

#: Keeps JupyterLab's MathJax off the HTML (a path may hold a ``$``).
_NO_MATH = "mathjax_ignore tex2jax_ignore"


def _when(value: Any, now: datetime) -> str:
    """``14:02 UTC (0:05 ago)``, or "" when unknown."""
    at = parse_time(value)
    if at is None:
        return ""
    return f"{at:%H:%M} UTC ({duration((now - at).total_seconds())} ago)"


def state_text(kernel: dict[str, Any]) -> str:
    state = str(kernel.get("state", ""))
    if state == "reconnecting":
        return f"reconnecting (attempt {kernel.get('attempt') or 1})"
    if state == "detached" and kernel.get("reattachRequested"):
        return "detached (reattach asked for)"
    return state


class KernelsTable:
    """Every remote kernel of the rentals (or of one), by rental, newest first."""

    HEADERS = ("rental", "kernel", "state", "since", "notebook", "what to do")

    def __init__(
        self,
        kernels: Sequence[dict[str, Any]],
        *,
        rental_id: str | None = None,
        now: datetime | None = None,
    ) -> None:
        self.kernels = list(kernels)
        self.rental_id = rental_id
        self.now = now or datetime.now(timezone.utc)

    def __len__(self) -> int:
        return len(self.kernels)

    def __iter__(self) -> Any:
        return iter(self.kernels)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.kernels[index]

    @property
    def detached(self) -> list[dict[str, Any]]:
        return [k for k in self.kernels if k.get("detached")]

    def __repr__(self) -> str:
        return f"KernelsTable({len(self.kernels)} kernels, {len(self.detached)} detached)"

    def rows(self) -> list[tuple[str, ...]]:
        rows: list[tuple[str, ...]] = []
        for k in self.kernels:
            wrapper = str(k.get("wrapper", ""))
            if k.get("detached"):
                todo = f"--reattach {wrapper} · --shutdown {wrapper}"
            elif k.get("state") == "reconnecting":
                todo = str(k.get("error") or "wait: it reconnects by itself")
            else:
                todo = ""
            notebook = k.get("notebook")
            rows.append(
                (
                    str(k.get("rentalId", "")),
                    wrapper,
                    state_text(k),
                    _when(k.get("since"), self.now),
                    os.path.basename(notebook) if isinstance(notebook, str) else "",
                    todo,
                )
            )
        return rows

    def _empty(self) -> str:
        where = f" on {self.rental_id}" if self.rental_id else ""
        return (
            f"No remote kernel{where}. Open a notebook with a running rental's kernel "
            "(%gpu_rentals shows the rentals; the kernel is named after the rental)."
        )

    def _footer(self) -> list[str]:
        lines = [str(k["notice"]) for k in self.kernels if k.get("state") == "reconnecting"]
        if self.detached:
            lines.append(
                f"{len(self.detached)} detached: each runs on with its variables and no Jupyter "
                "attached, until its rental stops (or its detach timeout). `%gpu_kernels "
                "--reattach KERNEL` gives it back to its notebook; `%gpu_kernels --shutdown "
                "KERNEL` ends it."
            )
        return lines

    def to_text(self) -> str:
        body = text_table(self.HEADERS, self.rows()) if self.kernels else self._empty()
        return "\n".join([body, *self._footer()])

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.to_text())

    def _repr_html_(self) -> str:
        body = (
            html_table(self.HEADERS, self.rows())
            if self.kernels
            else f"<p>{cell(self._empty())}</p>"
        )
        body += "".join(f"<p>{cell(line)}</p>" for line in self._footer())
        return f"<div class='{_NO_MATH}'>{body}</div>"


class KernelAction:
    """What a Reattach or a Shut down did (the server's reply, and its message)."""

    def __init__(self, action: str, reply: dict[str, Any]) -> None:
        self.action = action
        self.reply = reply

    @property
    def message(self) -> str:
        return str(self.reply.get("message", ""))

    def __repr__(self) -> str:
        return f"KernelAction({self.action!r}, {self.message!r})"

    def to_text(self) -> str:
        return self.message

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.to_text())

    def _repr_html_(self) -> str:
        return f"<div class='{_NO_MATH}'><p>{cell(self.message)}</p></div>"
