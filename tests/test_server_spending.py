"""Spend safety through the Jupyter server: the cap as a 409, burn and hours left in the wallet,
the cap's message in %gpu_rent, and the warning when the server stops with rentals running."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from helpers.notebook import ScriptedSession
from helpers.server import Rest, gpuoutlet_app, sandbox_server_config, start_extension

from gpuoutlet_jupyter.api import SpendingCapError
from gpuoutlet_jupyter.notebook.discovery import ServerLocation
from gpuoutlet_jupyter.notebook.magics import GpuMagicError, GpuMagics
from gpuoutlet_jupyter.notebook.rest import ServerBackend, error_from_reply

#: Room for one rtx-4090 (65¢/h in the sandbox), not two.
CAP = 100


# Nothing from the developer's own environment or credentials file leaks into these tests.
pytestmark = pytest.mark.usefixtures("no_gpuoutlet_env")


@pytest.fixture
def jp_server_config(
    tmp_path: Path, sandbox: Any, account: Any, ssh_keypair: Any
) -> dict[str, Any]:
    return sandbox_server_config(
        tmp_path, sandbox, account, ssh_keypair, max_hourly_spend_cents=CAP
    )


@pytest.fixture
def server(jp_serverapp: Any, http_server: Any, caplog: pytest.LogCaptureFixture) -> Any:
    caplog.set_level(logging.DEBUG)
    return jp_serverapp


async def _json(rest: Rest, method: str, path: str, **kwargs: Any) -> Any:
    response = await rest.api(method, path, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


async def test_cap_burn_and_shutdown_warning_through_rest(
    server: Any, sandbox: Any, account: Any, caplog: pytest.LogCaptureFixture
) -> None:
    rest = await start_extension(server)
    quoted = await _json(rest, "POST", "rentals/preview", json={"familyId": "rtx-4090"})
    price = quoted["quote"]["pricePerHourCents"]
    assert price <= CAP < 2 * price and quoted["maxHourlySpendCents"] == CAP

    wallet = await _json(rest, "GET", "wallet")
    assert (wallet["burnCentsPerHour"], wallet["hoursLeft"]) == (0, None)
    assert wallet["maxHourlySpendCents"] == CAP

    created = await _json(rest, "POST", "rentals", json={"familyId": "rtx-4090", "gpuCount": 1})
    assert created["costCents"] >= 0
    wallet = await _json(rest, "GET", "wallet")
    assert wallet["burnCentsPerHour"] == created["pricePerHourCents"] == price
    assert wallet["hoursLeft"] == round(wallet["totalCents"] / price, 2)
    # The cap's verdict is in the preview before a create is tried.
    quoted = await _json(rest, "POST", "rentals/preview", json={"familyId": "rtx-4090"})
    assert [p["code"] for p in quoted["problems"]] == ["spending_cap"]
    listed = (await _json(rest, "GET", "rentals"))["rentals"]
    assert [r["id"] for r in listed] == [created["id"]] and "costCents" in listed[0]

    before = sandbox.ledger(account.account_id)
    response = await rest.api("POST", "rentals", json={"familyId": "rtx-4090", "gpuCount": 1})
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "spending_cap"
    assert (error["capCentsPerHour"], error["burnCentsPerHour"], error["priceCentsPerHour"]) == (
        CAP,
        price,
        price,
    )
    assert "max_hourly_spend_cents" in error["message"]
    assert sandbox.ledger(account.account_id) == before  # refused before the API: no charge

    # The kernel side turns the reply back into the same error, and %gpu_rent shows it as
    # one paragraph without a traceback.
    mapped = error_from_reply(409, error, server_url=rest.url)
    assert isinstance(mapped, SpendingCapError)
    assert (str(mapped), mapped.cap_cents, mapped.price_cents_per_hour) == (
        error["message"],
        CAP,
        price,
    )
    backend = ServerBackend(ServerLocation(url=rest.url, token=rest.kernel_token, source="test"))
    magics = GpuMagics(session=ScriptedSession(backend))
    try:
        with pytest.raises(GpuMagicError) as shown:
            # The blocking client in a thread: the server answers on this test's loop.
            await asyncio.to_thread(magics.gpu_rent, "rtx-4090 --no-wait")
        assert shown.value._render_traceback_() == [f"%gpu_rent: {error['message']}"]
        assert "\n" not in shown.value.message
    finally:
        magics.session.close()

    # The server stops with the rental still provisioning or running: one warning names it.
    caplog.clear()
    await gpuoutlet_app(server).manager.stop()
    warnings = [
        r
        for r in caplog.records
        if r.levelno == logging.WARNING and "keep running" in r.getMessage()
    ]
    assert len(warnings) == 1, caplog.text
    text = warnings[0].getMessage()
    assert created["id"] in text and "%gpu_stop ID" in text and "sidebar" in text
    assert account.sid not in caplog.text
    assert not any(account.sid in body for body in rest.bodies)


async def test_gpu_rentals_marks_rentals_made_elsewhere(
    server: Any, sandbox: Any, account: Any
) -> None:
    rest = await start_extension(server)
    mine = await _json(rest, "POST", "rentals", json={"familyId": "rtx-4090", "gpuCount": 1})
    with sandbox.client(account.sid) as http:
        other = http.post(
            "/v1/rentals", json={"familyId": "rtx-4090", "gpuCount": 1, "name": "laptop"}
        ).json()
    await (await gpuoutlet_app(server).manager.service()).reconcile()

    backend = ServerBackend(ServerLocation(url=rest.url, token=rest.kernel_token, source="test"))
    magics = GpuMagics(session=ScriptedSession(backend))
    try:
        # The blocking client in a thread: the server answers on this test's loop.
        table = await asyncio.to_thread(magics.gpu_rentals, "")
        text = table.to_text()
        lines = {r.id: line for r in table for line in text.splitlines() if r.id in line}
        assert " *" in lines[other["id"]] and " *" not in lines[mine["id"]], text
        assert "* made elsewhere: not from this Jupyter server" in text
        assert re.search(r"the wallet's \$\d+\.\d\d lasts about \d+\.\d (hours|days)", text), text
        assert "made elsewhere" in table._repr_html_()
        status = await asyncio.to_thread(magics.gpu_status, other["id"])
        assert re.search(r"\n  made\s+not from this Jupyter server", status.to_text())
    finally:
        magics.session.close()
        for rental_id in (mine["id"], other["id"]):
            await _json(rest, "POST", f"rentals/{rental_id}/stop")
