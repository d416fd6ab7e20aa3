"""The account as the magics show it: the wallet (with its warnings) and the status."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...api.cents import format_cents
from ...api.errors import clause
from .freshness import problem_of
from .rental import RentalInfo
from .tables import warnings_of
from .text import cell, hours_text, no_math, parse_time, since_text


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
                    f"about {hours_text(self.hours_left)} at that rate (%gpu_rentals lists them, "
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
        return no_math(
            "".join(
                f"<p style='color:var(--jp-warn-color0, #b00020)'>{cell(line)}</p>"
                if line.startswith("⚠")
                else f"<p>{cell(line)}</p>"
                for line in self.lines()
            )
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
        session = self.session
        api = problem_of(s)
        if not s.get("configured"):
            configured = "no"
        elif not session:
            # A sid is set but does not work (signed out, expired) or cannot be checked (the
            # API does not answer): never "yes" until gpuoutlet has said who it is.
            configured = "a session is set, but it does not work now (see below)"
        elif api is not None:
            configured = "yes, but the rentals API is not answering now (see below)"
        else:
            configured = "yes"
        rows = [
            ("rentals handled by", self.where),
            ("rentals API", str(s.get("apiUrl") or "unknown")),
            ("configured", configured),
        ]
        if api is not None:
            rows.append(
                (
                    "⚠ rentals API",
                    f"not answering since {since_text(api.get('since')) or 'the start'}: "
                    f"{clause(str(api['message']))}. %gpu_rentals shows what it said last, "
                    "and how long ago.",
                )
            )
        if session:
            rows.append(("signed in as", str(session.get("email"))))
            ends = parse_time(session.get("expiresAt"))
            when = ends.strftime("%Y-%m-%d %H:%M UTC") if ends else str(session.get("expiresAt"))
            rows.append(("session ends", f"{when} (each request extends it by 30 days)"))
            if session.get("warning"):
                rows.append(("⚠ session", str(session["warning"])))
        elif s.get("sessionState") in ("signed_out", "expired"):
            email = s.get("lastEmail") or "you@example.com"
            ended = " (the session has ended)" if s.get("sessionState") == "expired" else ""
            rows.append(
                (
                    "signed in",
                    f"no{ended}: %gpu_login {email} signs in (gpuoutlet emails a 6-digit code)",
                )
            )
        elif s.get("sessionProblem") and s["sessionProblem"] != (api or {}).get("message"):
            # Said once: when the API does not answer, the row above says it.
            rows.append(("⚠ session", str(s["sessionProblem"])))
        if s.get("sidSource"):
            rows.append(("session from", str(s["sidSource"])))
        if s.get("problem") and s.get("sessionState") != "signed_out":
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
            f"<tr><th style='text-align:left'>{cell(a)}</th><td style='text-align:left'>{cell(b)}</td></tr>"
            for a, b in self.rows()
        )
        return no_math(f"<table>{rows}</table>")
