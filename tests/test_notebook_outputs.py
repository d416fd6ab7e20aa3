"""What a first-time user reads: HTML outputs MathJax leaves alone, the panel's form and rows,
the progress widget of a stop, messages with one full stop (issue 15, without a frontend)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from helpers.notebook import (
    FAMILIES,
    ID,
    RUNNING,
    WALLET,
    FakeBackend,
    ScriptedSession,
    rental_json,
)

from gpuoutlet_jupyter import api
from gpuoutlet_jupyter.api.errors import RequestValidationError, clause
from gpuoutlet_jupyter.notebook.errors import explain_problems
from gpuoutlet_jupyter.notebook.panel import Panel, next_name
from gpuoutlet_jupyter.notebook.views import (
    FamiliesTable,
    KeysTable,
    RentalInfo,
    RentalsTable,
    StatusInfo,
    TemplatesTable,
    WalletInfo,
)
from gpuoutlet_jupyter.notebook.widgets import ProgressWidget
from gpuoutlet_jupyter.rest.layer import templates_reply

NO_MATH = '<div class="mathjax_ignore tex2jax_ignore">'


def _outputs() -> dict[str, Any]:
    wallet = {**WALLET, "burnCentsPerHour": 65, "hoursLeft": 19.9, "activeRentals": 1}
    stopped = rental_json(id="rent_01STOPPEDSTOPPEDSTOPPEDST", status="stopped", costCents=12)
    return {
        "wallet": WalletInfo(wallet),
        "status": StatusInfo("a server", {"configured": True, "apiUrl": "https://x"}, []),
        "rental": RentalInfo(RUNNING),
        "rentals": RentalsTable([RentalInfo(RUNNING), RentalInfo(stopped)], wallet=wallet),
        "families": FamiliesTable(FAMILIES),
        "templates": TemplatesTable(templates_reply()["templates"]),
        "keys": KeysTable({"keys": [], "local": None, "localProblem": "no key"}),
    }


@pytest.mark.parametrize("name", list(_outputs()))
def test_every_html_output_is_kept_from_mathjax(name: str) -> None:
    """JupyterLab typesets $…$ in HTML: "$99.99 available, $0.00 reserved" would turn the text
    between the amounts into italic math, unless an outer element says not to."""
    shown = _outputs()[name]._repr_html_()
    assert shown.startswith(NO_MATH) and shown.endswith("</div>")
    # One element holds everything: nothing of the output is outside it.
    assert shown.count(NO_MATH) == 1


def test_the_widgets_are_kept_from_mathjax() -> None:
    classes = {"mathjax_ignore", "tex2jax_ignore"}
    assert classes <= set(ProgressWidget()._dom_classes)
    panel = Panel(ScriptedSession(FakeBackend()), live=False)
    try:
        assert classes <= set(panel._dom_classes)
    finally:
        panel.close()


def test_the_panel_starts_on_a_family_with_rentals_first() -> None:
    backend = FakeBackend()
    backend.listed = [RUNNING]
    panel = Panel(ScriptedSession(backend), live=False)
    try:
        # Never an empty Family: the cheapest GPU hour, with its regions to choose from.
        assert panel.family.value == "rtx-4090"
        assert panel.region.options == ("US",)
        # What runs (and costs) first, the form to rent more after it.
        children = list(panel.children)
        assert children.index(panel.rentals) < len(children) - 1
        assert panel.launch in children[-1].children
    finally:
        panel.close()


def test_the_panel_suggests_the_next_name_and_hides_stop_once_stopped() -> None:
    backend = FakeBackend()
    backend.listed = [RUNNING]
    panel = Panel(ScriptedSession(backend), live=False)
    try:
        panel.name.value = "alice/exp-42"
        assert panel.launch_rental() is not None
        assert backend.created[-1]["name"] == "alice/exp-42"
        assert panel.name.value == "alice/exp-43"

        row = panel._rows[ID]
        assert row.stop.layout.display is None and not row.stop.disabled
        stopping = rental_json(**{**RUNNING, "status": "stopping", "version": 9})
        backend.listed = [stopping]
        panel.refresh()
        assert row.stop.disabled and row.stop.description == "Stopping…"
        backend.listed = [rental_json(**{**RUNNING, "status": "stopped", "version": 10})]
        panel.refresh()
        # Nothing left to stop: no Stop button at all.
        assert row.stop.layout.display == "none"
        assert "0 active" in repr(panel)
    finally:
        panel.close()


@pytest.mark.parametrize(
    ("name", "suggested"),
    [
        ("alice/exp-42", "alice/exp-43"),
        ("exp-009", "exp-010"),
        ("run99", "run100"),
        ("alice/exp", "alice/exp-2"),
        ("", ""),
    ],
)
def test_next_name(name: str, suggested: str) -> None:
    assert next_name(name) == suggested


def test_a_stop_shows_no_provisioning_bar() -> None:
    widget = ProgressWidget()
    stopping = RentalInfo(rental_json(**{**RUNNING, "status": "stopping"}))
    widget._render(stopping)
    assert widget.bar_row.layout.display == "none"
    assert "polls" not in widget.bar_label.value
    # A rental coming up shows it, and keeps it (full) once it runs.
    widget = ProgressWidget()
    widget._render(RentalInfo(rental_json()))
    assert widget.bar_row.layout.display is None
    widget._render(RentalInfo(RUNNING))
    assert widget.bar_row.layout.display is None and widget.bar.value == widget.bar.max


def test_messages_have_one_full_stop() -> None:
    """A problem that ends with a full stop, inside a message that adds ". Nothing ..."."""
    problems = [("region", "Send an upper-case country code such as DE or US.")]
    assert ".." not in str(RequestValidationError(problems))
    assert ".." not in explain_problems(problems, {"region": "--region"})
    assert "upper-case country code such as DE or US. Nothing" in str(
        RequestValidationError(problems)
    )
    # An ellipsis stays one.
    assert clause("they look like rent_01H...") == "they look like rent_01H..."
    assert clause("done. ") == "done"


def test_an_unknown_rental_id_points_at_gpu_rentals() -> None:
    """The API's words ("GET /v1/rentals lists yours") name its route, not the user's way."""
    import httpx

    from gpuoutlet_jupyter.api.responses import api_error

    response = httpx.Response(
        404,
        json={
            "error": "rental_not_found",
            "message": "No rental rent_1 on your account. GET /v1/rentals lists yours.",
        },
        request=httpx.Request("GET", "https://gpuoutlet.ai/v1/rentals/rent_1"),
    )
    error = api_error(response, "https://gpuoutlet.ai", resource="rent_1")
    assert isinstance(error, api.RentalNotFoundError)
    assert "GET /v1/rentals" not in str(error) and "%gpu_rentals" in str(error)
    assert re.search(r"no rental rent_1 on this account", str(error))


def test_an_old_list_says_how_old_each_row_is_and_why() -> None:
    from datetime import datetime, timedelta, timezone

    def iso(minutes_ago: float) -> str:
        when = datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)
        return when.isoformat().replace("+00:00", "Z")

    problem = {
        "message": "Could not reach the rentals API at https://x (ConnectError).",
        "since": iso(4),
        "lastOkAt": iso(5),
    }
    running = RentalInfo({**RUNNING, "checkedAt": iso(5)})
    stopped = RentalInfo(
        rental_json(id="rent_01STOPPEDSTOPPEDSTOPPEDST", status="stopped", checkedAt=iso(9))
    )
    table = RentalsTable(
        [running, stopped],
        problem=problem,
        wallet_problem="Could not reach the rentals API at https://x (ConnectError).",
    )
    text = table.to_text()
    assert "running (as of 5 min ago)" in text
    # An ended row is over whatever the API says now: no age on it.
    assert "stopped (as of" not in text
    assert "⚠ Not up to date: the rentals API has not answered since" in text
    assert "(4 min ago): Could not reach the rentals API at https://x (ConnectError)." in text
    assert "What is listed is what it said last (the oldest 5 min ago)" in text
    assert "⚠ The wallet could not be read either, for the same reason." in text
    assert ".." not in text
    # Fresh: none of it.
    fresh = RentalsTable([RentalInfo({**RUNNING, "checkedAt": iso(0)})]).to_text()
    assert "⚠" not in fresh and "as of" not in fresh
    # A failed poll alone (the list is fine otherwise) is said too.
    failing = RentalInfo({**RUNNING, "upstreamError": "API 503, retrying", "checkedAt": iso(2)})
    text = RentalsTable([failing]).to_text()
    assert "running (as of 2 min ago)" in text and "the last poll of" in text
