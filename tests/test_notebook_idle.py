"""Idle auto-stop from the notebook: ``%gpu_rent --idle-stop``, ``%gpu_keep``, the idle column of
``%gpu_rentals``, and the progress widget that goes on following its rental after its cell is
done (the warning and its "Keep it" button; the panel's rows too). Against a real Jupyter server
with the extension, real kernels and the sandbox; the in-process host refuses an idle stop.

The server runs in this process (pytest-jupyter) on the test's event loop, so every wait here is
awaited: a blocking call would stall the server the kernel is talking to.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import re
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from helpers.kernels import (
    RENTAL_ID,
    Run,
    execute,
    kernel_env,
    ready_client,
    run_ok,
    widget_states,
)
from helpers.server import Rest, sandbox_server_config, start_extension, until
from jupyter_client.manager import AsyncKernelManager

from gpuoutlet_jupyter import api
from gpuoutlet_jupyter.notebook.live import start_live
from gpuoutlet_jupyter.notebook.views import RentalInfo, RentalsTable

# Nothing from the developer's own environment or credentials file leaks into these tests.
pytestmark = pytest.mark.usefixtures("no_gpuoutlet_env")

#: The server's idle settings here: rentals stop after 60 min idle unless a create says
#: otherwise; the warning comes 0.2 min (12 s) before the stop; kernels are looked at 10×/s.
IDLE_TRAITS = {"idle_stop_minutes": 60.0, "idle_warning_minutes": 0.2, "idle_check_interval": 0.1}


@pytest.fixture
def jp_server_config(
    tmp_path: Path, sandbox: Any, account: Any, ssh_keypair: Any
) -> dict[str, Any]:
    return sandbox_server_config(tmp_path, sandbox, account, ssh_keypair, **IDLE_TRAITS)


@contextlib.asynccontextmanager
async def kernel_of(server: Any) -> AsyncIterator[tuple[Rest, Any]]:
    """A python3 kernel started by the server (the extension running), magics loaded."""
    rest = await start_extension(server)
    kernels = server.kernel_manager
    kernel_id = await kernels.start_kernel(kernel_name="python3")
    kc = await ready_client(kernels.get_kernel(kernel_id))
    try:
        await run_ok(kc, "%load_ext gpuoutlet_jupyter")
        yield rest, kc
    finally:
        kc.stop_channels()
        await kernels.shutdown_kernel(kernel_id, now=True)


def upstream_rentals(sandbox: Any, account: Any) -> list[dict[str, Any]]:
    """What the rentals API itself holds for the account."""
    with sandbox.client(account.sid) as http:
        rentals: list[dict[str, Any]] = http.get("/v1/rentals").json()["rentals"]
        return rentals


async def rental_json(rest: Rest, rental_id: str) -> dict[str, Any]:
    data: dict[str, Any] = (await rest.api("GET", f"rentals/{rental_id}", auth="kernel")).json()
    return data


class Iopub:
    """Every iopub message of a kernel, whichever request it belongs to: a widget's background
    task sends its updates after its cell is done."""

    def __init__(self, kc: Any) -> None:
        self.kc = kc
        self.messages: list[dict[str, Any]] = []

    async def run(self, code: str, *, ok: bool = True) -> Run:
        run = await execute(
            self.kc, code, on_message=self.messages.append, on_other=self.messages.append
        )
        if ok:
            assert run.ok, f"{code!r} failed:\n{run.error}\n{run.text}"
        return run

    def states(self) -> dict[str, dict[str, Any]]:
        return widget_states(self.messages)

    def updates(self, since: int) -> list[tuple[str, dict[str, Any]]]:
        """(comm id, changed state) of the widget updates after message ``since``."""
        found = []
        for msg in self.messages[since:]:
            data = msg["content"].get("data", {})
            if msg["msg_type"] == "comm_msg" and data.get("method") == "update":
                found.append((msg["content"]["comm_id"], data.get("state", {})))
        return found

    async def until(self, check: Callable[[], Any], *, timeout: float = 60.0) -> Any:
        """Read messages until ``check()`` is truthy; bounded, never a timed assertion."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not (value := check()):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"condition not met within {timeout} s")
            with contextlib.suppress(queue.Empty):  # nothing within a second: look again
                self.messages.append(await self.kc.get_iopub_msg(timeout=min(1.0, remaining)))
        return value

    def html_with(self, text: str, comms: set[str] | None = None) -> str | None:
        """The comm id of an HTML widget now showing ``text`` (among ``comms``)."""
        for comm_id, state in self.states().items():
            if comms is not None and comm_id not in comms:
                continue
            if state.get("_model_name") == "HTMLModel" and text in str(state.get("value")):
                return comm_id
        return None

    def visible(self, comm_id: str) -> bool:
        """Whether a widget's layout shows it (``display`` unset)."""
        states = self.states()
        layout = str(states[comm_id]["layout"]).removeprefix("IPY_MODEL_")
        return states[layout].get("display") in (None, "")

    def click(self, comm_id: str) -> None:
        """What a browser sends when a Button is clicked."""
        content = {"comm_id": comm_id, "data": {"method": "custom", "content": {"event": "click"}}}
        self.kc.shell_channel.send(self.kc.session.msg("comm_msg", content))


def opened(messages: list[dict[str, Any]], model: str, **state: Any) -> list[str]:
    """Comm ids of the widgets of ``model`` opened in these messages, with this state."""
    return [
        comm_id
        for comm_id, values in widget_states(messages).items()
        if values.get("_model_name") == model and all(values.get(k) == v for k, v in state.items())
    ]


def _ids(text: str) -> list[str]:
    return list(dict.fromkeys(RENTAL_ID.findall(text)))


# -- %gpu_rent --idle-stop, %gpu_keep, %gpu_rentals -------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("-1", "%gpu_rent: --idle-stop must be from 0 (no idle stop) to 10080 minutes"),
        ("nan", "%gpu_rent: --idle-stop must be from 0 (no idle stop) to 10080 minutes"),
        ("soon", "%gpu_rent: argument --idle-stop: invalid float value: 'soon'"),
    ],
)
async def test_a_bad_idle_stop_is_refused_and_nothing_is_created(
    server: Any, sandbox: Any, account: Any, value: str, expected: str
) -> None:
    async with kernel_of(server) as (rest, kc):
        run = await execute(kc, f"%gpu_rent rtx-4090 --idle-stop {value}")
        assert not run.ok and expected in run.error, run.error
        assert "Traceback" not in run.error and "Nothing was" in run.error
        listed = (await rest.api("GET", "rentals", auth="kernel")).json()["rentals"]
        assert listed == []
        assert upstream_rentals(sandbox, account) == []


async def test_idle_stop_is_sent_kept_changed_and_listed(
    server: Any, sandbox: Any, account: Any
) -> None:
    async with kernel_of(server) as (rest, kc):
        run = await run_ok(
            kc, "r = %gpu_rent rtx-4090 --idle-stop 30 --name idle-flag\nprint(r.id)"
        )
        rental_id = _ids(run.text)[0]
        data = await rental_json(rest, rental_id)
        idle = data["idleStop"]
        assert data["status"] == "running" and idle["minutes"] == 30
        assert idle["warning"] is False and 0 < idle["secondsLeft"] <= 30 * 60
        # Absent: the server's default (60 here); 0: no idle stop for this rental.
        run = await run_ok(
            kc,
            "d = %gpu_rent rtx-4090 --no-wait --name default\n"
            "z = %gpu_rent rtx-4090 --idle-stop 0 --no-wait --name none\n"
            "print('ids', d.id, z.id)",
        )
        default_id, none_id = re.findall(r"ids (\S+) (\S+)", run.text)[0]
        assert (await rental_json(rest, default_id))["idleStop"]["minutes"] == 60
        assert (await rental_json(rest, none_id))["idleStop"] is None
        # The rentals API never sees the idle stop: it is the Jupyter server's.
        upstream = upstream_rentals(sandbox, account)
        assert len(upstream) == 3 and not [r for r in upstream if "idleStop" in str(r)]

        # The table has an idle column, the rental's own view a sentence with what to do.
        run = await run_ok(kc, "%gpu_rentals")
        assert "idle" in run.text.splitlines()[0] and "idle stop 30 min" in run.text
        run = await run_ok(kc, f"%gpu_status {rental_id}")
        assert "idle stop" in run.text and f"%gpu_keep {rental_id} restarts the timer" in run.text

        # Keep it: the timer starts again (and the magic shows the rental).
        before = data["idleStop"]["lastActiveAt"]
        run = await run_ok(kc, f"%gpu_keep {rental_id}")
        assert "after 30 min with nothing running on it" in run.text
        after = (await rental_json(rest, rental_id))["idleStop"]
        assert after["lastActiveAt"] > before and after["minutes"] == 30

        # With --idle-stop it also changes it; 0 turns it off; a bad value changes nothing.
        await run_ok(kc, f"%gpu_keep {rental_id} --idle-stop 0.5")
        assert (await rental_json(rest, rental_id))["idleStop"]["minutes"] == 0.5
        run = await execute(kc, f"%gpu_keep {rental_id} --idle-stop -3")
        assert not run.ok and "%gpu_keep: --idle-stop must be from 0" in run.error
        assert (await rental_json(rest, rental_id))["idleStop"]["minutes"] == 0.5
        run = await run_ok(kc, f"%gpu_keep {rental_id} --idle-stop 0")
        assert (await rental_json(rest, rental_id))["idleStop"] is None
        assert "idle stop" not in run.text

        await run_ok(kc, "%gpu_stop --all --yes")
        run = await execute(kc, f"%gpu_keep {rental_id}")
        assert not run.ok, run.text
        assert f"%gpu_keep: Rental {rental_id} is stopped, so it has no idle timer" in run.error


# -- the widget and the panel follow the rental: the warning, "Keep it", the stop ------------


async def test_the_widget_warns_and_keep_it_restarts_the_timer(
    server: Any, sandbox: Any, account: Any
) -> None:
    """0.25 min idle stop, warned 0.2 min before: the warning shows 3 s after the rental runs,
    after the %gpu_rent cell is done; the widget's Keep it, then the panel's, restart it."""
    async with kernel_of(server) as (rest, kc):
        iopub = Iopub(kc)
        run = await iopub.run("r = %gpu_rent rtx-4090 --idle-stop 0.25 --name idle-widget\nr.id")
        rental_id = _ids(run.text)[0]
        data = await rental_json(rest, rental_id)
        assert data["status"] == "running" and data["idleStop"]["minutes"] == 0.25
        widget_html = set(opened(run.messages, "HTMLModel"))
        [widget_keep] = opened(run.messages, "ButtonModel", description="Keep it")
        assert not iopub.visible(widget_keep)

        # The cell is done; the widget's background long-poll brings the warning.
        warned = await iopub.until(
            lambda: iopub.html_with("unless something runs on it", widget_html)
        )
        assert "Idle: stopping in 0:" in iopub.states()[warned]["value"]
        await iopub.until(lambda: iopub.visible(widget_keep))  # its layout is a model of its own
        before = (await rental_json(rest, rental_id))["idleStop"]
        assert before["warning"] is True

        clicked = len(iopub.messages)
        iopub.click(widget_keep)
        kept = await until(
            lambda: _later(rest, rental_id, before["lastActiveAt"]), timeout=30, interval=0.1
        )
        # The widget shows the keep's reply at once: the timer again, no warning.
        await iopub.until(
            lambda: any(
                comm == warned and str(state.get("value", "")).startswith("Idle stop:")
                for comm, state in iopub.updates(clicked)
            )
        )

        # The panel's row warns too, with its own Keep it.
        run = await iopub.run("from gpuoutlet_jupyter import Panel\np = Panel()\np")
        panel_html = set(opened(run.messages, "HTMLModel"))
        [panel_keep] = opened(run.messages, "ButtonModel", description="Keep it")
        await iopub.until(lambda: iopub.html_with("unless something runs on it", panel_html))
        await iopub.until(lambda: iopub.visible(panel_keep))
        iopub.click(panel_keep)
        await until(lambda: _later(rest, rental_id, kept["lastActiveAt"]), timeout=30, interval=0.1)
        await iopub.until(lambda: iopub.html_with(f"Kept {rental_id}", panel_html))

        # Nothing runs on it: the server stops it, and both say why.
        await iopub.until(lambda: iopub.html_with("Stopped for being idle", widget_html))
        await iopub.until(lambda: iopub.html_with("Stopped for being idle", panel_html))
        await iopub.until(lambda: iopub.html_with(">stopped</span>", widget_html))
        stopped = await rental_json(rest, rental_id)
        assert stopped["status"] == "stopped" and stopped["stopReason"] == "idle"
        await iopub.until(lambda: not iopub.visible(widget_keep) and not iopub.visible(panel_keep))

        # Its rental is final: the widget's task has ended; closing the panel ends its own.
        run = await iopub.run(
            "from ipywidgets.widgets.widget import _instances\n"
            "from gpuoutlet_jupyter.notebook.widgets import ProgressWidget\n"
            "shown = [x for x in list(_instances.values()) if isinstance(x, ProgressWidget)]\n"
            "p.close()\n"
            "print('following', [x.following for x in shown], p._task)"
        )
        assert "following [False] None" in run.text


async def _later(rest: Rest, rental_id: str, before: str) -> dict[str, Any] | None:
    """The rental's idle stop once its timer restarted after ``before`` (a keep)."""
    idle: dict[str, Any] = (await rental_json(rest, rental_id))["idleStop"]
    return idle if idle["lastActiveAt"] > before else None


# -- the in-process host cannot see remote kernels: it refuses ---------------------------------


@pytest.mark.asyncio
async def test_in_process_refuses_an_idle_stop(
    sandbox: Any, account: Any, ssh_keypair: Any, tmp_path: Path
) -> None:
    env = kernel_env(
        {
            "GPUOUTLET_API_URL": sandbox.url,
            "GPUOUTLET_SID": account.sid,
            "GPUOUTLET_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
            "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
            "JUPYTER_DATA_DIR": str(tmp_path / "data"),
        }
    )
    km = AsyncKernelManager(kernel_name="python3")
    await km.start_kernel(env=env)
    kc = await ready_client(km)
    try:
        setup = "\n".join(
            [
                "%load_ext gpuoutlet_jupyter",
                f"%config NotebookSession.ssh_dir = {str(tmp_path / 'ssh')!r}",
                f"%config NotebookSession.identity_file = {str(ssh_keypair.private_key)!r}",
                "%config NotebookSession.reconcile_interval = 0",
            ]
        )
        await run_ok(kc, setup)
        run = await execute(kc, "%gpu_rent rtx-4090 --idle-stop 5")
        assert not run.ok and "Traceback" not in run.error
        message = run.error
        assert message.startswith(
            "%gpu_rent: --idle-stop cannot be used here: idle auto-stop needs the Jupyter server"
        ), message
        assert "--auto-stop HOURS" in message and "Nothing was sent" in message
        assert upstream_rentals(sandbox, account) == []

        # 0 (no idle stop) is fine here; keep returns the rental; a new idle stop is refused.
        run = await run_ok(kc, "z = %gpu_rent rtx-4090 --idle-stop 0 --no-wait\nprint(z.id)")
        rental_id = _ids(run.text)[0]
        run = await run_ok(kc, f"k = %gpu_keep {rental_id}\nprint(k.id, k.idle_stop)")
        assert f"{rental_id} None" in run.text
        run = await execute(kc, f"%gpu_keep {rental_id} --idle-stop 5")
        assert not run.ok and "--idle-stop cannot be used here" in run.error
        await run_ok(kc, f"%gpu_stop {rental_id}")
    finally:
        kc.stop_channels()
        await km.shutdown_kernel(now=True)


# -- the pieces, without a kernel ---------------------------------------------------------------


def _rental(**fields: Any) -> RentalInfo:
    data = {
        "id": "rent_01IDLEIDLEIDLEIDLEIDLEIDLE",
        "status": "running",
        "host": "10.0.0.7",
        "port": 22,
        "pricePerHourCents": 65,
        "startedAt": (datetime.now(timezone.utc) - timedelta(minutes=5)).isoformat(),
        "familyId": "rtx-4090",
        "gpuCount": 1,
        "version": 7,
        **fields,
    }
    return RentalInfo(data)


def _idle(**fields: Any) -> dict[str, Any]:
    return {
        "minutes": 30,
        "warnMinutes": 5,
        "lastActiveAt": "2026-06-07T08:14:22Z",
        "stopAt": "2026-06-07T08:44:22Z",
        "secondsLeft": 130.0,
        "warning": False,
        "kernels": 1,
        "busyKernels": 0,
        **fields,
    }


def test_idle_accessors_and_their_words() -> None:
    rental = _rental(idleStop=_idle(warning=True), stopReason=None)
    idle = rental.idle_stop
    assert idle is not None and idle.minutes == 30.0 and idle.warn_minutes == 5.0
    assert idle.stop_at == datetime(2026, 6, 7, 8, 44, 22, tzinfo=timezone.utc)
    assert idle.warning and idle.kernels == 1 and rental.idle_warning
    # The countdown runs on from when the reply came, on this kernel's own clock.
    assert rental.idle_seconds_left(now=rental.received + 10) == 120.0
    assert rental.idle_seconds_left(now=rental.received + 500) == 0.0
    assert rental.idle_summary().startswith("stops in 2:")
    assert "unless something runs on it" in rental.idle_sentence()

    calm = _rental(idleStop=_idle())
    assert not calm.idle_warning and calm.idle_summary().startswith("idle stop 30 min, 2:")
    assert _rental(idleStop=_idle(busyKernels=1)).idle_summary() == "idle stop 30 min (busy)"
    waiting = _rental(status="provisioning", host=None, idleStop=_idle(secondsLeft=None))
    assert waiting.idle_summary() == "idle stop 30 min"
    assert "the timer starts when it runs" in waiting.idle_sentence()
    stopped = _rental(status="stopped", idleStop=_idle(secondsLeft=None), stopReason="idle")
    assert stopped.stopped_idle and stopped.idle_summary() == "stopped: idle"
    assert ("idle stop", "stopped by the Jupyter server for being idle after 30 min") in (
        stopped.summary_rows()
    )
    plain = _rental()
    assert plain.idle_stop is None and plain.stop_reason is None and plain.idle_summary() == ""
    assert all(label != "idle stop" for label, _ in plain.summary_rows())
    # A reply without the members (an older server) or with nonsense in them: no idle stop.
    assert _rental(idleStop={"minutes": "x"}).idle_stop is None


def test_the_idle_column_shows_only_when_some_rental_has_one() -> None:
    assert "idle" not in RentalsTable([_rental()]).to_text().splitlines()[0]
    table = RentalsTable(
        [
            _rental(),
            _rental(idleStop=_idle(warning=True)),
            _rental(status="stopped", stopReason="idle"),
        ]
    )
    header, _rule, *rows = table.to_text().splitlines()
    assert header.split()[-4:] == ["idle", "ssh", "/", "phase"]
    assert "stops in 2:" in rows[1] and "stopped: idle" in rows[2]
    assert "<th style='text-align:left'>idle</th>" in table._repr_html_()


@pytest.mark.asyncio
async def test_live_updates_survive_errors_and_end() -> None:
    """The background loop behind the widget and the panel: a failed step is retried after a
    pause (said in the view, then cleared), the loop ends when a step says so, or is cancelled."""
    said: list[tuple[str, bool]] = []
    steps: list[str] = []
    script: list[Any] = [
        api.ServerError("The server answered 502.", status_code=502, code="x", api_message="x"),
        True,
        False,
    ]

    async def step() -> bool:
        outcome = script.pop(0)
        steps.append(type(outcome).__name__)
        if isinstance(outcome, Exception):
            raise outcome
        return bool(outcome)

    task = start_live(step, lambda text, bad: said.append((text, bad)), name="test")
    assert task is not None
    await asyncio.wait_for(task, 30)
    assert steps == ["ServerError", "bool", "bool"] and not script
    assert said == [("Live updates paused, retrying: The server answered 502.", True), ("", False)]

    waiting = asyncio.Event()

    async def forever() -> bool:
        await waiting.wait()
        return True

    task = start_live(forever, lambda text, bad: said.append((text, bad)), name="test")
    assert task is not None
    await asyncio.sleep(0)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert task.cancelled()

    async def broken() -> bool:
        raise KeyError("bug")

    task = start_live(broken, lambda text, bad: said.append((text, bad)), name="test")
    assert task is not None
    await asyncio.wait_for(task, 30)
    assert said[-1] == ("Live updates stopped (KeyError: 'bug').", True)


def test_no_running_loop_no_live_updates() -> None:
    async def step() -> bool:
        return False

    assert start_live(step, lambda text, bad: None, name="test") is None
