"""Benchmark the cost of ``%load_ext gpuoutlet_jupyter`` against a bare IPython start.

Usage: python bench/load_ext.py [--runs N] [--json]

Each run is a fresh interpreter, ``python -m IPython --quick --no-banner -c CELL`` with a
private IPYTHONDIR, measured three ways: wall time from spawn to exit, the child's CPU time
(user + system, from wait4: far less sensitive to other load on the machine), and, inside the
child, the time of the ``%load_ext`` call alone. Variants are interleaved run by run so noise
hits them alike; medians are reported.

* bare:       ``pass``: IPython starting, nothing else
* autoreload: ``%load_ext autoreload``: IPython's own extension, for reference
* load_ext:   ``%load_ext gpuoutlet_jupyter``: what a notebook's first cell pays
* first use:  ``%load_ext`` plus importing what the first magic loads (client, httpx, pydantic,
              the service, ipywidgets), with no network: the cost deferred to first use.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TIMED = (
    "import time as _t\n_s = _t.perf_counter()\n{body}\nprint('TIMED', _t.perf_counter() - _s)\n"
)
VARIANTS = {
    "bare": "pass",
    "autoreload": "get_ipython().run_line_magic('load_ext', 'autoreload')",
    "load_ext": "get_ipython().run_line_magic('load_ext', 'gpuoutlet_jupyter')",
    "first use": (
        "get_ipython().run_line_magic('load_ext', 'gpuoutlet_jupyter')\n"
        "import gpuoutlet_jupyter.notebook.core, gpuoutlet_jupyter.notebook.rest\n"
        "import gpuoutlet_jupyter.notebook.inprocess, gpuoutlet_jupyter.notebook.widgets"
    ),
}


def run_once(body: str, env: dict[str, str]) -> tuple[float, float, float]:
    """(wall s, child CPU s, in-child timed s) of one fresh IPython running ``body``."""
    argv = [sys.executable, "-m", "IPython", "--quick", "--no-banner", "--colors=NoColor"]
    argv += ["-c", TIMED.format(body=body)]
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv} failed: {err.decode(errors='replace')}")
    timed = next(
        float(line.split()[1]) for line in out.decode().splitlines() if line.startswith("TIMED")
    )
    return wall, usage.ru_utime + usage.ru_stime, timed


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="runs per variant (default 21)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="bench-load-ext-") as tmp:
        env = dict(os.environ)
        env["IPYTHONDIR"] = str(Path(tmp) / "ipython")
        # This checkout, whether or not it is installed.
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        for body in VARIANTS.values():  # warm the OS caches and write .pyc files once
            run_once(body, env)
        for _ in range(args.runs):
            for name, body in VARIANTS.items():
                samples[name].append(run_once(body, env))

    def median_ms(name: str, index: int) -> float:
        return statistics.median(s[index] for s in samples[name]) * 1000

    rows = {
        name: {
            "wall_ms": median_ms(name, 0),
            "cpu_ms": median_ms(name, 1),
            "call_ms": median_ms(name, 2),
        }
        for name in VARIANTS
    }
    bare = rows["bare"]
    for row in rows.values():
        row["wall_ratio"] = row["wall_ms"] / bare["wall_ms"]
        row["cpu_ratio"] = row["cpu_ms"] / bare["cpu_ms"]
        # The extension's own share of a start: its call against the whole bare process.
        row["call_vs_bare_cpu"] = row["call_ms"] / bare["cpu_ms"]
    if args.json:
        result = {
            "runs": args.runs,
            "python": sys.version.split()[0],
            "variants": {n: {k: round(v, 3) for k, v in r.items()} for n, r in rows.items()},
        }
        print(json.dumps(result, indent=2))
        return
    print(
        f"{args.runs} runs per variant, Python {sys.version.split()[0]}, medians; "
        "call = the %load_ext (and imports) inside the process"
    )
    print(
        f"{'variant':<11} {'wall ms':>8} {'ratio':>6} {'CPU ms':>8} {'ratio':>6} "
        f"{'call ms':>8} {'call/bare CPU':>13}"
    )
    for name, r in rows.items():
        print(
            f"{name:<11} {r['wall_ms']:>8.1f} {r['wall_ratio']:>5.2f}x {r['cpu_ms']:>8.1f} "
            f"{r['cpu_ratio']:>5.2f}x {r['call_ms']:>8.1f} {r['call_vs_bare_cpu']:>12.1%}"
        )


if __name__ == "__main__":
    main()
