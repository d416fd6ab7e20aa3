"""One rental as the notebook shows it: its fields in the user's terms, its idle stop, its repr."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ...api.cents import format_cents
from .idle import IdleStop
from .text import cell, duration, minutes_text, no_math, number, parse_time

if TYPE_CHECKING:
    from ..backend import Backend

FINAL_STATUSES = frozenset({"failed", "stopped"})
KERNEL_HINT = "Kernel › Change Kernel…"

#: What "made elsewhere" means, where a rental is marked so.
ELSEWHERE = (
    "not from this Jupyter server (another machine or the gpuoutlet website); found in the "
    "rentals API's list, and billed all the same"
)


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
    def checked_at(self) -> datetime | None:
        """When the rentals API last confirmed this state (see views/freshness.py)."""
        return parse_time(self.data.get("checkedAt"))

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
        return number(value)

    def provisioning_seconds(self, now: float | None = None) -> float | None:
        """Seconds spent provisioning, counted on from the reply; None once it is not."""
        value = number((self.data.get("provisioning") or {}).get("elapsedSeconds"))
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
        expected = number(quote.get("estimatedProvisionSeconds"))
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

    def kept_line(self, idle_stop_minutes: float | None = None) -> str:
        """What "keep it" did (``idle_stop_minutes``: what the idle stop was changed to)."""
        if idle_stop_minutes == 0:
            return f"{self.id} is no longer stopped for being idle: it runs until it is stopped."
        idle = self.idle_stop
        if idle is None:
            return (
                f"{self.id} has no idle stop: nothing stops it for being idle, so there is no "
                f"timer to restart. `%gpu_keep {self.id} --idle-stop MINUTES` gives it one (it "
                "needs the Jupyter server); %gpu_stop stops it."
            )
        return f"Kept {self.id}: the idle timer starts again. Idle stop: {self.idle_sentence()}."

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
            f"<tr><th style='text-align:left'>{cell(label)}</th>"
            f"<td style='text-align:left'>{_ssh_code(label, value)}</td></tr>"
            for label, value in self.summary_rows()
        )
        return no_math(f"<b>{cell(self.title())}</b><table>{rows}</table>")


def _ssh_code(label: str, value: str) -> str:
    if label in ("ssh", "kernel") and not value.startswith("no SSH"):
        head, sep, rest = value.partition(" — ")
        return f"<code>{cell(head)}</code>{cell(sep + rest)}"
    return cell(value)
