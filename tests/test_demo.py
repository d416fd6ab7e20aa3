"""scripts/demo: the README's first command starts the sandbox signed out and JupyterLab on the
quickstart; signing in with the code the demo prints works end to end."""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import stat
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from gpuoutlet_jupyter.api.settings import read_credentials

ROOT = Path(__file__).resolve().parent.parent
URL = re.compile(r"(http://127\.0\.0\.1:\d+/\S*)")
START_TIMEOUT = 120.0


CODE_LINE = re.compile(r"gpuoutlet sandbox: sign-in code for (\S+): (\d{6})")


class _Output:
    """The demo's output, read line by line as it comes (stdout and stderr together)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self.proc = proc
        self.lines: list[str] = []
        self._fd = proc.stdout.fileno()
        self._buffer = b""
        self._selector = selectors.DefaultSelector()
        self._selector.register(proc.stdout, selectors.EVENT_READ)

    def until(self, pattern: re.Pattern[str]) -> str:
        """Read until a line matches ``pattern``; that line (bounded by START_TIMEOUT)."""
        deadline = time.monotonic() + START_TIMEOUT
        seen = len(self.lines)
        while True:
            for line in self.lines[seen:]:
                if pattern.search(line):
                    return line
            seen = len(self.lines)
            if time.monotonic() > deadline or self.proc.poll() is not None:
                break
            if not self._selector.select(timeout=1.0):
                continue
            chunk = os.read(self._fd, 65536)
            if not chunk:
                break
            self._buffer += chunk
            *done, self._buffer = self._buffer.split(b"\n")
            self.lines += [raw.decode(errors="replace") for raw in done]
        text = "\n".join(self.lines)
        raise AssertionError(f"no line matching {pattern.pattern!r}:\n{text[-4000:]}")

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.mark.slow
def test_demo_starts_signed_out_says_where_the_code_is_and_signs_in(tmp_path: Path) -> None:
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
    out = _Output(proc)
    try:
        line = out.until(re.compile(r"http://127\.0\.0\.1:\d+/\S*token="))
        url = URL.search(line).group(1)  # type: ignore[union-attr]
        output = out.text
        # The printed URL opens the quickstart (with --no-browser too), not the Launcher.
        assert "/lab/tree/notebooks/quickstart.ipynb?token=" in url
        assert httpx.get(url, timeout=30).status_code == 200
        # Signed out, and said how to sign in and where the sandbox's codes appear.
        info = json.loads((tmp_path / "demo" / "sandbox.json").read_text())
        assert info["sid"] is None
        email = info["email"]
        assert "signed out" in output and f"%gpu_login {email}" in output
        assert "Sign in to gpuoutlet" in output
        assert f"{info['url']}/sandbox/mailbox" in output
        assert str(tmp_path / "demo" / "sandbox.log") in output

        # Signing in through the demo's Jupyter server, with the code the demo prints.
        base, token = url.split("/lab/")[0], url.split("token=")[1]
        api = f"{base}/gpuoutlet/api"
        auth = {"Authorization": f"token {token}"}
        status = httpx.get(f"{api}/status", headers=auth, timeout=30).json()
        assert status["sessionState"] == "signed_out"
        sent = httpx.post(
            f"{api}/auth/request-code", json={"email": email}, headers=auth, timeout=30
        )
        assert sent.status_code == 200, sent.text
        code_line = out.until(CODE_LINE)
        match = CODE_LINE.search(code_line)
        assert match is not None and match.group(1) == email
        signed = httpx.post(
            f"{api}/auth/verify-code",
            json={"email": email, "code": match.group(2)},
            headers=auth,
            timeout=30,
        )
        assert signed.status_code == 200, signed.text
        status = httpx.get(f"{api}/status", headers=auth, timeout=30).json()
        assert status["sessionState"] == "signed_in" and status["session"]["email"] == email
        # Kept in the demo's own file, never in the user's ~/.config/gpuoutlet.
        credentials = tmp_path / "demo" / "credentials"
        assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
        assert not (tmp_path / "home" / ".config" / "gpuoutlet").exists()
        sid = read_credentials(credentials)["sid"]
        assert sid not in out.text
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
