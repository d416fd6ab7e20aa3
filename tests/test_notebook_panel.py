"""The panel's logic without a frontend: the form, Launch and Stop, and its live refresh task
(on the test's event loop, as it runs on the kernel's)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from helpers.notebook import ID, RUNNING, FakeBackend, ScriptedSession, rental_json

from gpuoutlet_jupyter import api
from gpuoutlet_jupyter.notebook.discovery import ServerLocation
from gpuoutlet_jupyter.notebook.panel import Panel
from gpuoutlet_jupyter.notebook.rest import ServerBackend


@pytest.fixture
def fake() -> FakeBackend:
    backend = FakeBackend()
    backend.listed = [RUNNING]
    return backend


def test_the_form_launches_and_stops(fake: FakeBackend) -> None:
    panel = Panel(ScriptedSession(fake), live=False)
    try:
        assert [value for _label, value in panel.family.options] == ["rtx-4090", "h100-80gb"]
        assert "from $2.80/h per GPU, 80 GB" in panel.family.options[1][0]
        # The six templates, the default chosen, with what each holds and its ports.
        assert [value for _label, value in panel.template.options] == [
            "ubuntu-24-04", "pytorch", "vllm", "ollama", "a1111", "text-gen-webui",
        ]  # fmt: skip
        assert panel.template.value == "ubuntu-24-04"
        assert "11434" in dict((v, k) for k, v in panel.template.options)["ollama"]
        assert "$12.34 available" in panel.wallet.value
        assert len(panel.rentals.children) == 1 and ID in repr(panel._rows[ID].label.value)
        assert f"ssh gpuoutlet-{ID}" in panel._rows[ID].phase.value
        assert "made elsewhere" not in panel._rows[ID].label.value

        panel.name.value = "x" * 65
        assert panel.launch_rental() is None
        assert "Name is longer than the 64 characters allowed" in panel.message.value
        assert not fake.created

        panel.family.value = "rtx-4090"
        assert panel.region.options == ("US",)
        panel.template.value = "pytorch"
        panel.gpus.value = 2
        panel.name.value = "alice/panel"
        panel.auto_stop.value = 2
        rental = panel.launch_rental()
        assert rental is not None and "Launched" in panel.message.value
        assert "gpuoutlet expects it running in about 0:45" in panel.message.value
        assert fake.created[0] == {
            "familyId": "rtx-4090",
            "gpuCount": 2,
            "templateId": "pytorch",
            "name": "alice/panel",
            "autoStopAfterHours": 2.0,
        }

        # The idle stop goes beside the API's fields; a bad one is refused before any create.
        panel.idle_stop.value = "soon"
        assert panel.launch_rental() is None and len(fake.created) == 1
        assert "Idle stop must be a number of minutes" in panel.message.value
        panel.idle_stop.value = "45"
        panel.launch_rental()
        assert fake.created[1]["idleStopMinutes"] == 45.0
        panel.idle_stop.value = ""

        fake.create_error = api.InsufficientBalanceError(
            "Not enough balance for 2× rtx-4090: $1.30 for this one, and the wallet has $0.05.",
            needed_cents=130,
            available_cents=5,
            status_code=403,
            code="insufficient_balance",
            api_message="",
        )
        panel.launch_rental()
        assert "Not launched: Not enough balance for 2× rtx-4090" in panel.message.value

        # Stop takes two clicks: the first says a stop is permanent.
        stop = panel._rows[ID].stop
        stop.click()
        assert not fake.stopped and stop.description == "Confirm stop"
        assert "destroys the pod and wipes its disk" in panel.message.value
        assert "saved to this machine first" in panel.message.value
        stop.click()
        assert fake.stopped == [ID] and "it cost $0.47 in all" in panel.message.value
        assert fake.stop_saves == [True]  # the panel's stop saves the rental's work first
        assert "gpuoutlet panel: 1 rentals" in repr(panel)
    finally:
        panel.close()


@pytest.mark.asyncio
async def test_live_refresh_runs_on_the_loop(fake: FakeBackend) -> None:
    changes = asyncio.Queue[None]()

    async def arentals(*, since: int, wait: float) -> dict[str, Any]:
        await changes.get()
        return {"rentals": fake.listed, "version": since + 1}

    fake.arentals = arentals  # type: ignore[method-assign]
    panel = Panel(ScriptedSession(fake))
    try:
        assert panel._task is not None and not panel._task.done()
        fake.listed = [RUNNING, rental_json(id="rent_01NEWNEWNEWNEWNEWNEWNEWNEW")]
        changes.put_nowait(None)
        for _ in range(100):  # bounded: the task gets the loop as soon as this test yields
            if len(panel.rentals.children) == 2:
                break
            await asyncio.sleep(0.01)
        assert len(panel.rentals.children) == 2
    finally:
        panel.close()
    assert panel._task is None


@pytest.mark.asyncio
async def test_rest_backend_long_polls_the_list_without_blocking() -> None:
    seen: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"rentals": [], "version": 8})

    location = ServerLocation(url="http://server.test/", token="tok", source="a test")
    backend = ServerBackend(location, async_transport=httpx.MockTransport(handler))
    assert (await backend.arentals(since=7, wait=10))["version"] == 8
    assert dict(seen[0].url.params) == {"since": "7", "wait": "10"}
    assert seen[0].headers["Authorization"] == "token tok"


def test_a_rental_made_elsewhere_is_marked(fake: FakeBackend) -> None:
    fake.listed = [{**RUNNING, "createdHere": False}]
    panel = Panel(ScriptedSession(fake), live=False)
    try:
        label = panel._rows[ID].label.value
        assert "made elsewhere" in label and "gpuoutlet website" in label
    finally:
        panel.close()
