"""What the user reads when a remote kernel cannot start or reconnect: why, and what to do."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..ssh.writer import ENTRY_SUFFIX, KNOWN_HOSTS_SUFFIX
from .ssh_command import OLD_PYTHON_MESSAGE
from .wrapper import ErrorKind


@dataclass(frozen=True)
class Where:
    """The rental a message is about, as the user reaches it."""

    alias: str
    python: str
    config_file: str = ""
    known_hosts_file: str = ""
    rental_id: str = ""

    @property
    def ssh(self) -> str:
        """The ssh command a person types to reach the machine."""
        if self.config_file:
            return f"ssh -F {shlex.quote(self.config_file)} {self.alias}"
        return f"ssh {self.alias}"

    @property
    def rental(self) -> str:
        return self.rental_id or self.alias

    def entry_gone(self) -> bool:
        """Whether the rental's SSH entry was removed: its entry and known_hosts, written side by
        side while it runs, are deleted together when it stops (or fails, or is gone)."""
        return entry_gone(self.known_hosts_file)


def entry_gone(known_hosts_file: str) -> bool:
    """Whether the SSH entry beside ``known_hosts_file`` (``<id>.known_hosts``, as gpuoutlet's
    SSH writer names it) is gone with it; False for a kernelspec not written that way."""
    known = Path(known_hosts_file) if known_hosts_file else None
    if known is None or not known.name.endswith(KNOWN_HOSTS_SUFFIX):
        return False
    entry = known.with_name(known.name[: -len(KNOWN_HOSTS_SUFFIX)] + ENTRY_SUFFIX)
    return not entry.exists() and not known.exists()


def rental_over(rental: str) -> str:
    """What the notebook of a kernel whose rental ended is told (nothing to restart on)."""
    return (
        f"rental {rental} was stopped: pick another kernel (Kernel › Change Kernel…). Its "
        "machine and the kernel that ran on it are gone with it."
    )


def indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def tail_note(tail: str) -> str:
    return f"\nIts output:\n{indent(tail)}" if tail else ""


def wrapper_error(where: Where, event: dict[str, Any], tail: str) -> str:
    """The wrapper's ``error`` event, explained."""
    kind = event.get("kind")
    python = str(event.get("python") or where.python)
    alias, ssh = where.alias, where.ssh
    if kind == ErrorKind.NO_IPYKERNEL:
        return (
            f"ipykernel is not installed for {python} (Python {event.get('version', '?')}) "
            f"on {alias}. Install it there, for example with\n"
            f"    {ssh} {shlex.quote(python)} -m pip install --user ipykernel\n"
            'and start the kernel again; or set "install_ipykernel": true in the '
            "kernel_provisioner config of this kernelspec to let gpuoutlet-jupyter install "
            'it into the user\'s site-packages. To use another interpreter, set "python" '
            "there."
        )
    if kind == ErrorKind.NO_PIP:
        return (
            f"ipykernel is missing on {alias} and pip is not available for "
            f"{python} to install it. Install pip or ipykernel with the machine's package "
            f"manager, e.g. `{ssh} apt-get install -y python3-pip` (or python3-ipykernel), "
            "and start the kernel again."
        )
    if kind == ErrorKind.NO_PYZMQ:
        return (
            f"pyzmq is not installed for {python} on {alias}; the kernel's keeper needs it "
            f"(ipykernel brings it). Install it with `{ssh} {shlex.quote(python)} -m pip "
            'install --user pyzmq`, or set "python" in the kernelspec\'s provisioner config '
            "to the interpreter that has ipykernel."
        )
    if kind == ErrorKind.INSTALL_FAILED:
        return (
            f"installing ipykernel for {python} on {alias} failed "
            f"({event.get('detail')}). Install it by hand with "
            f"`{ssh} {shlex.quote(python)} -m pip install --user ipykernel`.{tail_note(tail)}"
        )
    if kind == ErrorKind.FOLDER:
        return (
            f"could not create the kernel's private folder on {alias}: "
            f"{event.get('detail')}. Set remote_runtime_dir in the kernelspec's "
            "provisioner config to a writable folder with a short path."
        )
    if kind == ErrorKind.SPAWN_FAILED:
        return (
            f"could not start the kernel command {event.get('argv')} on {alias}: "
            f'{event.get("detail")}. Check "python" and "argv" in the kernelspec.'
        )
    if kind == ErrorKind.NOT_FOUND:
        return f"the kernel on {alias} is gone: it ended while no Jupyter was connected to it."
    return f"the remote kernel on {alias} failed: {event}.{tail_note(tail)}"


def early_exit(where: Where, code: object, tail: str) -> str:
    return (
        f"the kernel on {where.alias} exited with status {code} before it was ready."
        f"{tail_note(tail)}"
    )


def not_ready(where: Where, timeout: float, tail: str) -> str:
    return (
        f"the kernel on {where.alias} was not ready after {timeout:g} s "
        f"(launch_timeout).{tail_note(tail)}"
    )


def ssh_failure(where: Where, code: int | None, tail: str) -> str:
    """ssh ended before the wrapper was ready: what its last words mean."""
    alias = where.alias
    said = f"\nssh said:\n{indent(tail)}" if tail else ""
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in tail or "Host key verification failed" in tail:
        known = where.known_hosts_file or "the known_hosts file named in the ssh config"
        return (
            f"the host key of {alias} could not be verified: it is not the one recorded in "
            f"{known}, or it is unknown and the ssh config does not allow adding it. If the "
            f"rental really moved to a new machine, remove its line from {known} and start "
            f"the kernel again; otherwise do not connect.{said}"
        )
    if "Permission denied" in tail:
        return (
            f"{alias} refused the SSH key. Check that the rental was created with your "
            f"public key and that the IdentityFile in the ssh config is right.{said}"
        )
    if "Could not resolve hostname" in tail:
        if where.entry_gone():
            # Not a configuration problem: the rental ended and its alias went with it.
            return rental_over(where.rental)
        if not where.config_file:
            return (
                f"ssh cannot resolve the alias {alias}: pass the ssh config that defines it "
                f"(ssh_config_file in the kernelspec's provisioner config).{said}"
            )
        return (
            f"ssh cannot resolve the alias {alias}: {where.config_file} does not define it. "
            f"gpuoutlet-jupyter writes it in its own folder and includes that folder from "
            f"{where.config_file}: check that the Include line is still there (the rental's "
            f"card in the sidebar says where to add it), then start the kernel again.{said}"
        )
    if "Address already in use" in tail or "local forwarding" in tail:
        return (
            f"ssh could not listen on a local port for the kernel on {alias} (one was taken "
            f"meanwhile). Start the kernel again: new ports are chosen.{said}"
        )
    if OLD_PYTHON_MESSAGE in tail:
        return (
            f'{where.python!r} on {alias} is older than Python 3.8. Set "python" in the '
            f"kernelspec's provisioner config to a newer interpreter there.{said}"
        )
    if code == 127 or "not found" in tail or "No such file" in tail:
        return (
            f"the Python interpreter {where.python!r} could not run on {alias}. Set "
            f'"python" in the kernelspec\'s provisioner config to an interpreter that '
            f"exists there (e.g. python3 or /opt/conda/bin/python).{said}"
        )
    if code == 255:
        return (
            f"ssh could not connect to {alias} (status 255). Is the rental still "
            f"running? Try `{where.ssh} true` in a terminal.{said}"
        )
    return f"the kernel on {alias} ended before it was ready (ssh exited with status {code}).{said}"


def local_port_taken(port: int, channel: str, host: str) -> str:
    return (
        f"the local port {port} ({channel} channel) on {host} is already in use by another "
        "program. Start the kernel again: new ports are chosen."
    )


def streamlocal_refused(alias: str) -> str:
    return (
        f"{alias} refuses Unix socket forwarding (AllowStreamLocalForwarding); the kernel's "
        "channels are forwarded to the machine's 127.0.0.1 instead (its messages stay signed)."
    )


def replay_dropped(count: int, size: int, buffer_mb: float) -> str:
    """The notice in the notebook when the replay buffer could not keep everything."""
    return (
        f"[gpuoutlet] {count} output message{'s' if count != 1 else ''} "
        f"({size / (1 << 20):.1f} MiB) from while the connection was lost did not fit in the "
        f"replay buffer (replay_buffer_mb={buffer_mb:g}) and were dropped; the oldest went "
        "first. What follows is what the kernel printed after them.\n"
    )


def reconnecting(alias: str, attempt: int, error: str) -> str:
    why = f" (last try: {error.splitlines()[0]})" if error else ""
    return f"the kernel on {alias} lost its connection, reconnecting, attempt {attempt}{why}"


def gave_up(alias: str, why: str) -> str:
    return f"the kernel on {alias} is lost: {why}"
