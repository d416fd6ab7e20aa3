"""A rental's GPUs (``TelemetryView``) and ports (``PortsView``, ``ForwardView``) for people: an
HTML repr for notebooks and plain-text tables for terminals."""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

from .text import cell, html_table, number, parse_time, text_table

#: Eight heights of a text sparkline, lowest first.
_BLOCKS = "▁▂▃▄▅▆▇█"
#: Samples a sparkline shows (the last ones): 10 minutes at the default 5 s is 120.
SPARK_SAMPLES = 40


def sparkline(values: list[float | None], width: int = SPARK_SAMPLES) -> str:
    """Percentages as block characters (a gap for a missing value), the last ``width`` of them."""
    out = []
    for value in values[-width:]:
        if value is None:
            out.append(" ")
        else:
            out.append(_BLOCKS[min(len(_BLOCKS) - 1, max(0, int(value / 100 * len(_BLOCKS))))])
    return "".join(out)


def _gib(mib: Any) -> str:
    value = number(mib)
    return "?" if value is None else f"{value / 1024:.1f}"


def _unit(value: Any, unit: str, digits: int = 0) -> str:
    found = number(value)
    return "n/a" if found is None else f"{found:.{digits}f}{unit}"


class GpuTable:
    """One reply of ``GET rentals/ID/telemetry``: the latest sample of each GPU, with the last
    minutes of its utilisation as a sparkline."""

    def __init__(self, view: dict[str, Any]) -> None:
        self.view = view

    @property
    def rental_id(self) -> str:
        return str(self.view["rentalId"])

    @property
    def state(self) -> str:
        return str(self.view["state"])

    @property
    def message(self) -> str | None:
        message = self.view.get("message")
        return str(message) if message else None

    @property
    def latest(self) -> dict[str, Any] | None:
        samples = self.view.get("samples") or []
        return samples[-1] if samples else None

    def utilizations(self, index: int) -> list[float | None]:
        """The utilisation of GPU ``index`` in every sample kept, oldest first."""
        found: list[float | None] = []
        for sample in self.view.get("samples") or []:
            gpu = next((g for g in sample["gpus"] if g["index"] == index), None)
            found.append(number(gpu.get("utilization")) if gpu else None)
        return found

    def title(self) -> str:
        count, model = self.view.get("gpuCount") or 0, self.view.get("gpuModel")
        what = f"{count}× {model}" if count and model else "GPUs"
        latest = self.latest
        at = parse_time(latest["at"]) if latest else None
        when = f" · {at:%H:%M:%S} UTC" if at else ""
        interval = number(self.view.get("intervalSeconds")) or 0
        return f"{self.rental_id} · {what} · every {interval:g} s{when}"

    def headers(self) -> tuple[str, ...]:
        return ("GPU", "UTIL", "MEMORY (GiB)", "TEMP", "POWER", "UTIL, LAST MINUTES")

    def rows(self) -> list[tuple[str, ...]]:
        latest = self.latest
        if latest is None:
            return []
        return [
            (
                str(g["index"]),
                _unit(g.get("utilization"), " %"),
                f"{_gib(g.get('memoryUsed'))} / {_gib(g.get('memoryTotal'))}",
                _unit(g.get("temperature"), " °C"),
                _unit(g.get("power"), " W"),
                sparkline(self.utilizations(int(g["index"]))),
            )
            for g in latest["gpus"]
        ]

    def note(self) -> str | None:
        """What to say besides the numbers: no nvidia-smi, a failed sample, none yet."""
        if self.state == "unavailable":
            return self.message or "This pod has no nvidia-smi: no GPU telemetry."
        if self.state == "error":
            return f"The last sample failed: {self.message}"
        if self.latest is None:
            return "Waiting for the first sample…"
        return None

    def to_text(self) -> str:
        parts = [self.title()]
        if self.rows():
            parts.append(text_table(self.headers(), self.rows()))
        note = self.note()
        if note:
            parts.append(note)
        return "\n".join(parts)

    def __repr__(self) -> str:
        return f"GpuTable({self.rental_id}, {self.state})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.to_text())

    def _repr_html_(self) -> str:
        body = html_table(self.headers(), self.rows()) if self.rows() else ""
        note = self.note()
        if note:
            body += f"<p>{cell(note)}</p>"
        # Not typeset by MathJax (a `$` in a GPU's name would be).
        return f"<div class='mathjax_ignore tex2jax_ignore'><b>{cell(self.title())}</b>{body}</div>"


def proxy_url(server_url: str | None, proxy_path: str | None) -> str | None:
    """The forward's full URL through jupyter-server-proxy, from the server's own URL."""
    if not server_url or not proxy_path:
        return None
    return urljoin(server_url, proxy_path)


class ForwardInfo:
    """A pod port forwarded here: where to open it."""

    def __init__(self, forward: dict[str, Any], server_url: str | None = None) -> None:
        self.forward = forward
        self.server_url = server_url

    @property
    def local_port(self) -> int:
        return int(self.forward["localPort"])

    @property
    def local_url(self) -> str:
        return str(self.forward["localUrl"])

    @property
    def proxy_path(self) -> str | None:
        path = self.forward.get("proxyPath")
        return str(path) if path else None

    @property
    def url(self) -> str:
        """The URL to open: through the Jupyter server's proxy when it has one."""
        return proxy_url(self.server_url, self.proxy_path) or self.local_url

    def to_text(self) -> str:
        forward = self.forward
        lines = [
            f"Port {forward['remotePort']} of {forward['rentalId']} is forwarded to "
            f"{self.local_url} on the Jupyter server's machine."
        ]
        if self.proxy_path:
            lines.append(f"Open it: {self.url}")
            lines.append(f"(from any browser on this Jupyter: {self.proxy_path})")
        else:
            lines.append(f"Open it: {self.local_url}")
        lines.append("It ends when the rental stops.")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.to_text()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.to_text())

    def _repr_html_(self) -> str:
        forward = self.forward
        # A path on the page's own origin works wherever JupyterLab is served from.
        href = self.proxy_path or self.local_url
        return (
            "<div class='mathjax_ignore tex2jax_ignore'>"
            f"Port {cell(forward['remotePort'])} of {cell(forward['rentalId'])}: "
            f"<a href='{cell(href)}' target='_blank' rel='noopener'>{cell(self.url)}</a> "
            f"(local port {cell(self.local_port)}; it ends when the rental stops)</div>"
        )


class PortsTable:
    """``GET rentals/ID/ports``: the template's known ports, the listening ones, the forwards."""

    def __init__(self, ports: dict[str, Any], server_url: str | None = None) -> None:
        self.ports = ports
        self.server_url = server_url

    def rows(self) -> list[tuple[str, ...]]:
        forwards = {
            f["remotePort"]: ForwardInfo(f, self.server_url) for f in self.ports["forwards"]
        }
        rows: dict[int, tuple[str, ...]] = {}
        listening = {p["port"]: p for p in self.ports["listening"]}
        for known in self.ports["known"]:
            port = known["port"]
            state = "listening" if known["listening"] else "not listening"
            rows[port] = (str(port), known["label"], state, _open(forwards.get(port)))
        for port, item in listening.items():
            if port not in rows:
                what = item.get("process") or f"on {item['address']}"
                rows[port] = (str(port), what, "listening", _open(forwards.get(port)))
        return [rows[p] for p in sorted(rows)]

    def to_text(self) -> str:
        rental = self.ports["rentalId"]
        rows = self.rows()
        if not rows:
            return f"{rental}: nothing listens on the pod, and its template names no port."
        table = text_table(("PORT", "WHAT", "STATE", "OPEN AT"), rows)
        return f"{rental}: ports (`%gpu_forward {rental} PORT` opens one)\n{table}"

    def __repr__(self) -> str:
        return self.to_text()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.to_text())

    def _repr_html_(self) -> str:
        rows = self.rows()
        if not rows:
            return f"<p>{cell(self.to_text())}</p>"
        return html_table(("Port", "What", "State", "Open at"), rows)


def _open(forward: ForwardInfo | None) -> str:
    return forward.url if forward is not None else ""
