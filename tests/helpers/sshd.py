"""A real OpenSSH sshd on a free loopback port, started and stopped by tests and benchmarks."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

SSHD_PATHS = ("/usr/sbin/sshd", "/usr/local/sbin/sshd")
START_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0
# sshd's privilege-separation folder; a fresh machine (or container) does not have it.
PRIVSEP_DIR = Path("/run/sshd")


class SSHDUnavailable(RuntimeError):
    """sshd is not installed or cannot run here (the reason says which)."""


@dataclass
class SSHD:
    """A running sshd: where it listens, its host key, and how to stop it."""

    host: str
    port: int
    pid: int
    workdir: Path
    host_key_pub: str  #: ``ssh-ed25519 AAAA...`` (no comment)
    log_path: Path
    proc: subprocess.Popen[bytes]

    def known_hosts_line(self) -> str:
        """The line OpenSSH writes for this server in a known_hosts file."""
        return f"[{self.host}]:{self.port} {self.host_key_pub}\n"

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        """SIGTERM the listener (by the pid in its PidFile), SIGKILL it if it lingers."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(STOP_TIMEOUT)


def sshd_unavailable_reason() -> str | None:
    """Why no test sshd can run here, or None when one can."""
    if not any(os.access(path, os.X_OK) for path in SSHD_PATHS):
        return "sshd is not installed (apt-get install -y openssh-server)"
    if shutil.which("ssh-keygen") is None:
        return "ssh-keygen is not installed"
    if os.geteuid() != 0:
        return "the test sshd runs as root"
    return None


def _sshd_binary() -> str:
    for path in SSHD_PATHS:
        if os.access(path, os.X_OK):
            return path
    raise SSHDUnavailable("sshd is not installed (apt-get install -y openssh-server)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _make_host_key(workdir: Path) -> tuple[Path, str]:
    key = workdir / "ssh_host_ed25519_key"
    if not key.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(key)],
            check=True,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
        )
    public = key.with_name(key.name + ".pub").read_text(encoding="utf-8").split()
    return key, f"{public[0]} {public[1]}"


def _banner_ready(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            return sock.recv(8).startswith(b"SSH-")
    except OSError:
        return False


def start_sshd(
    workdir: Path,
    authorized_keys: str,
    *,
    options: Mapping[str, str] | None = None,
    attempts: int = 5,
) -> SSHD:
    """Start ``sshd -D -e -f <cfg>`` on 127.0.0.1:<free port>, accepting ``authorized_keys``.

    ``options`` override or extend the config (``{"AllowStreamLocalForwarding": "no"}``).
    The host key is made once per ``workdir`` and kept, so a restart presents the same key.
    """
    reason = sshd_unavailable_reason()
    if reason is not None:
        raise SSHDUnavailable(reason)
    workdir.mkdir(parents=True, exist_ok=True)
    PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    host_key, host_key_pub = _make_host_key(workdir)
    keys_file = workdir / "authorized_keys"
    keys_file.write_text(authorized_keys.strip() + "\n", encoding="utf-8")
    keys_file.chmod(0o600)
    last_log = ""
    # A free port can be taken between the probe and sshd's bind: try another one then.
    for attempt in range(attempts):
        port = _free_port()
        pid_file = workdir / "sshd.pid"
        with contextlib.suppress(FileNotFoundError):
            pid_file.unlink()
        config = {
            "ListenAddress": f"127.0.0.1:{port}",
            "HostKey": str(host_key),
            "PidFile": str(pid_file),
            "AuthorizedKeysFile": str(keys_file),
            "UsePAM": "no",
            "PasswordAuthentication": "no",
            "KbdInteractiveAuthentication": "no",
            "PubkeyAuthentication": "yes",
            "PermitRootLogin": "prohibit-password",
            "StrictModes": "no",
            "AllowTcpForwarding": "yes",
            "AllowStreamLocalForwarding": "yes",
            "AllowAgentForwarding": "no",
            "X11Forwarding": "no",
            "PrintMotd": "no",
            "PrintLastLog": "no",
            "MaxStartups": "50",
            "MaxSessions": "50",
            "LogLevel": "INFO",
            **(options or {}),
        }
        config_path = workdir / "sshd_config"
        config_path.write_text(
            "".join(f"{key} {value}\n" for key, value in config.items()), encoding="utf-8"
        )
        log_path = workdir / f"sshd.{attempt}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [_sshd_binary(), "-D", "-e", "-f", str(config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            if pid_file.exists() and _banner_ready(port):
                break
            time.sleep(0.02)
        if proc.poll() is None and pid_file.exists():
            pid = int(pid_file.read_text(encoding="ascii").strip())
            if pid != proc.pid:  # -D: sshd never forks away, so the two must agree
                proc.kill()
                proc.wait()
                raise SSHDUnavailable(
                    f"sshd's PidFile says {pid}, but it was started as {proc.pid}"
                )
            return SSHD("127.0.0.1", port, pid, workdir, host_key_pub, log_path, proc)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        last_log = log_path.read_text(encoding="utf-8", errors="replace")
    raise SSHDUnavailable(f"sshd did not start after {attempts} attempts; its log:\n{last_log}")


@contextlib.contextmanager
def running_sshd(
    workdir: Path, authorized_keys: str, *, options: Mapping[str, str] | None = None
) -> Iterator[SSHD]:
    """:func:`start_sshd` as a context manager that stops it."""
    server = start_sshd(workdir, authorized_keys, options=options)
    try:
        yield server
    finally:
        server.stop()


def process_alive(pid: int | None) -> bool:
    """Whether ``pid`` is a live process on this machine (the sshd's "remote" side too)."""
    if pid is None:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] != b"Z"


def process_cmdlines() -> dict[int, bytes]:
    """Every process's command line (NUL-separated), to look for secrets in argv."""
    found: dict[int, bytes] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                found[int(entry.name)] = (entry / "cmdline").read_bytes()
    return found
