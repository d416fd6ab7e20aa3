"""One :class:`RentalRemote` per running rental: its shared connection, forwards and telemetry.

``build_service`` makes the host's ONE :class:`RemoteManager` and gives it to the RentalService
(``service.remotes``), which closes it with itself and runs :meth:`RemoteManager.rental_ended`
as an ``ended`` hook: the telemetry sampler, every forward and the shared connection end with
the rental. Whatever else uses the pods (the saver, telemetry, forwards) is handed that one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .connection import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    SharedConnection,
    SSHTarget,
)
from .controlpath import default_control_dir
from .forward import PortForwarder
from .ignore import IGNORE_FILE
from .ports import ListeningPort, listening_ports
from .progress import ProgressCallback
from .sync import DEFAULT_REMOTE_DIR, Method, SyncResult, sync
from .telemetry import DEFAULT_HISTORY_SECONDS, DEFAULT_INTERVAL, TelemetryMonitor

log = logging.getLogger(__name__)


class RentalRemote:
    """Everything this machine does on one rental's pod besides its kernels."""

    def __init__(
        self,
        connection: SharedConnection,
        *,
        telemetry_interval: float = DEFAULT_INTERVAL,
        history_seconds: float = DEFAULT_HISTORY_SECONDS,
    ) -> None:
        self.connection = connection
        self.forwards = PortForwarder(connection)
        self.telemetry = TelemetryMonitor(
            connection, interval=telemetry_interval, history_seconds=history_seconds
        )

    @property
    def rental_id(self) -> str:
        return self.connection.target.rental_id

    @property
    def target(self) -> SSHTarget:
        return self.connection.target

    @property
    def closed(self) -> bool:
        return self.connection.closed

    async def sync_up(
        self,
        local_dir: Path | str,
        remote_dir: str = DEFAULT_REMOTE_DIR,
        *,
        excludes: Sequence[str] = (),
        use_default_excludes: bool = True,
        ignore_file: str = IGNORE_FILE,
        max_bytes: int | None = None,
        timeout: float | None = None,
        progress: ProgressCallback | None = None,
        method: Method = "auto",
        bwlimit: float | None = None,
        overwrite_newer: bool = False,
    ) -> SyncResult:
        """:func:`~gpuoutlet_jupyter.remote.sync.sync` ``"up"`` over this rental's connection."""
        return await sync(
            self.connection,
            "up",
            local_dir,
            remote_dir,
            excludes=excludes,
            use_default_excludes=use_default_excludes,
            ignore_file=ignore_file,
            max_bytes=max_bytes,
            timeout=timeout,
            progress=progress,
            method=method,
            bwlimit=bwlimit,
            overwrite_newer=overwrite_newer,
        )

    async def sync_down(
        self,
        local_dir: Path | str,
        remote_dir: str = DEFAULT_REMOTE_DIR,
        *,
        excludes: Sequence[str] = (),
        use_default_excludes: bool = True,
        ignore_file: str = IGNORE_FILE,
        max_bytes: int | None = None,
        timeout: float | None = None,
        progress: ProgressCallback | None = None,
        method: Method = "auto",
        bwlimit: float | None = None,
        overwrite_newer: bool = False,
    ) -> SyncResult:
        """:func:`~gpuoutlet_jupyter.remote.sync.sync` ``"down"`` over this rental's connection."""
        return await sync(
            self.connection,
            "down",
            local_dir,
            remote_dir,
            excludes=excludes,
            use_default_excludes=use_default_excludes,
            ignore_file=ignore_file,
            max_bytes=max_bytes,
            timeout=timeout,
            progress=progress,
            method=method,
            bwlimit=bwlimit,
            overwrite_newer=overwrite_newer,
        )

    async def listening_ports(self) -> list[ListeningPort]:
        return await listening_ports(self.connection)

    async def close(self) -> None:
        """The rental stopped: end telemetry, every forward, and the connection, for good."""
        await self.telemetry.close()
        with contextlib.suppress(Exception):
            await self.forwards.close()
        await self.connection.close()


class RemoteManager:
    """The :class:`RentalRemote` of every rental this process reaches. One event loop."""

    def __init__(
        self,
        control_dir: Path | str | None = None,
        *,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        telemetry_interval: float = DEFAULT_INTERVAL,
        history_seconds: float = DEFAULT_HISTORY_SECONDS,
        ssh_executable: str = "ssh",
    ) -> None:
        self.control_dir = Path(control_dir) if control_dir is not None else default_control_dir()
        self.idle_timeout = idle_timeout
        self.connect_timeout = connect_timeout
        self.telemetry_interval = telemetry_interval
        self.history_seconds = history_seconds
        self._ssh = ssh_executable
        self._rentals: dict[str, RentalRemote] = {}

    def get(self, rental_id: str) -> RentalRemote | None:
        """The rental's remote, if one was made and not closed."""
        return self._rentals.get(rental_id)

    async def rental(self, target: SSHTarget) -> RentalRemote:
        """The remote of ``target``'s rental, made on first use (nothing connects until used).

        If the rental's SSH target changed (its alias was rewritten with another config file),
        the old remote is closed and a new one made.
        """
        existing = self._rentals.get(target.rental_id)
        if existing is not None and existing.target == target and not existing.closed:
            return existing
        if existing is not None:
            await existing.close()
        remote = RentalRemote(
            SharedConnection(
                target,
                control_dir=self.control_dir,
                idle_timeout=self.idle_timeout,
                connect_timeout=self.connect_timeout,
                ssh_executable=self._ssh,
            ),
            telemetry_interval=self.telemetry_interval,
            history_seconds=self.history_seconds,
        )
        self._rentals[target.rental_id] = remote
        return remote

    async def close_rental(self, rental_id: str) -> None:
        """The rental stopped (or failed): close its remote for good. Idempotent."""
        remote = self._rentals.pop(rental_id, None)
        if remote is not None:
            await remote.close()

    async def rental_ended(self, record: Any) -> None:
        """A ``RentalHooks.ended`` hook: the rental (anything with an ``id``) ended, so its
        remote closes (hooks that still use the connection go before it)."""
        await self.close_rental(str(record.id))

    async def close(self) -> None:
        """Close every rental's remote (the host is shutting down)."""
        remotes, self._rentals = list(self._rentals.values()), {}
        results = await asyncio.gather(*(r.close() for r in remotes), return_exceptions=True)
        for remote, result in zip(remotes, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("closing the remote of rental %s: %s", remote.rental_id, result)

    def rental_ids(self) -> list[str]:
        return sorted(self._rentals)
