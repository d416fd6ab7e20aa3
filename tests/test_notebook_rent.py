"""``gpuoutlet_jupyter.rent()`` over a scripted backend: handed over running, stopped at the end
of its ``with`` block whatever ended it, and never left behind when it does not come up
(issue 15). The quickstart tests run it for real, with and without a Jupyter server."""

from __future__ import annotations

from typing import Any

import pytest
from helpers.notebook import RUNNING, FakeBackend, ScriptedSession, rental_json

import gpuoutlet_jupyter
from gpuoutlet_jupyter.notebook.errors import NotReadyError
from gpuoutlet_jupyter.notebook.rent import Rental, rent


@pytest.fixture
def fake() -> FakeBackend:
    return FakeBackend()


def _session(fake: FakeBackend) -> Any:
    session = ScriptedSession(fake, progress="text")
    session.core._sleep = lambda _seconds: None
    return session


def test_the_package_root_has_it() -> None:
    assert gpuoutlet_jupyter.rent is rent and gpuoutlet_jupyter.Rental is Rental
    assert "rent" in gpuoutlet_jupyter.__all__


def test_a_with_block_gets_a_running_rental_and_stops_it_even_when_it_fails(
    fake: FakeBackend,
) -> None:
    fake.states = [RUNNING, rental_json(status="stopped", version=11)]
    seen: list[Rental] = []

    def block() -> None:
        with rent("RTX-4090", name="exp 1", auto_stop_hours=1, session=_session(fake)) as rental:
            seen.append(rental)
            assert rental.status == "running" and rental.ssh_command
            assert fake.stopped == []
            raise ZeroDivisionError  # a cell that fails

    with pytest.raises(ZeroDivisionError):
        block()
    rental = seen[0]
    assert fake.stopped == [rental.id] and rental.stopped
    assert fake.created == [
        {
            "familyId": "rtx-4090",
            "gpuCount": 1,
            "templateId": "ubuntu-24-04",
            "name": "exp 1",
            "autoStopAfterHours": 1.0,
        }
    ]
    # Stopping again does nothing more.
    rental.stop()
    assert fake.stopped == [rental.id]


def test_without_with_it_is_stopped_at_exit_unless_asked_not_to(fake: FakeBackend) -> None:
    fake.states = [RUNNING]
    rental = rent("rtx-4090", session=_session(fake))
    rental._stop_at_exit()  # what the interpreter runs as it exits
    assert fake.stopped == [rental.id] and rental.stopped
    rental._stop_at_exit()
    assert fake.stopped == [rental.id]
    fake.states = [RUNNING]
    kept = rent("rtx-4090", stop_at_exit=False, session=_session(fake))
    kept._stop_at_exit()
    assert fake.stopped == [rental.id] and not kept.stopped


def test_one_that_fails_to_come_up_is_raised_and_has_nothing_to_stop(fake: FakeBackend) -> None:
    fake.states = [rental_json(status="failed", error="no GPU after all", version=5)]
    with pytest.raises(NotReadyError, match="no GPU after all"):
        rent("rtx-4090", session=_session(fake))
    assert fake.stopped == []


def test_one_interrupted_while_it_comes_up_is_stopped(fake: FakeBackend) -> None:
    fake.states = [rental_json(version=4), KeyboardInterrupt()]
    with pytest.raises(KeyboardInterrupt):
        rent("rtx-4090", session=_session(fake))
    # Not handed over, so not left behind: its stop was asked for.
    assert len(fake.stopped) == 1
