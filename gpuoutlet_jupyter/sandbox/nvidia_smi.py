"""The `nvidia-smi` of sandbox pods: simulated GPUs whose utilisation follows the CPU load of
the processes started on that pod.

This is the sandbox's simulation, not a driver: a pod has the rental's GPU count and model;
GPU i is as busy as the pod's processes keep CPU cores beyond i busy (one core flat out: GPU 0
at 100 %), memory used follows their resident memory, and temperature and power follow
utilisation. It answers `--query-gpu=…` with `--format=csv[,noheader][,nounits]` (`-i`, `-l`),
`-L`, and a plain call with the familiar table. On a machine with NVIDIA GPUs pods get the real
`nvidia-smi` instead. Imports only the standard library: it runs once per call on a pod.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ENV_POD = "GPUOUTLET_POD_ID"
ENV_COUNT = "GPUOUTLET_POD_GPU_COUNT"
ENV_NAME = "GPUOUTLET_POD_GPU_NAME"
ENV_MEMORY = "GPUOUTLET_POD_GPU_MEMORY_MIB"
ENV_POWER = "GPUOUTLET_POD_GPU_POWER_W"
DRIVER_VERSION = "550.54.15"
CUDA_VERSION = "12.4"
#: Real seconds over which CPU load is measured for one answer.
SAMPLE_SECONDS = 0.25
_NO_DRIVER = (
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure "
    "that the latest NVIDIA driver is installed and running.\n"
)


@dataclass(frozen=True)
class GpuSpec:
    """The GPUs a pod pretends to have."""

    count: int
    name: str
    memory_mib: int
    power_watts: int

    def environment(self) -> dict[str, str]:
        return {
            ENV_COUNT: str(self.count),
            ENV_NAME: self.name,
            ENV_MEMORY: str(self.memory_mib),
            ENV_POWER: str(self.power_watts),
        }

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> GpuSpec | None:
        try:
            return cls(
                int(env[ENV_COUNT]), env[ENV_NAME], int(env[ENV_MEMORY]), int(env[ENV_POWER])
            )
        except (KeyError, ValueError):
            return None


def install(bin_dir: Path) -> Path:
    """Write the `nvidia-smi` executable pods find first on their PATH."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    root = Path(__file__).resolve().parent.parent.parent
    script = bin_dir / "nvidia-smi"
    text = (
        f"#!{sys.executable}\n"
        '"""The gpuoutlet sandbox\'s simulated nvidia-smi (see gpuoutlet_jupyter.sandbox.nvidia_smi)."""\n'
        "import sys\n"
        f"sys.path.append({str(root)!r})\n"
        "from gpuoutlet_jupyter.sandbox.nvidia_smi import main\n"
        "raise SystemExit(main(sys.argv[1:]))\n"
    )
    tmp = script.with_name(f".nvidia-smi.{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    tmp.chmod(0o755)
    tmp.replace(script)
    return script


# --- measuring the pod ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Proc:
    ticks: int
    rss_pages: int


def _pod_processes(pod_id: str, exclude: int) -> dict[int, _Proc]:
    """The pod's processes (those started with its GPUOUTLET_POD_ID) and their CPU ticks."""
    needle = f"{ENV_POD}={pod_id}".encode()
    found: dict[int, _Proc] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == exclude:
            continue
        try:
            with open(os.path.join(entry.path, "environ"), "rb") as f:
                if needle not in f.read().split(b"\0"):
                    continue
            with open(os.path.join(entry.path, "stat"), "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        # After the command: state is fields[0]; utime, stime are stat fields 14 and 15.
        if len(fields) < 22 or fields[0] == b"Z":
            continue
        found[int(entry.name)] = _Proc(int(fields[11]) + int(fields[12]), int(fields[21]))
    return found


@dataclass(frozen=True)
class Load:
    cpu_percent: float
    rss_mib: float


def measure(pod_id: str, seconds: float = SAMPLE_SECONDS) -> Load:
    me = os.getpid()
    hz = os.sysconf("SC_CLK_TCK")
    page = os.sysconf("SC_PAGE_SIZE")
    start, t0 = _pod_processes(pod_id, me), time.monotonic()
    time.sleep(seconds)
    end, t1 = _pod_processes(pod_id, me), time.monotonic()
    ticks = sum(p.ticks - (start[pid].ticks if pid in start else 0) for pid, p in end.items())
    cpu = max(0.0, ticks / hz / max(t1 - t0, 1e-6) * 100)
    rss = sum(p.rss_pages for p in end.values()) * page / 2**20
    return Load(cpu, rss)


@dataclass(frozen=True)
class GpuState:
    index: int
    name: str
    uuid: str
    utilization: int
    memory_used: int
    memory_total: int
    temperature: int
    power_draw: float
    power_limit: int


def gpu_states(spec: GpuSpec, pod_id: str, load: Load) -> list[GpuState]:
    states = []
    for i in range(spec.count):
        util = round(min(100.0, max(0.0, load.cpu_percent - 100 * i)))
        used = round(min(spec.memory_mib, max(0.0, load.rss_mib - spec.memory_mib * i)))
        idle_power = max(10.0, spec.power_watts * 0.06)
        states.append(
            GpuState(
                index=i,
                name=spec.name,
                uuid=f"GPU-{uuid.uuid5(uuid.NAMESPACE_URL, f'gpuoutlet-sandbox/{pod_id}/{i}')}",
                utilization=util,
                memory_used=used,
                memory_total=spec.memory_mib,
                temperature=round(30 + 0.45 * util),
                power_draw=round(idle_power + (spec.power_watts - idle_power) * util / 100, 2),
                power_limit=spec.power_watts,
            )
        )
    return states


# --- answering --------------------------------------------------------------------------------

#: field name -> (unit shown with units, value)
_FIELDS = {
    "index": "",
    "name": "",
    "gpu_name": "",
    "uuid": "",
    "gpu_uuid": "",
    "count": "",
    "driver_version": "",
    "pci.bus_id": "",
    "pstate": "",
    "utilization.gpu": "%",
    "utilization.memory": "%",
    "memory.used": "MiB",
    "memory.total": "MiB",
    "memory.free": "MiB",
    "temperature.gpu": "",
    "power.draw": "W",
    "power.limit": "W",
    "fan.speed": "%",
}


def _value(field: str, gpu: GpuState, count: int) -> str:
    values: dict[str, object] = {
        "index": gpu.index,
        "name": gpu.name,
        "gpu_name": gpu.name,
        "uuid": gpu.uuid,
        "gpu_uuid": gpu.uuid,
        "count": count,
        "driver_version": DRIVER_VERSION,
        "pci.bus_id": f"00000000:{gpu.index + 1:02X}:00.0",
        "pstate": "P0" if gpu.utilization else "P8",
        "utilization.gpu": gpu.utilization,
        "utilization.memory": round(gpu.utilization * 0.6),
        "memory.used": gpu.memory_used,
        "memory.total": gpu.memory_total,
        "memory.free": gpu.memory_total - gpu.memory_used,
        "temperature.gpu": gpu.temperature,
        "power.draw": f"{gpu.power_draw:.2f}",
        "power.limit": f"{gpu.power_limit:.2f}",
        "fan.speed": round(30 + gpu.utilization * 0.5),
    }
    return str(values[field])


def csv_lines(
    fields: Sequence[str], gpus: Sequence[GpuState], *, header: bool, units: bool, count: int
) -> list[str]:
    lines = []
    if header:
        lines.append(", ".join(f"{f} [{_FIELDS[f]}]" if _FIELDS[f] else f for f in fields))
    for gpu in gpus:
        cells = []
        for field in fields:
            value = _value(field, gpu, count)
            cells.append(f"{value} {_FIELDS[field]}" if units and _FIELDS[field] else value)
        lines.append(", ".join(cells))
    return lines


def table(gpus: Sequence[GpuState], now: float) -> str:
    bar = "+-----------------------------------------------------------------------------------------+"
    lines = [
        time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(now)),
        bar,
        f"| NVIDIA-SMI {DRIVER_VERSION:<22} Driver Version: {DRIVER_VERSION:<14} CUDA Version: {CUDA_VERSION:<8} |",
        "|-----------------------------------------+------------------------+----------------------+",
        "| GPU  Name                 Persistence-M | Bus-Id          Disp.A | Volatile Uncorr. ECC |",
        "| Fan  Temp   Perf          Pwr:Usage/Cap |           Memory-Usage | GPU-Util  Compute M. |",
        "|                                         |                        |               MIG M. |",
        "|=========================================+========================+======================|",
    ]
    for gpu in gpus:
        perf = "P0" if gpu.utilization else "P8"
        fan = f"{round(30 + gpu.utilization * 0.5)}%"
        power = f"{round(gpu.power_draw)}W / {gpu.power_limit}W"
        memory = f"{gpu.memory_used}MiB / {gpu.memory_total}MiB"
        lines += [
            f"| {gpu.index:>3}  {gpu.name[:26]:<26}      On |   00000000:{gpu.index + 1:02X}:00.0 Off |"
            f"{'Off':>21} |",
            f"| {fan:>4} {gpu.temperature:>4}C   {perf:<4} {power:>21} | {memory:>22} |"
            f" {str(gpu.utilization) + '%':>7}      Default |",
            f"|{'':41}|{'':24}|{'N/A':>21} |",
            "+-----------------------------------------+------------------------+----------------------+",
        ]
    lines += [
        "",
        bar,
        "| Processes:                                                                              |",
        "|  GPU   GI   CI        PID   Type   Process name                              GPU Memory |",
        "|        ID   ID                                                               Usage      |",
        "|=========================================================================================|",
        "|  No running processes found                                                             |",
        bar,
        "(gpuoutlet sandbox: simulated GPUs; utilisation follows this pod's CPU load)",
    ]
    return "\n".join(lines) + "\n"


@dataclass
class _Args:
    query: list[str] | None = None
    format: list[str] | None = None
    ids: list[int] | None = None
    loop: float | None = None
    list_gpus: bool = False


class _Usage(Exception):
    pass


def _parse(argv: Sequence[str]) -> _Args:
    args = _Args()
    items = list(argv)
    while items:
        item = items.pop(0)
        name, eq, value = item.partition("=")
        if name in ("--query-gpu", "--format", "-i", "--id", "-l", "--loop"):
            if not eq:
                if not items:
                    raise _Usage(f"Option {name} needs a value.")
                value = items.pop(0)
            if name == "--query-gpu":
                args.query = [f.strip() for f in value.split(",") if f.strip()]
            elif name == "--format":
                args.format = [f.strip() for f in value.split(",") if f.strip()]
            elif name in ("-i", "--id"):
                try:
                    args.ids = [int(x) for x in value.split(",")]
                except ValueError:
                    raise _Usage(f"Invalid GPU index {value!r}.") from None
            else:
                try:
                    args.loop = float(value)
                except ValueError:
                    raise _Usage(f"Invalid loop interval {value!r}.") from None
        elif item in ("-L", "--list-gpus"):
            args.list_gpus = True
        else:
            raise _Usage(f"Invalid combination of input arguments ({item!r}).")
    return args


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    try:
        args = _parse(sys.argv[1:] if argv is None else argv)
    except _Usage as exc:
        sys.stderr.write(f"{exc} Please run 'nvidia-smi -h' for help.\n")
        return 2
    spec = GpuSpec.from_environment(env)
    pod_id = env.get(ENV_POD)
    if spec is None or not pod_id:
        sys.stderr.write(_NO_DRIVER)
        return 9
    if args.query is not None:
        unknown = [f for f in args.query if f not in _FIELDS]
        if unknown or not args.query:
            sys.stderr.write(
                f'Field "{unknown[0] if unknown else ""}" is not a valid field to query.\n'
            )
            return 2
        fmt = args.format or []
        if "csv" not in fmt or set(fmt) - {"csv", "noheader", "nounits"}:
            sys.stderr.write('"--format=csv[,noheader][,nounits]" is the format to use.\n')
            return 2
    while True:
        gpus = gpu_states(spec, pod_id, measure(pod_id))
        if args.ids is not None:
            if any(i < 0 or i >= spec.count for i in args.ids):
                sys.stderr.write("No devices were found with the given index.\n")
                return 6
            gpus = [g for g in gpus if g.index in args.ids]
        if args.list_gpus:
            out = "".join(f"GPU {g.index}: {g.name} (UUID: {g.uuid})\n" for g in gpus)
        elif args.query is not None:
            fmt = args.format or []
            lines = csv_lines(
                args.query,
                gpus,
                header="noheader" not in fmt,
                units="nounits" not in fmt,
                count=spec.count,
            )
            out = "\n".join(lines) + "\n"
        else:
            out = table(gpus, time.time())
        sys.stdout.write(out)
        sys.stdout.flush()
        if args.loop is None or args.loop <= 0:
            return 0
        time.sleep(max(0.0, args.loop - SAMPLE_SECONDS))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
