"""scripts/demo: the README's first command starts the sandbox and JupyterLab on the quickstart."""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
URL = re.compile(r"(http://127\.0\.0\.1:\d+/\S*)")
START_TIMEOUT = 120.0


@pytest.mark.slow
def test_demo_prints_the_quickstart_url_and_where_the_sid_is(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "HOME": str(tmp_path / "home"),
        "GPUOUTLET_DEMO_STATE": str(tmp_path / "demo"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
    }
    (tmp_path / "home").mkdir()
    proc = subprocess.Popen(
        [str(ROOT / "scripts" / "demo"), "--no-browser", "--ServerApp.port=0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    lines: list[str] = []
    url = None
    try:
        assert proc.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + START_TIMEOUT
        buffer = b""
        while url is None and time.monotonic() < deadline and proc.poll() is None:
            if not selector.select(timeout=1.0):
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            buffer += chunk
            *done, buffer = buffer.split(b"\n")
            for raw in done:
                line = raw.decode(errors="replace")
                lines.append(line)
                match = URL.search(line)
                if match and "token=" in line:
                    url = match.group(1)
        output = "\n".join(lines)
        assert url is not None, f"no URL printed:\n{output[-4000:]}"
        # The printed URL opens the quickstart (with --no-browser too), not the Launcher.
        assert "/lab/tree/notebooks/quickstart.ipynb?token=" in url
        assert httpx.get(url, timeout=30).status_code == 200
        # Where the sandbox's sid is kept is said, and the sid itself is not printed.
        info = tmp_path / "demo" / "sandbox.json"
        assert f"sid is in {info}" in output
        sid = json.loads(info.read_text())["sid"]
        assert sid not in output
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
