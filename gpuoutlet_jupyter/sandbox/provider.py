"""The upstream providers (vast, runpod): they allocate machines of a listing, boot pods, and
sometimes fail to."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, replace

import asyncssh

from .catalogue import FAMILIES, Listing
from .faults import FaultState
from .pods import GpuSpec, Pod, PodManager, probe_ssh
from .store import RentalRow, Tx

_BOOT_FAILURES = (
    "ECC error",
    "PCIe link down",
    "NVIDIA driver failed to load",
    "disk image checksum mismatch",
    "no DHCP lease",
)
PROBE_TIMEOUT = 2.0


@dataclass(frozen=True)
class Allocation:
    provider_host: str
    #: Sandbox time after which the provider has booted the machine.
    ready_at: float


class Provider:
    """Stock lives in the sandbox's database (so it commits or rolls back with the rental);
    pods are real SSH servers run by `PodManager`."""

    def __init__(
        self,
        faults: FaultState,
        pods: PodManager,
        *,
        provision_seconds: tuple[float, float],
        rng: random.Random,
    ) -> None:
        self._faults = faults
        self._pods = pods
        self._provision = provision_seconds
        self._rng = rng
        self._placeholder_key: str | None = None
        self._teardowns: set[asyncio.Task[None]] = set()

    @property
    def estimated_provision_seconds(self) -> int:
        low, high = self._provision
        return max(1, round((low + high) / 2))

    async def allocate(self, tx: Tx, listing: Listing, now: float) -> Allocation:
        """Take one machine of `listing` and schedule its boot; runs inside the create
        transaction, so the injected latency is time the wallet lock is held."""
        latency = self._faults.current.providerLatencySeconds
        if latency > 0:
            await asyncio.sleep(latency)
        tx.use_stock(listing.id, 1)
        host = f"{listing.provider}-{listing.region.lower()}-{self._rng.randint(1, 120):03d}"
        return Allocation(provider_host=host, ready_at=now + self._rng.uniform(*self._provision))

    def release(self, tx: Tx, rental: RentalRow) -> RentalRow:
        """Give the rental's machine back to its listing (once)."""
        if not rental.capacity_held:
            return rental
        tx.use_stock(rental.listing_id, -1)
        return replace(rental, capacity_held=False)

    def boot_failure(self, rental: RentalRow) -> str | None:
        """The provider's error if this boot fails (rolled once per boot at the fault rate)."""
        rate = self._faults.current.providerFailureRate
        if rate <= 0 or self._rng.random() >= rate:
            return None
        reason = self._rng.choice(_BOOT_FAILURES)
        return f"provider: host {rental.provider_host} did not boot ({reason})"

    def running(self) -> list[Pod]:
        return self._pods.running()

    def pod(self, rental_id: str) -> Pod | None:
        return self._pods.get(rental_id)

    def pod_home(self, rental_id: str) -> str:
        return str(self._pods.home(rental_id))

    async def start_pod(self, rental: RentalRow, *, port: int = 0) -> Pod:
        """Start (or return) the rental's pod with the keys the account had at create."""
        family = FAMILIES[rental.family_id]
        gpus = GpuSpec(rental.gpu_count, family.gpu_name, family.memory_mib, family.power_watts)
        return await self._pods.start(
            rental.id,
            self._pod_keys(rental.authorized_keys),
            port=port,
            gpus=gpus,
            hidden_commands=self._faults.current.podHiddenCommands,
        )

    def _pod_keys(self, authorized_keys: str) -> str:
        if authorized_keys.strip():
            return authorized_keys
        # An account without a key still gets a machine that boots and answers SSH, as a
        # real provider's would; nobody holds the private half of this key, so no one logs in.
        if self._placeholder_key is None:
            key = asyncssh.generate_private_key("ssh-ed25519", comment="nobody")
            self._placeholder_key = key.export_public_key().decode()
        return self._placeholder_key

    async def is_ready(self, pod: Pod) -> bool:
        return await probe_ssh(pod.host, pod.port, timeout=PROBE_TIMEOUT)

    def terminate(self, rental_id: str) -> None:
        """Send the terminate and do not wait (the stop's "fire-and-forget"): the pod and its
        disk go away in the background; `destroy` waits for it."""
        task = asyncio.ensure_future(self._pods.destroy(rental_id))
        self._teardowns.add(task)
        task.add_done_callback(self._teardowns.discard)

    async def destroy(self, rental_id: str) -> None:
        """The pod is gone and its disk deleted once this returns."""
        await self._pods.destroy(rental_id)

    async def close(self) -> None:
        if self._teardowns:
            await asyncio.gather(*self._teardowns, return_exceptions=True)
        await self._pods.close()
