"""Commands run on a sandbox rental's pod over a plain ssh of their own, as a user would (a busy
loop, a web server), ended by pid afterwards; and a free local port for them to listen on."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

#: One CPU core flat out on the pod: GPU 0 of the sandbox's simulation follows it.
BUSY = "exec python3 -c 'while True: pass'"


def web_server(port: int, text: str = "hello-from-pod") -> str:
    """A web server on the pod's loopback serving ``~/hello.txt``."""
    return f"cd ~ && echo {text} > hello.txt && exec python3 -m http.server {port} --bind 127.0.0.1"


def free_port() -> int:
    """A port free on this machine (the sandbox's pods run here too)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def on_pod(ssh: dict[str, Any], command: str) -> AsyncIterator[None]:
    """Run ``command`` on the pod of a rental whose ``ssh`` member is given (alias and config
    file), and end it (the pod's process by the pid it printed, then our ssh) afterwards."""
    executable = shutil.which("ssh")
    if executable is None:
        pytest.skip("the OpenSSH client is not installed")
    proc = await asyncio.create_subprocess_exec(
        executable,
        "-F",
        ssh["configFile"],
        "-o",
        "BatchMode=yes",
        "-o",
        "ControlPath=none",
        ssh["alias"],
        f"echo $$; {command}",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    remote_pid = int((await asyncio.wait_for(proc.stdout.readline(), 30)).strip())
    try:
        yield
    finally:
        # The pod runs on this machine: its process is ours to end, by the pid it printed.
        with contextlib.suppress(ProcessLookupError):
            os.kill(remote_pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
