"""The work record of a rental, alone: its auto-stop deadline, a transfer a restart interrupted."""

from __future__ import annotations

from gpuoutlet_jupyter.api import Rental
from gpuoutlet_jupyter.service.work import TransferInfo, WorkInfo


def _rental() -> Rental:
    return Rental.model_validate(
        {
            "id": "rent_01H",
            "status": "running",
            "host": "10.0.0.1",
            "port": 22,
            "pricePerHourCents": 65,
            "startedAt": "2026-06-07T08:14:22Z",
        }
    )


def test_the_auto_stop_deadline_is_counted_from_the_start() -> None:
    work = WorkInfo()
    work.start(None, 2.5)
    assert work.view(_rental())["autoStopAt"] == "2026-06-07T10:44:22Z"


def test_an_auto_stop_too_far_to_write_down_is_a_deadline_that_never_comes() -> None:
    # The API takes any positive number of hours (the sheet gives no maximum); the rental's
    # view must still be shown, and nothing is saved ahead of a stop that never comes.
    for hours in (1e9, 1e300):
        work = WorkInfo()
        work.start(None, hours)
        assert work.auto_stop_at(_rental()) is None
        assert work.view(_rental())["autoStopAt"] is None


def test_a_transfer_running_when_the_process_ended_is_read_back_as_interrupted() -> None:
    running = TransferInfo("t1", "upload", "running", "/here", ("~/work",), 1_000.0)
    back = TransferInfo.from_state(running.to_state())
    assert back.state == "failed" and back.finished_at == 1_000.0
    assert back.error is not None and "Run it again to resume" in back.error
