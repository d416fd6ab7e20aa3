"""The lists the magics return: rentals, GPU families, templates, SSH keys."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...api.cents import format_cents
from ...api.errors import clause
from .freshness import not_fresh_lines, status_as_of
from .rental import ELSEWHERE, RentalInfo
from .text import cell, hours_text, html_table, no_math, text_table


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
        problem: dict[str, Any] | None = None,
        wallet_problem: str | None = None,
    ) -> None:
        self.rentals = list(rentals)
        self.title = title
        #: Show the burn and total cost under the table (not after a stop: it is ending).
        self.totals = totals
        #: The wallet's JSON (``availableCents``, ``hoursLeft``), for how long the balance lasts.
        self.wallet = wallet
        #: The list's ``apiProblem``: the rentals API does not answer, what is listed is old.
        self.problem = problem
        #: Why the wallet could not be read (None: it was, or it was not asked for).
        self.wallet_problem = wallet_problem

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
                r.status
                + (" (gone)" if r.gone else "")
                + ("" if r.created_here else " *")
                + status_as_of(r, self.problem),
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
            lasts = (
                f"; the wallet's {format_cents(total)} lasts about {hours_text(hours)} at that rate"
            )
        return (
            f"Burning {format_cents(self.burn_cents_per_hour)}/h across {active} active "
            f"rental(s); cost so far {cost} in all{lasts}. %gpu_stop ID stops one."
        )

    def _footer(self) -> list[str]:
        """The lines under the table: the totals, and what the ``*`` of a status means."""
        lines = not_fresh_lines(self.problem, self.rentals)
        if self.totals and self.rentals:
            lines.append(self.summary())
        if self.totals and self.wallet_problem:
            same = self.problem is not None and self.problem.get("message") == self.wallet_problem
            reason = " either, for the same reason" if same else f": {clause(self.wallet_problem)}"
            lines.append(f"⚠ The wallet could not be read{reason}.")
        if self.totals:
            # The wallet's warnings: every pod stops at $0, money owed.
            lines += [f"⚠ {w}" for w in warnings_of(self.wallet)]
        if any(not r.created_here for r in self.rentals):
            lines.append(f"* made elsewhere: {ELSEWHERE}.")
        return lines

    def __repr__(self) -> str:
        return f"RentalsTable({len(self.rentals)} rentals)"

    def to_text(self) -> str:
        body = text_table(self.headers(), self.rows()) if self.rentals else self._empty()
        for line in self._footer():
            body = f"{body}\n{line}"
        return f"{self.title}\n{body}" if self.title else body

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.to_text())

    def _repr_html_(self) -> str:
        body = (
            html_table(self.headers(), self.rows())
            if self.rentals
            else f"<p>{cell(self._empty())}</p>"
        )
        for line in self._footer():
            warn = " style='color:var(--jp-warn-color0, #b00020)'" if line.startswith("⚠") else ""
            body += f"<p{warn}>{cell(line)}</p>"
        return no_math(f"<b>{cell(self.title)}</b>{body}" if self.title else body)


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
        return "\n".join([text_table(self.HEADERS, self.rows()), *self.footer()])

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.to_text())

    def _repr_html_(self) -> str:
        return no_math(
            html_table(self.HEADERS, self.rows())
            + "".join(f"<p>{cell(line)}</p>" for line in self.footer())
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
