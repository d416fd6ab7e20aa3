"""The local iopub port of a remote kernel: its messages, once each and in order, across reconnects.

Jupyter's clients subscribe to a PUB socket bound here, on the kernel manager's ``iopub_port``;
it lives as long as the kernel manager, so the clients never see a connection drop. Upstream, a
DEALER per connection reaches the keeper's replay channel through the ssh forward: every message
comes with its sequence number, is acknowledged once published, and after a reconnect the keeper
sends what follows the last one published, so nothing is lost or shown twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from typing import Any

import zmq
import zmq.asyncio
from jupyter_client.session import Session

from . import messages
from .wrapper import DELIMITER, Replay, number, read_number

# Messages published before an acknowledgement goes back (and at the end of every burst).
ACK_EVERY = 256
# Generous: a client that lags behind a replay must not lose its output to the queue limit.
PUB_HWM = 200_000


class IopubRelay:
    """Publishes the keeper's sequenced iopub messages on ``127.0.0.1:<iopub_port>``."""

    def __init__(
        self,
        context: zmq.asyncio.Context,
        iopub_port: int,
        *,
        key: bytes,
        signature_scheme: str,
        buffer_mb: float,
        log: logging.Logger | logging.LoggerAdapter[Any],
    ) -> None:
        self.context = context
        self.log = log
        self.buffer_mb = buffer_mb
        self.session = Session(key=key, signature_scheme=signature_scheme, username="gpuoutlet")
        self.pub = context.socket(zmq.PUB)
        self.pub.setsockopt(zmq.LINGER, 0)
        self.pub.setsockopt(zmq.SNDHWM, PUB_HWM)
        try:
            self.pub.bind(f"tcp://127.0.0.1:{iopub_port}")
        except zmq.ZMQError:
            self.pub.close(linger=0)  # taken by another program: the caller chooses anew
            raise
        self.last_seq = 0
        self.last_cum = 0
        self.published = 0
        self.dropped = 0
        self._dealer: zmq.asyncio.Socket | None = None
        self._task: asyncio.Task[None] | None = None
        self._notice: tuple[int, int] | None = None
        self._unacked = 0

    def attach(self, replay_port: int, *, from_now: bool = False) -> None:
        """Read from the keeper through ``replay_port`` (a new connection: the old one goes).

        ``from_now``: an adopted kernel, whose buffered output belongs to clients long gone.
        """
        self.detach()
        dealer = self.context.socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.setsockopt(zmq.IDENTITY, secrets.token_hex(8).encode())
        dealer.connect(f"tcp://127.0.0.1:{replay_port}")
        if from_now:
            dealer.send_multipart([Replay.FROM_NOW])
        else:
            dealer.send_multipart([Replay.RESUME, number(self.last_seq), number(self.last_cum)])
        self._dealer = dealer
        self._task = asyncio.create_task(self._read(dealer))

    def detach(self) -> None:
        """The connection is gone: stop reading (what was not acknowledged stays buffered)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        dealer, self._dealer = self._dealer, None
        if dealer is not None:
            dealer.close(linger=0)

    def close(self) -> None:
        self.detach()
        self.pub.close(linger=0)

    async def _read(self, dealer: zmq.asyncio.Socket) -> None:
        try:
            while True:
                frames = await dealer.recv_multipart()
                self._handle(frames)
                # The rest of the burst without waiting, then one acknowledgement for it.
                for _ in range(ACK_EVERY):
                    try:
                        frames = await dealer.recv_multipart(flags=zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self._handle(frames)
                if self._unacked:
                    self._unacked = 0
                    await dealer.send_multipart([Replay.ACK, number(self.last_seq)])
        except asyncio.CancelledError:
            raise
        except zmq.ZMQError as exc:
            if exc.errno != zmq.ENOTSOCK:
                self.log.warning("the iopub relay stopped: %s", exc)

    def _handle(self, frames: list[bytes]) -> None:
        kind = frames[0] if frames else b""
        if kind == Replay.MESSAGE and len(frames) > 3:
            seq = read_number(frames[1])
            if seq <= self.last_seq:
                return  # already published (sent again after a reconnect)
            body = frames[3:]
            if self._notice is not None:
                self._publish_notice(body)
            self.pub.send_multipart(body, flags=zmq.NOBLOCK)
            self.last_seq = seq
            self.last_cum = read_number(frames[2]) + sum(len(f) for f in body)
            self.published += 1
            self._unacked += 1
        elif kind == Replay.DROPPED and len(frames) > 2:
            count, size = read_number(frames[1]), read_number(frames[2])
            self.last_seq += count
            self.last_cum += size
            self.dropped += count
            self._notice = (count, size)
            self.log.warning(
                "%d iopub messages (%d bytes) did not fit in the replay buffer while the "
                "connection was lost (replay_buffer_mb=%g); the oldest were dropped",
                count,
                size,
                self.buffer_mb,
            )

    def _publish_notice(self, body: list[bytes]) -> None:
        """Say in the cell that was running what the buffer lost (as its parent's stderr)."""
        count, size = self._notice or (0, 0)
        self._notice = None
        parent: dict[str, Any] = {}
        with contextlib.suppress(ValueError, IndexError):
            parent = json.loads(body[body.index(DELIMITER) + 3])
        text = messages.replay_dropped(count, size, self.buffer_mb)
        msg = self.session.msg("stream", {"name": "stderr", "text": text}, parent=parent)
        self.pub.send_multipart(self.session.serialize(msg), flags=zmq.NOBLOCK)


# Requests that go unanswered across a dropped connection are sent again; the keeper drops a
# request it has already passed to the kernel, so none runs twice.
REQUEST_CHANNELS = ("shell_port", "control_port", "stdin_port")
# Requests without a reply (nothing tells they arrived: not sent again).
NO_REPLY = frozenset({"comm_open", "comm_msg", "comm_close", "input_reply"})
MAX_UNANSWERED = 1000


def header_of(frames: list[bytes], offset: int) -> dict[str, Any]:
    """The JSON frame ``offset`` after the delimiter (2: header, 3: parent header)."""
    try:
        value = json.loads(frames[frames.index(DELIMITER) + offset])
    except (ValueError, IndexError):
        return {}
    return value if isinstance(value, dict) else {}


class RequestRelay:
    """The shell, control and stdin ports of a remote kernel, held here across reconnects.

    Clients talk to ROUTERs bound on the kernel manager's ports; their messages go upstream
    through DEALERs (one identity for all three: the kernel routes an input request by the shell
    request's identities) to the keeper's ends of the forwards. Requests not yet answered are
    kept and sent again after a reconnect: one written into a connection that had died unseen
    would be lost otherwise.
    """

    def __init__(
        self,
        context: zmq.asyncio.Context,
        ports: dict[str, int],
        *,
        log: logging.Logger | logging.LoggerAdapter[Any],
    ) -> None:
        self.context = context
        self.log = log
        self.identity = b"gpuoutlet-" + secrets.token_hex(8).encode()
        self.fronts: dict[str, zmq.asyncio.Socket] = {}
        for name in REQUEST_CHANNELS:
            front = context.socket(zmq.ROUTER)
            front.setsockopt(zmq.LINGER, 0)
            # A client's sockets may share an identity (a kernel manager and its client do):
            # the newest connection gets the replies, as with the kernel's own sockets.
            front.setsockopt(zmq.ROUTER_HANDOVER, 1)
            self.fronts[name] = front
            try:
                front.bind(f"tcp://127.0.0.1:{ports[name]}")
            except zmq.ZMQError:
                for bound in self.fronts.values():  # taken: let go of every port bound so far
                    bound.close(linger=0)
                raise
        self.ups: dict[str, zmq.asyncio.Socket] = {}
        self.unanswered: dict[str, dict[str, list[bytes]]] = {n: {} for n in REQUEST_CHANNELS}
        self.resent = 0
        self._tasks = [asyncio.create_task(self._from_clients(name)) for name in REQUEST_CHANNELS]
        self._up_tasks: list[asyncio.Task[None]] = []

    def attach(self, upstream: dict[str, int]) -> None:
        """Reach the keeper through these local ports (a new connection: the old one goes)."""
        self.detach()
        for name in REQUEST_CHANNELS:
            up = self.context.socket(zmq.DEALER)
            up.setsockopt(zmq.LINGER, 0)
            up.setsockopt(zmq.IDENTITY, self.identity)
            up.connect(f"tcp://127.0.0.1:{upstream[name]}")
            self.ups[name] = up
            self._up_tasks.append(asyncio.create_task(self._from_kernel(name, up)))
        for name in REQUEST_CHANNELS:
            for frames in list(self.unanswered[name].values()):
                self.resent += 1
                self._send_up(name, frames)

    def detach(self) -> None:
        for task in self._up_tasks:
            task.cancel()
        self._up_tasks = []
        for up in self.ups.values():
            up.close(linger=0)
        self.ups = {}

    def forget(self) -> None:
        """The kernel exited: its unanswered requests must not reach the next one."""
        for table in self.unanswered.values():
            table.clear()

    def close(self) -> None:
        self.detach()
        for task in self._tasks:
            task.cancel()
        for front in self.fronts.values():
            front.close(linger=0)

    def _send_up(self, name: str, frames: list[bytes]) -> None:
        up = self.ups.get(name)
        if up is None:
            return  # kept: sent when a connection is back
        with contextlib.suppress(zmq.ZMQError):
            up.send_multipart(frames, flags=zmq.NOBLOCK)

    async def _from_clients(self, name: str) -> None:
        front = self.fronts[name]
        table = self.unanswered[name]
        try:
            while True:
                frames = await front.recv_multipart()
                header = header_of(frames, 2)
                msg_id = header.get("msg_id")
                if isinstance(msg_id, str) and header.get("msg_type") not in NO_REPLY:
                    table[msg_id] = frames
                    if len(table) > MAX_UNANSWERED:
                        del table[next(iter(table))]
                self._send_up(name, frames)
        except asyncio.CancelledError:
            raise
        except zmq.ZMQError as exc:
            if exc.errno != zmq.ENOTSOCK:
                self.log.warning("the %s relay stopped: %s", name, exc)

    async def _from_kernel(self, name: str, up: zmq.asyncio.Socket) -> None:
        front = self.fronts[name]
        table = self.unanswered[name]
        try:
            while True:
                frames = await up.recv_multipart()
                parent = header_of(frames, 3).get("msg_id")
                if isinstance(parent, str):
                    table.pop(parent, None)
                with contextlib.suppress(zmq.ZMQError):
                    front.send_multipart(frames, flags=zmq.NOBLOCK)
        except asyncio.CancelledError:
            raise
        except zmq.ZMQError as exc:
            if exc.errno != zmq.ENOTSOCK:
                self.log.warning("the %s relay stopped: %s", name, exc)
