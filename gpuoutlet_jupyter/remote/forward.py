"""Port forwards from this machine to a pod, added to (and removed from) the shared connection.

``ssh -O forward -L 127.0.0.1:<local>:<host>:<port>`` asks the running master to listen on a
local port: no new login, and the forward lives as long as the master. The local port is one the
OS just gave us (bind to port 0); if something takes it before ssh binds it, another is tried.
While forwards exist they hold the connection open (an idle listener does not count as use for
ControlPersist), and if the master has to be reopened they are put back on the same local ports,
so a URL handed out stays valid. They all end with the rental (:meth:`PortForwarder.close`).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass
from datetime import datetime, timezone

from ..ssh.validate import validate_host, validate_port
from .connection import Hold, SharedConnection
from .errors import ConnectionClosed, ForwardError, stderr_tail

log = logging.getLogger(__name__)

LOCAL_HOST = "127.0.0.1"
_BIND_ATTEMPTS = 5


@dataclass(frozen=True)
class PortForward:
    """``127.0.0.1:<local_port>`` here reaches ``<remote_host>:<remote_port>`` on the pod."""

    rental_id: str
    remote_port: int
    local_port: int
    remote_host: str = LOCAL_HOST
    opened_at: datetime | None = None

    @property
    def spec(self) -> str:
        """The ``-L`` argument."""
        host = f"[{self.remote_host}]" if ":" in self.remote_host else self.remote_host
        return f"{LOCAL_HOST}:{self.local_port}:{host}:{self.remote_port}"

    def to_dict(self) -> dict[str, object]:
        """JSON-ready, with ``local_url``."""
        return {
            "rental_id": self.rental_id,
            "remote_host": self.remote_host,
            "remote_port": self.remote_port,
            "local_port": self.local_port,
            "local_url": self.local_url,
            "opened_at": self.opened_at.isoformat() if self.opened_at else None,
        }

    @property
    def local_url(self) -> str:
        """``http://127.0.0.1:<local port>/`` (through jupyter-server-proxy: ``proxy/<local port>/``)."""
        return f"http://{LOCAL_HOST}:{self.local_port}/"


def free_local_port() -> int:
    """A TCP port on 127.0.0.1 that the OS says is free now (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCAL_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class PortForwarder:
    """The port forwards of one rental, over its shared connection."""

    def __init__(self, connection: SharedConnection) -> None:
        self._connection = connection
        self._forwards: dict[tuple[str, int], PortForward] = {}
        self._holds: dict[tuple[str, int], Hold] = {}
        self._lock = asyncio.Lock()
        self._closed = False
        connection.add_open_hook(self._restore)

    def list(self) -> list[PortForward]:
        """The open forwards, by remote port."""
        return sorted(self._forwards.values(), key=lambda f: (f.remote_port, f.remote_host))

    def get(self, remote_port: int, remote_host: str = LOCAL_HOST) -> PortForward | None:
        return self._forwards.get((remote_host, remote_port))

    async def open(
        self, remote_port: int, *, remote_host: str = LOCAL_HOST, local_port: int | None = None
    ) -> PortForward:
        """Forward a free local port to ``remote_host:remote_port`` on the pod.

        Returns the existing forward when that pod port is already forwarded. ``remote_host``
        is where the pod's service listens as seen from the pod (``127.0.0.1`` by default; an
        address from :func:`~gpuoutlet_jupyter.remote.ports.listening_ports` otherwise).
        """
        remote_port = _checked_port(remote_port)
        remote_host = _checked_host(remote_host)
        if local_port is not None:
            local_port = _checked_port(local_port)
        self._check_open()
        # Open (or reopen) first, outside the lock: a reopen restores the other forwards.
        await self._connection.open()
        async with self._lock:
            self._check_open()
            key = (remote_host, remote_port)
            existing = self._forwards.get(key)
            if existing is not None:
                return existing
            forward = await self._add(remote_host, remote_port, local_port)
            self._forwards[key] = forward
            self._holds[key] = self._connection.hold()
            return forward

    async def _add(self, remote_host: str, remote_port: int, local_port: int | None) -> PortForward:
        last = ""
        for _ in range(1 if local_port is not None else _BIND_ATTEMPTS):
            port = local_port if local_port is not None else free_local_port()
            forward = PortForward(
                self._connection.target.rental_id,
                remote_port,
                port,
                remote_host,
                datetime.now(timezone.utc),
            )
            result = await self._connection.control("forward", "-L", forward.spec)
            if result.exit_status == 0:
                log.debug("forwarded %s for %s", forward.spec, self._connection.alias)
                return forward
            last = stderr_tail(result.stderr) or f"exit status {result.exit_status}"
            if not self._connection.is_open():
                break
        raise ForwardError(
            f"could not forward port {remote_port} of rental "
            f"{self._connection.target.rental_id} to this machine: {last}. "
            + (
                f"Local port {local_port} may be in use: leave local_port unset to get a free one"
                if local_port is not None
                else "Check that the rental is running"
            )
        )

    async def cancel(self, remote_port: int, *, remote_host: str = LOCAL_HOST) -> bool:
        """End the forward of that pod port; ``False`` if there was none."""
        remote_host = _checked_host(remote_host)
        async with self._lock:
            key = (remote_host, _checked_port(remote_port))
            forward = self._forwards.pop(key, None)
            hold = self._holds.pop(key, None)
            if forward is None:
                return False
            try:
                if self._connection.is_open():
                    result = await self._connection.control("cancel", "-L", forward.spec)
                    if result.exit_status != 0 and self._connection.is_open():
                        raise ForwardError(
                            f"could not cancel the forward of port {remote_port}: "
                            f"{stderr_tail(result.stderr)}"
                        )
            finally:
                if hold is not None:
                    hold.release()
            return True

    async def close(self) -> None:
        """End every forward (the rental stopped or the connection is being closed)."""
        self._closed = True
        for host, port in list(self._forwards):
            try:
                await self.cancel(port, remote_host=host)
            except ForwardError as exc:
                log.warning("%s", exc)

    async def _restore(self) -> None:
        """The master was reopened: put every forward back on its local port.

        Runs from inside :meth:`SharedConnection.open`, possibly while :meth:`open` of this
        object waits for it, so it must not take the lock.
        """
        for key, forward in list(self._forwards.items()):
            result = await self._connection.control("forward", "-L", forward.spec)
            if result.exit_status != 0:
                log.warning(
                    "could not restore the forward %s of %s: %s",
                    forward.spec,
                    self._connection.alias,
                    stderr_tail(result.stderr),
                )
                self._forwards.pop(key, None)
                hold = self._holds.pop(key, None)
                if hold is not None:
                    hold.release()

    def _check_open(self) -> None:
        if self._closed or self._connection.closed:
            raise ConnectionClosed(
                f"rental {self._connection.target.rental_id} has stopped: its ports cannot be "
                "forwarded any more"
            )


def _checked_port(port: object) -> int:
    try:
        return validate_port(port)
    except ValueError:
        raise ForwardError(f"{port!r} is not a port: give an integer from 1 to 65535") from None


def _checked_host(host: object) -> str:
    try:
        return validate_host(host)
    except ValueError:
        raise ForwardError(
            f"{host!r} is not an address on the pod: give an IP address such as 127.0.0.1"
        ) from None
