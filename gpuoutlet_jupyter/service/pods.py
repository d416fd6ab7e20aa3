"""What the service does on its rentals' pods besides kernels: telemetry, ports, GPU activity.

Everything rides on the host's one :class:`~gpuoutlet_jupyter.remote.RemoteManager` (one shared
SSH connection per running rental, made by ``build_service`` and closed with the service); a
rental's connection, telemetry sampler and port forwards end when it ends (the ``ended`` hook).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..api import GpuOutletError
from ..remote import (
    NoNvidiaSmi,
    PortForward,
    RemoteError,
    RemoteManager,
    RentalRemote,
    SSHTarget,
    known_ports,
)
from .looks import TelemetryLooks, telemetry_view
from .record import RentalRecord

log = logging.getLogger(__name__)

FindRecord = Callable[[str], "RentalRecord | None"]


class PodNotReachableError(GpuOutletError):
    """Asked of a rental's pod when there is no pod to reach (not running, no SSH entry)."""

    #: The REST error's code (the same attribute as the client's API errors).
    code = "pod_not_reachable"

    def __init__(self, message: str, *, rental_id: str, state: str) -> None:
        super().__init__(message)
        self.rental_id = rental_id
        self.state = state


@dataclass(frozen=True)
class GpuLook:
    """What the idle stop saw of a rental's GPUs since its last look."""

    #: Epoch seconds of the latest sample at or over the threshold (None: none was).
    busy_at: float | None
    #: The highest utilisation of any GPU in those samples (None: no sample).
    peak: float | None
    #: Why the GPUs could not be seen (no nvidia-smi, the pod unreachable), else None.
    problem: str | None = None


class Pods:
    """The pods of one RentalService's rentals, reached over their shared connections."""

    def __init__(self, remotes: RemoteManager, find: FindRecord) -> None:
        self.remotes = remotes
        self._find = find
        # A look outlasts its request by three samples: a viewer polling every interval keeps it.
        self.looks = TelemetryLooks(grace=3 * remotes.telemetry_interval)
        #: Loop time of the newest sample the idle stop has seen, for each rental.
        self._gpu_looked: dict[str, float] = {}

    # Reaching a pod.

    def target(self, record: RentalRecord) -> SSHTarget:
        """The rental's SSH target, or PodNotReachableError saying why there is none."""
        if not record.watched or record.rental.status != "running":
            state = "gone" if record.gone else record.rental.status
            where = "no longer reported by the API" if state == "gone" else state
            raise PodNotReachableError(
                f"Rental {record.id} is {where}: only a running rental's pod can be reached "
                "(its GPUs watched, its ports opened).",
                rental_id=record.id,
                state=state,
            )
        ssh = record.ssh
        if ssh is None or not ssh.alias or not ssh.config_file:
            why = ssh.error if ssh is not None and ssh.error else "its SSH entry is not written yet"
            raise PodNotReachableError(
                f"Rental {record.id} cannot be reached over SSH: {why}",
                rental_id=record.id,
                state="no_ssh",
            )
        return SSHTarget(record.id, ssh.alias, Path(ssh.config_file))

    async def remote(self, rental_id: str) -> tuple[RentalRecord, RentalRemote]:
        record = self._find(rental_id)
        if record is None:
            raise PodNotReachableError(
                f"Rental {rental_id} is not tracked here: %gpu_rentals lists your rentals.",
                rental_id=rental_id,
                state="unknown",
            )
        return record, await self.remotes.rental(self.target(record))

    # Telemetry.

    async def telemetry(
        self, rental_id: str, *, since: int | None = None, wait: float = 0.0
    ) -> dict[str, Any]:
        """The rental's GPU telemetry, sampled while someone looks (this call is a look)."""
        record, remote = await self.remote(rental_id)
        look = self.looks.take(record.id, remote.telemetry, wait)
        if since is not None:
            await self.looks.wait(look, since, wait)
        running = self._find(rental_id) is record and record.watched
        return telemetry_view(record.id, look, running=running)

    # Ports.

    async def ports(self, rental_id: str, proxy_base: str | None = None) -> dict[str, Any]:
        """The template's known ports, the ports listening on the pod, and the open forwards."""
        record, remote = await self.remote(rental_id)
        listening = await remote.listening_ports()
        forwards = {f.remote_port: f for f in remote.forwards.list()}
        open_ports = {p.port for p in listening}
        return {
            "rentalId": record.id,
            "templateId": record.template_id,
            "known": [
                {
                    "port": k.port,
                    "label": k.label,
                    "documented": k.documented,
                    "listening": k.port in open_ports,
                }
                for k in known_ports(record.template_id)
            ],
            "listening": [
                {"port": p.port, "address": p.address, "process": p.process}
                for p in listening
                if p.port != _SSHD_PORT
            ],
            "forwards": [forward_json(f, proxy_base) for f in forwards.values()],
        }

    async def forward(self, rental_id: str, port: int) -> PortForward:
        """Forward a free local port to the pod's ``port`` (the same one while it lasts)."""
        _, remote = await self.remote(rental_id)
        host = "127.0.0.1"
        for listening in await remote.listening_ports():
            if listening.port == port:
                host = listening.connect_host
                if host == "127.0.0.1":
                    break
        existing = remote.forwards.get(port, host)
        return existing or await remote.forwards.open(port, remote_host=host)

    async def forwards(self, rental_id: str) -> list[PortForward]:
        record = self._find(rental_id)
        remote = self.remotes.get(rental_id) if record is not None else None
        return remote.forwards.list() if remote is not None else []

    async def cancel_forward(self, rental_id: str, port: int) -> bool:
        """End the forwards of the pod's ``port``; False when there was none."""
        remote = self.remotes.get(rental_id)
        if remote is None:
            return False
        ended = False
        for forward in remote.forwards.list():
            if forward.remote_port == port:
                ended |= await remote.forwards.cancel(port, remote_host=forward.remote_host)
        return ended

    # GPU activity, for the idle stop.

    async def gpu_look(self, record: RentalRecord, threshold: float) -> GpuLook:
        """The rental's GPUs since the last look: a sample now unless a viewer's sampler has
        fresh ones. Never raises: a pod that cannot be read is a problem, not activity."""
        try:
            _, remote = await self.remote(record.id)
        except (PodNotReachableError, RemoteError) as exc:
            return GpuLook(None, None, str(exc))
        monitor = remote.telemetry
        if monitor.unavailable is not None:
            return GpuLook(None, None, monitor.unavailable)
        loop = asyncio.get_running_loop()
        now = loop.time()
        since = self._gpu_looked.get(record.id, float("-inf"))
        latest = monitor.history.latest()
        if latest is None or now - latest.monotonic > 1.5 * monitor.interval:
            try:
                await monitor.sample_once()
            except NoNvidiaSmi as exc:
                monitor.unavailable = str(exc)  # said once, then never asked again
                return GpuLook(None, None, monitor.unavailable)
            except (RemoteError, OSError) as exc:
                log.warning(
                    "rental %s: could not read its GPUs for the idle stop: %s", record.id, exc
                )
                return GpuLook(None, None, f"could not read its GPUs: {exc}")
        history = monitor.history.snapshots()
        # The samples since the last look (a viewer's sampler may have taken several); none
        # new when looks come faster than samples: the latest still says what the GPUs do.
        seen = [s for s in history if s.monotonic > since] or history[-1:]
        if seen:
            self._gpu_looked[record.id] = seen[-1].monotonic
        peaks = [u for s in seen if (u := s.max_utilization) is not None]
        busy = [s for s in seen if (s.max_utilization or 0.0) >= threshold]
        return GpuLook(
            max(s.at.timestamp() for s in busy) if busy else None, max(peaks) if peaks else None
        )

    # Lifecycle.

    async def ended(self, record: RentalRecord) -> None:
        """The rental stopped, failed or vanished: its look, forwards and connection go."""
        self.looks.drop(record.id)
        self._gpu_looked.pop(record.id, None)
        await self.remotes.close_rental(record.id)

    async def close(self) -> None:
        """The host is going away: every look ends and every connection closes."""
        self.looks.close()
        await self.remotes.close()


#: A pod's own sshd is no web app worth a forward.
_SSHD_PORT = 22


def forward_json(forward: PortForward, proxy_base: str | None = None) -> dict[str, Any]:
    """A forward as the REST API shows it; ``proxy_base``: ``{base_url}proxy/`` when
    jupyter-server-proxy serves this Jupyter server."""
    return {
        "rentalId": forward.rental_id,
        "remotePort": forward.remote_port,
        "remoteHost": forward.remote_host,
        "localPort": forward.local_port,
        "localUrl": forward.local_url,
        "proxyPath": f"{proxy_base}{forward.local_port}/" if proxy_base else None,
        "openedAt": forward.opened_at.isoformat().replace("+00:00", "Z")
        if forward.opened_at
        else None,
    }
