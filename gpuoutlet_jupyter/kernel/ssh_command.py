"""The ssh argv of a remote kernel: BatchMode, no multiplexing, keep-alives, -L forwards, a bootstrap."""

from __future__ import annotations

import base64
import os
import re
import shlex
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..ssh.validate import validate_alias

OLD_PYTHON_MESSAGE = "gpuoutlet-jupyter needs Python 3.8 or newer on the machine"
#: What runs on the pod: read one line (the wrapper, compressed) from stdin and run it.
#: ``raw.readline`` reads byte by byte, so nothing after that line is consumed here.
BOOTSTRAP = (
    "import sys,zlib,base64;"
    f'sys.version_info<(3,8) and sys.exit("{OLD_PYTHON_MESSAGE}, not "+sys.version);'
    "exec(zlib.decompress(base64.b64decode(sys.stdin.buffer.raw.readline())))"
)
# Paths that go into an -L spec or a remote shell command unquoted.
_SAFE_REMOTE_PATH = re.compile(r"/[A-Za-z0-9._/-]+")
_MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux, 104 on macOS


class SSHCommandError(ValueError):
    """A value given for the ssh command is unusable (the message says which and why)."""


@dataclass(frozen=True)
class Forward:
    """``-L 127.0.0.1:<local_port>:<target>``: a remote Unix socket path or a remote TCP port."""

    local_port: int
    remote_path: str | None = None
    remote_port: int | None = None

    def spec(self) -> str:
        if not 0 < self.local_port < 65536:
            raise SSHCommandError(f"local port {self.local_port} is not in 1-65535")
        if self.remote_path is not None:
            check_remote_path(self.remote_path, "remote socket")
            if len(self.remote_path.encode()) > _MAX_SOCKET_PATH:
                raise SSHCommandError(
                    f"the remote socket path {self.remote_path!r} is too long for a Unix "
                    f"socket: choose a shorter remote_runtime_dir"
                )
            return f"127.0.0.1:{self.local_port}:{self.remote_path}"
        if self.remote_port is None or not 0 < self.remote_port < 65536:
            raise SSHCommandError(f"remote port {self.remote_port} is not in 1-65535")
        return f"127.0.0.1:{self.local_port}:127.0.0.1:{self.remote_port}"


def check_remote_path(path: str, what: str) -> str:
    """Return ``path`` if it is an absolute path of plain characters (safe in -L and a shell)."""
    if _SAFE_REMOTE_PATH.fullmatch(path) is None or "/../" in f"{path}/":
        raise SSHCommandError(
            f"{what} {path!r} must be an absolute path of letters, digits, '.', '_', '-' and '/'"
        )
    return path


def check_python(python: str) -> str:
    """Return ``python`` (the remote interpreter) if it can be written into a remote command."""
    if not python or python != python.strip() or any(c in python for c in "\0\n\r"):
        raise SSHCommandError(
            f"the remote python {python!r} must be a command name or path on one line, "
            "such as python3 or /opt/conda/bin/python"
        )
    return python


def remote_command(python: str) -> str:
    """The remote shell command: exec the python on the bootstrap (no secrets in it)."""
    return f"exec {shlex.quote(check_python(python))} -c {shlex.quote(BOOTSTRAP)}"


def wrapper_line(source: bytes) -> bytes:
    """The first stdin line: the wrapper's source, compressed, base64, newline-terminated."""
    return base64.b64encode(zlib.compress(source, 9)) + b"\n"


def build_ssh_argv(
    alias: str,
    *,
    python: str,
    forwards: Sequence[Forward],
    config_file: Path | str | None = None,
    known_hosts_file: Path | str | None = None,
    connect_timeout: int = 15,
    keepalive_interval: int = 10,
    keepalive_count_max: int = 2,
    ssh_executable: str = "ssh",
) -> list[str]:
    """The argv of the one ssh process of a kernel.

    No multiplexing (``ControlPath=none``: a kernel never rides on, or keeps alive, someone
    else's master), no prompts (``BatchMode``), no agent or X11 forwarding, and ssh exits at
    once if a local port cannot be bound (``ExitOnForwardFailure``). Keep-alives end it within
    ``keepalive_interval * (keepalive_count_max + 1)`` seconds of a silent server (0: none).
    """
    argv = [ssh_executable]
    if config_file is not None:
        argv += ["-F", os.fspath(config_file)]
    options = {
        "BatchMode": "yes",
        "ExitOnForwardFailure": "yes",
        "ControlMaster": "no",
        "ControlPath": "none",
        "ForwardAgent": "no",
        "ForwardX11": "no",
        "PermitLocalCommand": "no",
        "RequestTTY": "no",
        "GatewayPorts": "no",
        "ConnectTimeout": str(int(connect_timeout)),
        "ServerAliveInterval": str(int(keepalive_interval)),
        "ServerAliveCountMax": str(int(keepalive_count_max)),
        "TCPKeepAlive": "yes",
        "LogLevel": "ERROR",  # keeps "Permanently added ..." out of the kernel's log
    }
    if known_hosts_file is not None:
        options["UserKnownHostsFile"] = _quote_option(os.fspath(known_hosts_file))
        options["UpdateHostKeys"] = "no"
    argv.append("-T")
    for key, value in options.items():
        argv += ["-o", f"{key}={value}"]
    for forward in forwards:
        argv += ["-L", forward.spec()]
    argv += ["--", validate_alias(alias), remote_command(python)]
    return argv


def _quote_option(value: str) -> str:
    if any(c in value for c in '\0\n\r"'):
        raise SSHCommandError(f"{value!r} cannot be passed to ssh as an option value")
    return f'"{value}"' if any(c.isspace() for c in value) else value
