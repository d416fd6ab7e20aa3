"""Which ports a pod listens on (``ss -ltn``, or ``/proc/net/tcp`` without ``ss``), and which
ports its template is known to serve."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass

from .connection import SharedConnection
from .errors import PortsError, stderr_tail

#: One command: ``ss`` when the pod has it, else the kernel's own tables.
LISTEN_COMMAND = (
    "if command -v ss >/dev/null 2>&1; then echo '#ss'; ss -ltnp 2>/dev/null || ss -ltn; "
    "else echo '#proc'; cat /proc/net/tcp /proc/net/tcp6 2>/dev/null; true; fi"
)
_LISTEN_STATE = "0A"  # TCP_LISTEN in /proc/net/tcp
_USERS_RE = re.compile(r'users:\(\("([^"]*)",pid=(\d+)')
_WILDCARDS = {"0.0.0.0", "::", "*", ""}


@dataclass(frozen=True)
class ListeningPort:
    """A TCP port something listens on, on the pod."""

    port: int
    address: str  #: the listening address (``0.0.0.0``, ``::``, ``127.0.0.1``, ...)
    process: str | None = None  #: the program's name when ``ss -p`` could tell
    pid: int | None = None

    @property
    def connect_host(self) -> str:
        """Where a forward should connect on the pod to reach it (loopback for wildcards)."""
        if self.address in _WILDCARDS:
            return "127.0.0.1"
        return self.address.removeprefix("::ffff:") if "." in self.address else self.address


@dataclass(frozen=True)
class KnownPort:
    """A port a template is known to serve."""

    port: int
    label: str
    #: Whether the vendor sheet states it; ``False`` when it is the software's own default.
    documented: bool = True


#: The six templates of the vendor sheet (§4, "Templates") and their ports. The sheet gives
#: none for ubuntu-24-04 and pytorch, 11434 for ollama, 7860 for a1111 and text-gen-webui, and
#: "not stated" for vllm: 8000 is what ``vllm serve`` listens on by default, marked undocumented.
TEMPLATE_PORTS: Mapping[str, tuple[KnownPort, ...]] = {
    "ubuntu-24-04": (),
    "pytorch": (),
    "vllm": (KnownPort(8000, "vLLM OpenAI-compatible API (vLLM's default port)", False),),
    "ollama": (KnownPort(11434, "Ollama API"),),
    "a1111": (KnownPort(7860, "Stable Diffusion web UI (AUTOMATIC1111)"),),
    "text-gen-webui": (KnownPort(7860, "text-generation-webui"),),
}


def known_ports(template_id: str | None) -> tuple[KnownPort, ...]:
    """The ports the template is known to serve (none for an unknown or missing template)."""
    return TEMPLATE_PORTS.get(template_id or "ubuntu-24-04", ())


def _split_address(text: str) -> tuple[str, int] | None:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        return None
    host = host.strip("[]").split("%", 1)[0]  # "[::1]" and "127.0.0.53%lo"
    return host, int(port)


def parse_ss(text: str) -> list[ListeningPort]:
    """Parse ``ss -ltn[p]`` output (with or without its header line)."""
    found = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[0] in ("State", "Netid"):
            continue
        # "LISTEN 0 128 127.0.0.1:8888 0.0.0.0:* users:((...))": the local address is 4th.
        offset = 1 if fields[0] == "tcp" else 0
        if len(fields) < 4 + offset:
            continue
        split = _split_address(fields[3 + offset])
        if split is None:
            continue
        users = _USERS_RE.search(line)
        found.append(
            ListeningPort(
                split[1],
                split[0],
                users.group(1) if users else None,
                int(users.group(2)) if users else None,
            )
        )
    return _unique(found)


def _proc_address(hex_address: str) -> str:
    raw = bytes.fromhex(hex_address)
    # The kernel prints each 32-bit word in host (little-endian) byte order.
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def parse_proc_net_tcp(text: str) -> list[ListeningPort]:
    """Parse ``/proc/net/tcp`` and ``/proc/net/tcp6`` (listening sockets only)."""
    found = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[0] == "sl" or fields[3] != _LISTEN_STATE:
            continue
        address, _, port = fields[1].partition(":")
        try:
            found.append(ListeningPort(int(port, 16), _proc_address(address)))
        except ValueError:
            continue
    return _unique(found)


def _unique(ports: list[ListeningPort]) -> list[ListeningPort]:
    seen: dict[tuple[int, str], ListeningPort] = {}
    for port in ports:
        seen.setdefault((port.port, port.address), port)
    return sorted(seen.values(), key=lambda p: (p.port, p.address))


async def listening_ports(
    connection: SharedConnection, *, timeout: float = 15.0
) -> list[ListeningPort]:
    """The TCP ports something listens on, on the pod (one command over the shared connection)."""
    result = await connection.run(LISTEN_COMMAND, timeout=timeout)
    text = result.text
    head, _, body = text.partition("\n")
    if result.exit_status != 0 or head.strip() not in ("#ss", "#proc"):
        raise PortsError(
            f"could not list the pod's listening ports: "
            f"{stderr_tail(result.stderr) or stderr_tail(text) or 'no output'}"
        )
    return parse_ss(body) if head.strip() == "#ss" else parse_proc_net_tcp(body)
