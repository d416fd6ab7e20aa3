"""GPU telemetry: parsing captured nvidia-smi CSV, and sampling over a real sshd pod."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from helpers.remote_pods import TWO_GPUS, TestPod, connected, needs_sshd

from gpuoutlet_jupyter.remote import (
    ConnectionClosed,
    GPUSample,
    NoNvidiaSmi,
    RemoteManager,
    TelemetryError,
    TelemetryEvent,
    TelemetryHistory,
    TelemetryMonitor,
    TelemetryParseError,
    TelemetrySnapshot,
    parse_csv,
    sample,
)
from gpuoutlet_jupyter.remote.telemetry import NVIDIA_SMI_COMMAND, QUERY_FIELDS

# Lines as nvidia-smi prints them (--format=csv,noheader,nounits), from real machines.
H100_X2 = (
    "0, NVIDIA H100 80GB HBM3, 98, 71234, 81559, 67, 612.45\n"
    "1, NVIDIA H100 80GB HBM3, 0, 4, 81559, 31, 71.02\n"
)
NOT_SUPPORTED = "0, NVIDIA GeForce RTX 4090, 12, 455, 24564, [N/A], [Not Supported]\n"
NA_EVERYWHERE = "0, Tesla T4, [N/A], [N/A], [N/A], [N/A], [N/A]\n"


def test_parses_each_gpu() -> None:
    gpus = parse_csv(H100_X2)
    assert gpus == (
        GPUSample(0, "NVIDIA H100 80GB HBM3", 98.0, 71234.0, 81559.0, 67.0, 612.45),
        GPUSample(1, "NVIDIA H100 80GB HBM3", 0.0, 4.0, 81559.0, 31.0, 71.02),
    )
    assert gpus[0].memory_fraction == pytest.approx(71234 / 81559)


def test_values_a_gpu_cannot_give_are_none() -> None:
    (gpu,) = parse_csv(NOT_SUPPORTED)
    assert (gpu.utilization, gpu.temperature, gpu.power) == (12.0, None, None)
    (t4,) = parse_csv(NA_EVERYWHERE)
    assert t4.utilization is None and t4.memory_fraction is None
    (odd,) = parse_csv("0, X, [Unknown Error], 1, 2, [Insufficient Permissions], nan\n")
    assert (odd.utilization, odd.temperature, odd.power) == (None, None, None)


def test_names_with_commas_blank_lines_and_order() -> None:
    text = "\n1, Some GPU, rev 2, 5, 6, 7, 8, 9\r\n\n0, Plain, 1, 2, 3, 4, 5\n"
    gpus = parse_csv(text)
    assert [g.index for g in gpus] == [0, 1]
    assert gpus[1].name == "Some GPU, rev 2" and gpus[1].power == 9.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no GPU lines"),
        ("0, only, three\n", "expected 7 comma-separated fields"),
        ("x, GPU, 1, 2, 3, 4, 5\n", "the GPU index 'x' is not a number"),
        ("0, GPU, busy, 2, 3, 4, 5\n", "'busy' for utilization.gpu"),
        ("NVIDIA-SMI has failed because it couldn't communicate with the driver\n", "expected 7"),
    ],
)
def test_output_that_is_not_the_format(text: str, message: str) -> None:
    with pytest.raises(TelemetryParseError, match=message):
        parse_csv(text)


def test_the_query_is_the_documented_one() -> None:
    assert NVIDIA_SMI_COMMAND == (
        "nvidia-smi --query-gpu=index,name,utilization.gpu,memory.used,memory.total,"
        "temperature.gpu,power.draw --format=csv,noheader,nounits"
    )
    assert len(QUERY_FIELDS) == 7


def snapshot(at: float, *utilizations: float | None) -> TelemetrySnapshot:
    from datetime import datetime, timezone

    gpus = tuple(GPUSample(i, "G", u, 1, 2, 3, 4) for i, u in enumerate(utilizations))
    return TelemetrySnapshot(datetime.now(timezone.utc), at, gpus)


def test_history_is_bounded_to_ten_minutes_at_five_seconds() -> None:
    history = TelemetryHistory()
    for i in range(500):
        history.add(snapshot(i * 5.0, 10))
    assert len(history) == 120
    assert history.snapshots()[0].monotonic == (500 - 120) * 5.0
    assert history.latest() is history.snapshots()[-1]


def test_peak_utilization_over_a_window() -> None:
    history = TelemetryHistory(60, 5)
    for t, u in [(0, 90.0), (5, 10.0), (10, None), (15, 30.0)]:
        history.add(snapshot(t, u, 5.0))
    assert history.peak_utilization(window=10, now=15) == 30.0
    assert history.peak_utilization(window=20, now=15) == 90.0
    assert history.peak_utilization(window=1, now=100) is None


@needs_sshd
@pytest.mark.asyncio
async def test_sample_over_the_shared_connection(gpu_pod: TestPod, control_dir: Path) -> None:
    assert gpu_pod.smi is not None
    gpu_pod.smi.set(TWO_GPUS)
    logins = gpu_pod.logins()
    async with connected(gpu_pod, control_dir) as conn:
        first = await sample(conn)
        for _ in range(4):
            await sample(conn)
        assert gpu_pod.logins() == logins + 1  # five samples, one login
    assert [g.utilization for g in first.gpus] == [37.0, 100.0]
    as_json = json.loads(json.dumps(first.to_dict()))
    assert as_json["gpus"][0]["name"] == "NVIDIA GeForce RTX 4090"
    assert first.gpus[1] == GPUSample(
        1, "NVIDIA GeForce RTX 4090", 100.0, 24000.0, 24564.0, 81.0, 449.1
    )
    assert gpu_pod.smi.args() == [
        "--query-gpu=index,name,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw",
        "--format=csv,noheader,nounits",
    ]


@needs_sshd
@pytest.mark.asyncio
async def test_a_pod_without_nvidia_smi(bare_pod: TestPod, control_dir: Path) -> None:
    async with connected(bare_pod, control_dir) as conn:
        with pytest.raises(NoNvidiaSmi, match="this pod has no nvidia-smi"):
            await sample(conn)


@needs_sshd
@pytest.mark.asyncio
async def test_nvidia_smi_that_fails(gpu_pod: TestPod, control_dir: Path) -> None:
    assert gpu_pod.smi is not None
    message = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."
    gpu_pod.smi.set(message + "\n", exit_status=9)
    try:
        async with connected(gpu_pod, control_dir) as conn:
            with pytest.raises(TelemetryError, match=r"exit status 9\): NVIDIA-SMI has failed"):
                await sample(conn)
    finally:
        gpu_pod.smi.set(TWO_GPUS)


async def _until(predicate: object, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():  # type: ignore[operator]
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.02)


@needs_sshd
@pytest.mark.asyncio
async def test_monitor_samples_only_while_someone_watches(
    gpu_pod: TestPod, control_dir: Path
) -> None:
    assert gpu_pod.smi is not None
    gpu_pod.smi.set(TWO_GPUS)
    async with connected(gpu_pod, control_dir) as conn:
        monitor = TelemetryMonitor(conn, interval=0.3, history_seconds=1.2)
        await asyncio.sleep(0.8)
        assert monitor.samples_taken == 0 and not monitor.running  # nobody looks: no sampling
        first: list[TelemetryEvent] = []
        second: list[TelemetryEvent] = []
        one = monitor.subscribe(first.append)
        two = monitor.subscribe(second.append)
        assert monitor.running and monitor.subscribers == 2
        await _until(lambda: len(first) >= 5)
        assert all(e.kind == "sample" and e.snapshot is not None for e in first)
        assert len(monitor.history) == 4  # 1.2 s of history at 0.3 s
        one.close()
        assert monitor.running  # the other one still looks
        gpu_pod.smi.set("0, NVIDIA GeForce RTX 4090, 88, 1, 24564, 50, 300\n")
        await _until(
            lambda: (
                second[-1].snapshot is not None and second[-1].snapshot.gpus[0].utilization == 88
            )
        )
        seen = len(first)
        two.close()
        assert not monitor.running and monitor.subscribers == 0
        taken = monitor.samples_taken
        await asyncio.sleep(1.0)
        assert monitor.samples_taken == taken and len(first) == seen
        # Watching again resumes, and the history carried over.
        async with monitor.watch() as watched:
            async for event in watched:
                assert event.kind == "sample"
                break
        assert not monitor.running
        await monitor.close()
        with pytest.raises(ConnectionClosed):
            monitor.subscribe(first.append)
    gpu_pod.smi.set(TWO_GPUS)


@needs_sshd
@pytest.mark.asyncio
async def test_no_nvidia_smi_is_said_once_and_not_asked_again(
    bare_pod: TestPod, control_dir: Path
) -> None:
    async with connected(bare_pod, control_dir) as conn:
        monitor = TelemetryMonitor(conn, interval=0.2)
        events: list[TelemetryEvent] = []
        monitor.subscribe(events.append)
        await _until(lambda: bool(events))
        await asyncio.sleep(1.0)
        assert [e.kind for e in events] == ["unavailable"]
        assert monitor.unavailable is not None and "no nvidia-smi" in monitor.unavailable
        assert not monitor.running and monitor.samples_taken == 0
        later: list[TelemetryEvent] = []
        monitor.subscribe(later.append)  # a new viewer is told at once, nothing is run
        await asyncio.sleep(0.1)
        assert [e.kind for e in later] == ["unavailable"] and not monitor.running
        watched = [event async for event in monitor.watch()]
        assert [e.kind for e in watched] == ["unavailable"]


@needs_sshd
@pytest.mark.asyncio
async def test_errors_are_reported_and_sampling_goes_on(
    gpu_pod: TestPod, control_dir: Path
) -> None:
    assert gpu_pod.smi is not None
    gpu_pod.smi.set("garbage\n")
    try:
        async with connected(gpu_pod, control_dir) as conn:
            monitor = TelemetryMonitor(conn, interval=0.2)
            events: list[TelemetryEvent] = []
            with monitor.subscribe(events.append):
                await _until(lambda: len(events) >= 2)
                assert {e.kind for e in events} == {"error"}
                assert "expected 7 comma-separated fields" in (events[0].message or "")
                gpu_pod.smi.set(TWO_GPUS)
                await _until(lambda: events[-1].kind == "sample")
            assert monitor.last_error is None
    finally:
        gpu_pod.smi.set(TWO_GPUS)


@needs_sshd
@pytest.mark.asyncio
async def test_telemetry_ends_with_the_rental(gpu_pod: TestPod, control_dir: Path) -> None:
    assert gpu_pod.smi is not None
    gpu_pod.smi.set(TWO_GPUS)
    manager = RemoteManager(control_dir, telemetry_interval=0.2)
    remote = await manager.rental(gpu_pod.target)
    events: list[TelemetryEvent] = []
    remote.telemetry.subscribe(events.append)
    await _until(lambda: len(events) >= 2)
    await manager.close_rental(remote.rental_id)
    assert not remote.telemetry.running
    count = len(events)
    await asyncio.sleep(0.6)
    assert len(events) == count
