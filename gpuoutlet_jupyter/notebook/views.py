"""What the magics return: rentals, tables, the wallet, with an HTML repr for notebooks and text elsewhere."""

from __future__ import annotations

import html
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..api.cents import format_cents

if TYPE_CHECKING:
    from .backend import Backend

FINAL_STATUSES = frozenset({"failed", "stopped"})
KERNEL_HINT = "Kernel › Change Kernel…"


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


def _hours(hours: float) -> str:
    """A span of time for people: ``45 minutes``, ``9.5 hours``, ``12.3 days``."""
    if hours < 1:
        return f"{max(0, round(hours * 60))} minutes"
    if hours < 48:
        return f"{hours:.1f} hours"
    return f"{hours / 24:.1f} days"


#: What "made elsewhere" means, where a rental is marked so.
ELSEWHERE = (
    "not from this Jupyter server (another machine or the gpuoutlet website); found in the "
    "rentals API's list, and billed all the same"
)


def minutes_text(minutes: float) -> str:
    """``30 min``, ``0.2 min``."""
    return f"{minutes:g} min"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class IdleStop:
    """A rental's idle auto-stop, as the service reported it (``idleStop`` in its JSON)."""

    #: Idle time after which the Jupyter server stops the rental.
    minutes: float
    #: The warning is shown this long before the stop.
    warn_minutes: float
    #: Last execution or busy state of one of its remote kernels, the last keep, or its start.
    last_active_at: datetime | None
    stop_at: datetime | None
    #: Seconds to the stop when the reply was made; None until the rental runs.
    seconds_left: float | None
    #: Show the warning, with a "Keep it" button.
    warning: bool
    kernels: int
    busy_kernels: int

    @classmethod
    def from_json(cls, data: Any) -> IdleStop | None:
        """None for a rental without idle stop (or a reply from a server that has none)."""
        if not isinstance(data, dict):
            return None
        minutes = _number(data.get("minutes"))
        if minutes is None:
            return None
        return cls(
            minutes=minutes,
            warn_minutes=_number(data.get("warnMinutes")) or 0.0,
            last_active_at=parse_time(data.get("lastActiveAt")),
            stop_at=parse_time(data.get("stopAt")),
            seconds_left=_number(data.get("secondsLeft")),
            warning=data.get("warning") is True,
            kernels=int(_number(data.get("kernels")) or 0),
            busy_kernels=int(_number(data.get("busyKernels")) or 0),
        )


def _cell(text: Any) -> str:
    return html.escape("" if text is None else str(text))


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th style='text-align:left'>{_cell(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td style='text-align:left'>{_cell(c)}</td>" for c in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _text_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


class RentalInfo:
    """One rental as the notebook shows it. ``data`` is the JSON view (camelCase) it was built from.

    ``id``, ``status``, ``host``, ``port``, ``ssh_command``, ``kernel`` and friends are read
    from it; ``refresh()`` and ``stop()`` go through the same backend as the magics.
    """

    def __init__(self, data: dict[str, Any], backend: Backend | None = None) -> None:
        self.data = dict(data)
        self._backend = backend
        # The idle countdown runs on from here: the kernel's clock may differ from the server's.
        self.received = time.monotonic()

    # Fields.

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def status(self) -> str:
        return str(self.data.get("status"))

    @property
    def host(self) -> str | None:
        value = self.data.get("host")
        return str(value) if value else None

    @property
    def port(self) -> int | None:
        value = self.data.get("port")
        return value if isinstance(value, int) else None

    @property
    def name(self) -> str | None:
        return self.data.get("name") or None

    @property
    def family_id(self) -> str | None:
        return self.data.get("familyId") or None

    @property
    def gpu_count(self) -> int | None:
        value = self.data.get("gpuCount")
        return value if isinstance(value, int) else None

    @property
    def price_per_hour_cents(self) -> int:
        return int(self.data.get("pricePerHourCents") or 0)

    @property
    def started_at(self) -> datetime | None:
        return parse_time(self.data.get("startedAt"))

    @property
    def stopped_at(self) -> datetime | None:
        return parse_time(self.data.get("stoppedAt"))

    @property
    def ended_at(self) -> datetime | None:
        """When it ended: the API's stoppedAt, else when the service saw it stop, fail or go."""
        return self.stopped_at or parse_time(self.data.get("endedAt"))

    @property
    def template_id(self) -> str | None:
        return self.data.get("templateId") or None

    @property
    def quote(self) -> dict[str, Any]:
        """gpuoutlet's quote it was created on (empty for a rental made elsewhere)."""
        value = self.data.get("quote")
        return dict(value) if isinstance(value, dict) else {}

    @property
    def expected_seconds(self) -> float | None:
        """gpuoutlet's estimate of the time to running, while it provisions."""
        value = (self.data.get("provisioning") or {}).get("expectedSeconds")
        return _number(value)

    def provisioning_seconds(self, now: float | None = None) -> float | None:
        """Seconds spent provisioning, counted on from the reply; None once it is not."""
        value = _number((self.data.get("provisioning") or {}).get("elapsedSeconds"))
        if value is None:
            return None
        return value + max(0.0, (time.monotonic() if now is None else now) - self.received)

    def provisioning_text(self) -> str:
        """``about 0:25 left of ~0:45`` (or ``1:10, longer than the ~0:45 expected``)."""
        elapsed = self.provisioning_seconds()
        if elapsed is None:
            return ""
        expected = self.expected_seconds
        if expected is None:
            return f"{duration(elapsed)} so far (20–60 s is usual)"
        if elapsed <= expected:
            return f"about {duration(expected - elapsed)} left of ~{duration(expected)}"
        return f"{duration(elapsed)}, longer than the ~{duration(expected)} expected"

    @property
    def stop_info(self) -> dict[str, Any]:
        """The API's answer to this server's stop (``finalChargedCents``, ``refundedCents``)."""
        value = self.data.get("stop")
        return dict(value) if isinstance(value, dict) else {}

    def quote_line(self) -> str:
        """The confirmation line of a new rental, from gpuoutlet's quote."""
        quote = self.quote
        price = format_cents(self.price_per_hour_cents)
        where = ", ".join(str(p) for p in (quote.get("providerCode"), quote.get("region")) if p)
        template = f" ({self.template_id})" if self.template_id else ""
        text = f"{self.id}: {self.gpus}{template} at {price}/h"
        if where:
            text += f" from {where}"
        expected = _number(quote.get("estimatedProvisionSeconds"))
        if expected is not None:
            text += f"; gpuoutlet expects it running in about {duration(expected)}"
        return (
            f"{text}. Its first hour ({price}) is reserved from the wallet; it is billed per "
            "second while it runs."
        )

    def stop_line(self) -> str:
        """What the stop settled: the cost in all and any refund (or that it was done already)."""
        stop = self.stop_info
        if self.data.get("alreadyStopped") or stop.get("alreadyStopped"):
            return (
                f"{self.id} was already stopped: nothing more to do, nothing more is billed "
                f"(it cost {format_cents(self.cost_cents())} in all)."
            )
        final = stop.get("finalChargedCents")
        if not isinstance(final, int):
            return f"{self.id} is {self.status}."
        text = f"{self.id} is {self.status}: it cost {format_cents(final)} in all"
        refunded = stop.get("refundedCents")
        if isinstance(refunded, int) and refunded:
            text += f", and {format_cents(refunded)} was refunded (it ran under a minute)"
        return text + "."

    @property
    def phase(self) -> str:
        return str(self.data.get("phase") or "")

    @property
    def polls(self) -> int:
        return int(self.data.get("polls") or 0)

    @property
    def version(self) -> int:
        return int(self.data.get("version") or 0)

    @property
    def error(self) -> str | None:
        return self.data.get("error") or None

    @property
    def upstream_error(self) -> str | None:
        return self.data.get("upstreamError") or None

    @property
    def gone(self) -> bool:
        return bool(self.data.get("gone"))

    @property
    def created_here(self) -> bool:
        """False for a rental made elsewhere (another machine, the website), found by reconciling."""
        return self.data.get("createdHere") is not False

    @property
    def ssh(self) -> dict[str, Any]:
        value = self.data.get("ssh")
        return dict(value) if isinstance(value, dict) else {}

    @property
    def ssh_alias(self) -> str | None:
        return self.ssh.get("alias") or None

    @property
    def ssh_command(self) -> str | None:
        """What to type: ``ssh gpuoutlet-<id>`` (with ``-F <config>`` when that is needed)."""
        return self.ssh.get("command") or None

    @property
    def kernel(self) -> str | None:
        """The kernelspec name of this rental (``gpuoutlet-<id lowercased>``) while it runs."""
        return self.data.get("kernel") or None

    @property
    def idle_stop(self) -> IdleStop | None:
        """Its idle auto-stop; None when it has none."""
        return IdleStop.from_json(self.data.get("idleStop"))

    @property
    def stop_reason(self) -> str | None:
        """Why the Jupyter server stopped it (``"idle"``); None when it did not."""
        value = self.data.get("stopReason")
        return str(value) if value else None

    @property
    def stopped_idle(self) -> bool:
        return self.stop_reason == "idle"

    def idle_seconds_left(self, now: float | None = None) -> float | None:
        """Seconds until the idle stop, counted down from the reply (``now``: monotonic)."""
        idle = self.idle_stop
        if idle is None or idle.seconds_left is None or not self.is_active:
            return None
        passed = (time.monotonic() if now is None else now) - self.received
        return max(0.0, idle.seconds_left - passed)

    @property
    def idle_warning(self) -> bool:
        """The idle stop is near: show the warning and a "Keep it" button."""
        idle = self.idle_stop
        return idle is not None and idle.warning and self.status == "running"

    def idle_summary(self) -> str:
        """The idle state in a few words, for a table cell: ``stops in 2:10``, ``stopped: idle``."""
        if self.stopped_idle:
            return "stopped: idle"
        idle = self.idle_stop
        if idle is None or not self.is_active:
            return ""
        left = self.idle_seconds_left()
        if self.idle_warning and left is not None:
            return f"stops in {duration(left)}"
        text = f"idle stop {minutes_text(idle.minutes)}"
        if idle.busy_kernels:
            return f"{text} (busy)"
        return f"{text}, {duration(left)} left" if left is not None else text

    def idle_sentence(self) -> str:
        """The idle state as a sentence, for the rental's own view."""
        idle = self.idle_stop
        if self.stopped_idle:
            after = f" after {minutes_text(idle.minutes)}" if idle else ""
            return f"stopped by the Jupyter server for being idle{after}"
        if idle is None:
            return ""
        after = f"after {minutes_text(idle.minutes)} with nothing running on it"
        if not self.is_active:
            return after
        left = self.idle_seconds_left()
        if left is None:
            return f"{after} (the timer starts when it runs)"
        if idle.busy_kernels:
            return f"{after}; a kernel on it is busy, so it is not idle"
        keep = f"%gpu_keep {self.id} restarts the timer"
        if self.idle_warning:
            return f"stopping in {duration(left)} unless something runs on it ({keep})"
        return f"{after}; {duration(left)} left ({keep})"

    @property
    def is_running(self) -> bool:
        return self.status == "running" and bool(self.host)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES or self.gone

    @property
    def is_active(self) -> bool:
        """Not stopped, failed or gone: it may cost money."""
        return not self.is_final

    def cost_cents(self) -> int:
        """What it has cost, as gpuoutlet reported it (``costCents``: its totalChargedCents,
        or the stop's settled total)."""
        value = self.data.get("costCents")
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    def elapsed_seconds(self, now: datetime | None = None) -> float:
        start = self.started_at
        if start is None:
            return 0.0
        end = self.ended_at or now or datetime.now(timezone.utc)
        return max(0.0, (end - start).total_seconds())

    @property
    def gpus(self) -> str:
        """``rtx-4090 ×1``."""
        family = self.family_id or "GPU"
        return f"{family} ×{self.gpu_count}" if self.gpu_count else family

    @property
    def kernel_display_name(self) -> str:
        """The name the kernel picker shows (as the kernelspec writer names it)."""
        label = self.name or self.id
        return " · ".join(part for part in ("Python 3", self.gpus, label) if part)

    # Acting.

    def refresh(self) -> RentalInfo:
        """The rental as the service knows it now."""
        if self._backend is None:
            raise RuntimeError("this RentalInfo is not connected to a rentals service")
        return RentalInfo(self._backend.rental(self.id), self._backend)

    def stop(self) -> RentalInfo:
        """Ask for this rental to stop (it is watched until stopped); use %gpu_stop to wait."""
        if self._backend is None:
            raise RuntimeError("this RentalInfo is not connected to a rentals service")
        return RentalInfo(self._backend.stop(self.id), self._backend)

    # Display.

    def summary_rows(self) -> list[tuple[str, str]]:
        """(label, value) pairs: what a person needs to use the rental."""
        rows = [("status", self.status + (" (no longer reported by the API)" if self.gone else ""))]
        if not self.created_here:
            rows.append(("made", ELSEWHERE))
        # Where to connect only while there is something to connect to.
        if self.is_active and self.host:
            rows.append(("host", self.host))
            if self.port is not None:
                rows.append(("port", str(self.port)))
        if self.is_active and self.ssh_command:
            rows.append(("ssh", self.ssh_command))
        elif self.is_active and self.ssh.get("error"):
            rows.append(("ssh", f"no SSH entry: {self.ssh['error']}"))
        price = f"{format_cents(self.price_per_hour_cents)}/h"
        if self.status == "provisioning":
            price += f" ({format_cents(self.price_per_hour_cents)} reserved for the first hour)"
        elif self.is_final or self.status == "stopping":
            price += f" (cost {format_cents(self.cost_cents())} in all"
            refunded = self.stop_info.get("refundedCents")
            if isinstance(refunded, int) and refunded:
                price += f", {format_cents(refunded)} refunded"
            price += ")"
        else:
            price += f" (cost so far {format_cents(self.cost_cents())})"
        rows.append(("price", price))
        if self.template_id:
            rows.append(("template", self.template_id))
        if self.status == "provisioning" and self.provisioning_text():
            rows.append(("provisioning", self.provisioning_text()))
        if self.kernel:
            rows.append(
                ("kernel", f"{self.kernel} — “{self.kernel_display_name}” in {KERNEL_HINT}")
            )
        idle = self.idle_sentence()
        if idle:
            rows.append(("idle stop", idle))
        if self.error:
            rows.append(("error", self.error))
        # The phase of a running rental only repeats its ssh command.
        if self.phase and not (self.is_running and self.ssh_command):
            rows.append(("phase", self.phase))
        return rows

    def title(self) -> str:
        label = f" · {self.name}" if self.name else ""
        return f"{self.id} · {self.gpus}{label}"

    def __repr__(self) -> str:
        parts = [f"{self.id!r}", f"status={self.status!r}"]
        if self.host:
            parts.append(f"host={self.host!r}, port={self.port!r}")
        if self.ssh_command:
            parts.append(f"ssh={self.ssh_command!r}")
        parts.append(f"price={format_cents(self.price_per_hour_cents) + '/h'!r}")
        if self.kernel:
            parts.append(f"kernel={self.kernel!r}")
        return f"RentalInfo({', '.join(parts)})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.to_text())

    def to_text(self) -> str:
        width = max(len(label) for label, _ in self.summary_rows())
        lines = [self.title()]
        lines += [f"  {label.ljust(width)}  {value}" for label, value in self.summary_rows()]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{_cell(label)}</th>"
            f"<td style='text-align:left'>{_ssh_code(label, value)}</td></tr>"
            for label, value in self.summary_rows()
        )
        return f"<div><b>{_cell(self.title())}</b><table>{rows}</table></div>"


def _ssh_code(label: str, value: str) -> str:
    if label in ("ssh", "kernel") and not value.startswith("no SSH"):
        head, sep, rest = value.partition(" — ")
        return f"<code>{_cell(head)}</code>{_cell(sep + rest)}"
    return _cell(value)


class RentalsTable:
    """Every rental the service tracks, newest first."""

    HEADERS = ("id", "name", "GPUs", "status", "price/h", "cost so far", "ssh / phase")
    #: Shown before the last column when some rental has an idle stop (or was stopped idle).
    IDLE_HEADER = "idle"

    def __init__(
        self,
        rentals: Sequence[RentalInfo],
        *,
        title: str | None = None,
        totals: bool = True,
        wallet: dict[str, Any] | None = None,
    ) -> None:
        self.rentals = list(rentals)
        self.title = title
        #: Show the burn and total cost under the table (not after a stop: it is ending).
        self.totals = totals
        #: The wallet's JSON (``availableCents``, ``hoursLeft``), for how long the balance lasts.
        self.wallet = wallet

    def __len__(self) -> int:
        return len(self.rentals)

    def __iter__(self) -> Any:
        return iter(self.rentals)

    def __getitem__(self, index: int) -> RentalInfo:
        return self.rentals[index]

    def _idle_column(self) -> bool:
        # Most rentals have no idle stop: no column of empty cells for them.
        return any(r.idle_stop is not None or r.stopped_idle for r in self.rentals)

    def headers(self) -> tuple[str, ...]:
        if self._idle_column():
            return (*self.HEADERS[:-1], self.IDLE_HEADER, self.HEADERS[-1])
        return self.HEADERS

    def rows(self) -> list[tuple[str, ...]]:
        idle = self._idle_column()
        rows = []
        for r in self.rentals:
            row = [
                r.id,
                r.name or "",
                r.gpus,
                r.status + (" (gone)" if r.gone else "") + ("" if r.created_here else " *"),
                format_cents(r.price_per_hour_cents),
                format_cents(r.cost_cents()),
            ]
            if idle:
                row.append(r.idle_summary())
            row.append(r.ssh_command if r.is_running and r.ssh_command else r.phase)
            rows.append(tuple(row))
        return rows

    def _empty(self) -> str:
        return "No rentals. Start one with %gpu_rent FAMILY (see %gpu_families)."

    @property
    def burn_cents_per_hour(self) -> int:
        """Summed price per hour of the rentals that may be billed (not failed, stopped, gone)."""
        return sum(r.price_per_hour_cents for r in self.rentals if r.is_active)

    @property
    def cost_cents(self) -> int:
        """Cost so far of every rental listed."""
        return sum(r.cost_cents() for r in self.rentals)

    def summary(self) -> str:
        """The line under the table: what the list burns per hour and has cost so far."""
        active = sum(1 for r in self.rentals if r.is_active)
        cost = format_cents(self.cost_cents)
        if not active:
            return f"Nothing is running, so nothing is being spent; cost so far {cost} in all."
        lasts = ""
        wallet = self.wallet or {}
        hours, total = wallet.get("hoursLeft"), wallet.get("totalCents")
        if isinstance(hours, (int, float)) and isinstance(total, int):
            lasts = f"; the wallet's {format_cents(total)} lasts about {_hours(hours)} at that rate"
        return (
            f"Burning {format_cents(self.burn_cents_per_hour)}/h across {active} active "
            f"rental(s); cost so far {cost} in all{lasts}. %gpu_stop ID stops one."
        )

    def _footer(self) -> list[str]:
        """The lines under the table: the totals, and what the ``*`` of a status means."""
        lines = []
        if self.totals and self.rentals:
            lines.append(self.summary())
        if self.totals:
            # The wallet's warnings: every pod stops at $0, money owed.
            lines += [f"⚠ {w}" for w in warnings_of(self.wallet)]
        if any(not r.created_here for r in self.rentals):
            lines.append(f"* made elsewhere: {ELSEWHERE}.")
        return lines

    def __repr__(self) -> str:
        return f"RentalsTable({len(self.rentals)} rentals)"

    def to_text(self) -> str:
        body = _text_table(self.headers(), self.rows()) if self.rentals else self._empty()
        for line in self._footer():
            body = f"{body}\n{line}"
        return f"{self.title}\n{body}" if self.title else body

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.to_text())

    def _repr_html_(self) -> str:
        body = (
            _table(self.headers(), self.rows())
            if self.rentals
            else f"<p>{_cell(self._empty())}</p>"
        )
        for line in self._footer():
            body += f"<p>{_cell(line)}</p>"
        return f"<div><b>{_cell(self.title)}</b>{body}</div>" if self.title else body


def warnings_of(wallet: dict[str, Any] | None) -> list[str]:
    """The messages of a wallet reply's warnings."""
    found = (wallet or {}).get("warnings")
    if not isinstance(found, list):
        return []
    return [str(w.get("message")) for w in found if isinstance(w, dict) and w.get("message")]


class _Table:
    """A list shown as an HTML table in notebooks and as aligned text elsewhere."""

    HEADERS: tuple[str, ...] = ()

    def rows(self) -> list[tuple[str, ...]]:
        raise NotImplementedError

    def footer(self) -> list[str]:
        return []

    def describe(self) -> str:
        """The repr (a table's pretty text is its ``to_text``)."""
        return f"{type(self).__name__}({len(self.rows())} rows)"

    def __repr__(self) -> str:
        return self.describe()

    def to_text(self) -> str:
        return "\n".join([_text_table(self.HEADERS, self.rows()), *self.footer()])

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.to_text())

    def _repr_html_(self) -> str:
        return _table(self.HEADERS, self.rows()) + "".join(
            f"<p>{_cell(line)}</p>" for line in self.footer()
        )


class FamiliesTable(_Table):
    """The GPU families gpuoutlet's catalog offers now, cheapest per GPU first."""

    HEADERS = ("family", "model", "memory", "from /GPU/h", "GPU counts", "regions", "providers")

    def __init__(self, families: Sequence[dict[str, Any]]) -> None:
        self.families = list(families)

    @property
    def ids(self) -> list[str]:
        return [str(f.get("id")) for f in self.families]

    def rows(self) -> list[tuple[str, ...]]:
        rows: list[tuple[str, ...]] = []
        for f in self.families:
            memory = f.get("vramGb")
            offers = f.get("offers") or []
            counts = ", ".join(
                f"{o.get('gpuCount')}× {format_cents(int(o.get('pricePerHourCents') or 0))}"
                for o in offers
            )
            rows.append(
                (
                    str(f.get("id")),
                    ", ".join(str(m) for m in f.get("models") or []),
                    f"{memory:g} GB" if isinstance(memory, (int, float)) else "",
                    format_cents(int(f.get("minPricePerGpuHourCents") or 0)),
                    counts,
                    ", ".join(str(r) for r in f.get("regionCodes") or f.get("regions") or []),
                    ", ".join(str(p) for p in f.get("providers") or []),
                )
            )
        return rows

    def footer(self) -> list[str]:
        if not self.families:
            return ["gpuoutlet's catalog lists no GPU right now; try again in a minute."]
        return [
            "Prices are per hour for the whole rental at the cheapest listing (`GPU counts`); "
            "%gpu_rent FAMILY --gpus N quotes it before renting."
        ]

    def describe(self) -> str:
        return f"FamiliesTable({', '.join(self.ids)})"


class TemplatesTable(_Table):
    """gpuoutlet's machine templates: what each holds, and its ports."""

    HEADERS = ("template", "holds", "ports")

    def __init__(self, templates: Sequence[dict[str, Any]]) -> None:
        self.templates = list(templates)

    def rows(self) -> list[tuple[str, ...]]:
        rows: list[tuple[str, ...]] = []
        for t in self.templates:
            ports = ", ".join(str(p) for p in t.get("ports") or []) or (t.get("portsNote") or "—")
            name = str(t.get("id")) + (" (default)" if t.get("default") else "")
            rows.append((name, str(t.get("contents") or ""), str(ports)))
        return rows

    def footer(self) -> list[str]:
        return [
            "%gpu_rent FAMILY --template ID picks one; reach a port with ssh -L PORT:localhost:PORT."
        ]

    def describe(self) -> str:
        return f"TemplatesTable({', '.join(str(t.get('id')) for t in self.templates)})"


class KeysTable(_Table):
    """The account's SSH keys, the one this machine's SSH entries use marked."""

    HEADERS = ("", "name", "fingerprint", "algorithm", "added")

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = dict(data)
        self.keys = [k for k in data.get("keys") or [] if isinstance(k, dict)]
        local = data.get("local")
        self.local: dict[str, Any] | None = local if isinstance(local, dict) else None

    @property
    def local_on_account(self) -> bool:
        return bool(self.local and self.local.get("onAccount"))

    def rows(self) -> list[tuple[str, ...]]:
        return [
            (
                "→" if k.get("local") else "",
                str(k.get("name") or ""),
                str(k.get("fingerprint") or ""),
                str(k.get("algorithm") or ""),
                str(k.get("createdAt") or "")[:10],
            )
            for k in self.keys
        ]

    def footer(self) -> list[str]:
        lines = []
        if not self.keys:
            lines.append("Your gpuoutlet account has no SSH key.")
        local = self.local
        if local is None:
            problem = self.data.get("localProblem")
            if problem:
                lines.append(str(problem))
        elif local.get("onAccount"):
            lines.append(f"→ this machine's key ({local.get('identityFile')}): new pods let it in.")
        else:
            lines.append(
                f"This machine's key ({local.get('publicKeyFile')}, {local.get('fingerprint')}) "
                "is NOT on your account, so a new pod would not let you in: run `%gpu_keys add` "
                "to add it (pods already running keep the keys they started with)."
            )
        return lines

    def describe(self) -> str:
        return f"KeysTable({len(self.keys)} keys, local on account: {self.local_on_account})"


class WalletInfo:
    """The wallet: available, reserved, open invoices, the burn, and the warnings."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = dict(data)

    def _cents(self, key: str) -> int:
        value = self.data.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    @property
    def available_cents(self) -> int:
        return self._cents("availableCents")

    @property
    def reserved_cents(self) -> int:
        return self._cents("reservedCents")

    @property
    def total_cents(self) -> int:
        return self._cents("totalCents")

    @property
    def open_invoices_cents(self) -> int:
        return self._cents("openInvoicesCents")

    @property
    def burn_cents_per_hour(self) -> int | None:
        """What the active rentals cost per hour; None from a service that does not say."""
        value = self.data.get("burnCentsPerHour")
        return value if isinstance(value, int) else None

    @property
    def hours_left(self) -> float | None:
        """How long the wallet lasts at the burn; None when nothing burns."""
        value = self.data.get("hoursLeft")
        return float(value) if isinstance(value, (int, float)) else None

    @property
    def max_hourly_spend_cents(self) -> int | None:
        value = self.data.get("maxHourlySpendCents")
        return value if isinstance(value, int) and value > 0 else None

    @property
    def warnings(self) -> list[str]:
        return warnings_of(self.data)

    def lines(self) -> list[str]:
        lines = [
            f"Wallet: {format_cents(self.available_cents)} available, "
            f"{format_cents(self.reserved_cents)} reserved (the first hour of each running "
            f"rental), {format_cents(self.total_cents)} in all"
        ]
        if self.open_invoices_cents:
            lines.append(f"Owed on open invoices: {format_cents(self.open_invoices_cents)}")
        burn = self.burn_cents_per_hour
        if burn is not None:
            if burn <= 0 or self.hours_left is None:
                lines.append("Burn: nothing is running, so nothing is being spent.")
            else:
                lines.append(
                    f"Burn: {format_cents(burn)}/h for the active rentals; the wallet lasts "
                    f"about {_hours(self.hours_left)} at that rate (%gpu_rentals lists them, "
                    "%gpu_stop ID stops one)."
                )
        cap = self.max_hourly_spend_cents
        if cap is not None:
            lines.append(f"Spending cap: {format_cents(cap)}/h.")
        lines += [f"⚠ {w}" for w in self.warnings]
        return lines

    def to_text(self) -> str:
        return "\n".join(self.lines())

    def __repr__(self) -> str:
        return (
            f"WalletInfo(available={self.available_cents}, reserved={self.reserved_cents}, "
            f"total={self.total_cents})"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.to_text())

    def _repr_html_(self) -> str:
        return "".join(
            f"<p style='color:var(--jp-warn-color0, #b00020)'>{_cell(line)}</p>"
            if line.startswith("⚠")
            else f"<p>{_cell(line)}</p>"
            for line in self.lines()
        )


class StatusInfo:
    """Where the magics send their requests, whether that place can rent, and who is signed in."""

    def __init__(self, where: str, status: dict[str, Any], rentals: Sequence[RentalInfo]) -> None:
        self.where = where
        self.status = dict(status)
        self.rentals = list(rentals)

    @property
    def session(self) -> dict[str, Any]:
        value = self.status.get("session")
        return dict(value) if isinstance(value, dict) else {}

    def rows(self) -> list[tuple[str, str]]:
        s = self.status
        active = [r for r in self.rentals if r.is_active]
        rows = [
            ("rentals handled by", self.where),
            ("rentals API", str(s.get("apiUrl") or "unknown")),
            ("configured", "yes" if s.get("configured") else "no"),
        ]
        session = self.session
        if session:
            rows.append(("signed in as", str(session.get("email"))))
            ends = parse_time(session.get("expiresAt"))
            when = ends.strftime("%Y-%m-%d %H:%M UTC") if ends else str(session.get("expiresAt"))
            rows.append(("session ends", f"{when} (each request extends it by 30 days)"))
            if session.get("warning"):
                rows.append(("⚠ session", str(session["warning"])))
        elif s.get("sessionProblem"):
            rows.append(("session", str(s["sessionProblem"])))
        if s.get("sidSource"):
            rows.append(("session from", str(s["sidSource"])))
        if s.get("problem"):
            rows.append(("problem", str(s["problem"])))
        rows.append(("rentals", f"{len(active)} active, {len(self.rentals)} tracked"))
        rows.append(("version", str(s.get("version") or "")))
        return rows

    def __repr__(self) -> str:
        return f"StatusInfo(configured={bool(self.status.get('configured'))})"

    def to_text(self) -> str:
        width = max(len(label) for label, _ in self.rows())
        return "\n".join(f"{label.ljust(width)}  {value}" for label, value in self.rows())

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.to_text())

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{_cell(a)}</th><td style='text-align:left'>{_cell(b)}</td></tr>"
            for a, b in self.rows()
        )
        return f"<table>{rows}</table>"
