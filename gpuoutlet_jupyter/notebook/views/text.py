"""Writing things for people: times, durations, and tables as HTML or aligned text (stdlib only)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 timestamp from the API (``...Z`` included), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def duration(seconds: float) -> str:
    """``0:07``, ``12:30``, ``1:02:03``."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def hours_text(hours: float) -> str:
    """A span of time for people: ``45 minutes``, ``9.5 hours``, ``12.3 days``."""
    if hours < 1:
        return f"{max(0, round(hours * 60))} minutes"
    if hours < 48:
        return f"{hours:.1f} hours"
    return f"{hours / 24:.1f} days"


def ago_text(seconds: float) -> str:
    """How long ago, for people: ``12 s``, ``3 min``, ``5 h``, ``2.5 days``."""
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{round(seconds)} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    if seconds < 48 * 3600:
        return f"{round(seconds / 3600)} h"
    return f"{seconds / 86400:.1f} days"


def clock_text(when: datetime) -> str:
    """``08:14:22 UTC`` (today), else ``2026-06-07 08:14 UTC``."""
    now = datetime.now(timezone.utc)
    if when.date() == now.date():
        return when.strftime("%H:%M:%S UTC")
    return when.strftime("%Y-%m-%d %H:%M UTC")


def since_text(value: Any) -> str:
    """An ISO time from the service as ``08:14:22 UTC (3 min ago)``; "" when there is none."""
    when = parse_time(value)
    if when is None:
        return ""
    age = (datetime.now(timezone.utc) - when).total_seconds()
    return f"{clock_text(when)} ({ago_text(age)} ago)"


def minutes_text(minutes: float) -> str:
    """``30 min``, ``0.2 min``."""
    return f"{minutes:g} min"


def number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


#: JupyterLab typesets ``$…$`` in HTML outputs with MathJax, which turns the text between two
#: amounts ("$99.99 available, $0.00 reserved") into italic math. MathJax leaves alone whatever is
#: inside an element of these classes (``mathjax_ignore`` for MathJax 3, ``tex2jax_ignore`` for
#: MathJax 2 and the classic notebook); an HTML entity for the sign would not help, MathJax reads
#: the rendered text.
NO_MATH_CLASSES = "mathjax_ignore tex2jax_ignore"


def no_math(body: str) -> str:
    """An HTML output that MathJax does not typeset: every ``_repr_html_`` returns through this."""
    return f'<div class="{NO_MATH_CLASSES}">{body}</div>'


def cell(text: Any) -> str:
    return html.escape("" if text is None else str(text))


def html_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th style='text-align:left'>{cell(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td style='text-align:left'>{cell(c)}</td>" for c in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def text_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
