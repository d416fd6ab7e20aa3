"""The upstream provider: allocates GPUs on listings, boots pods, and sometimes fails to."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, replace

import asyncssh

from .catalogue import Catalogue, Listing
from .faults import FaultState
from .pods import Pod, PodManager, probe_ssh
from .store import RentalRow, Tx

_BOOT_FAILURES = (
    "ECC error",
    "PCIe link down",
    "NVIDIA driver failed to load",
    "disk image checksum mismatch",
    "no DHCP lease",
)
PROBE_TIMEOUT = 2.0


def usable_authorized_keys(text: str) -> bool:
    """Whether `text` holds at least one OpenSSH public key a pod can accept."""
    try:
        asyncssh.import_authorized_keys(text)
    except (ValueError, asyncssh.KeyImportError):
        return False
    return True


@dataclass(frozen=True)
class Allocation:
    provider_host: str
    #: Sandbox time after which the provider has booted the machine.
    ready_at: float


class Provider:
    """Capacity lives in the sandbox's database (so it commits or rolls back with the rental);
    pods are real SSH servers run by `PodManager`."""

    def __init__(
        self,
        catalogue: Catalogue,
        faults: FaultState,
        pods: PodManager,
        *,
        provision_seconds: tuple[float, float],
        rng: random.Random,
    ) -> None:
        self._catalogue = catalogue
        self._faults = faults
        self._pods = pods
        self._provision = provision_seconds
        self._rng = rng
        self._placeholder_key: str | None = None

    async def allocate(self, tx: Tx, listing: Listing, gpu_count: int, now: float) -> Allocation:
        """Take `gpu_count` GPUs of `listing` and schedule the boot; runs inside the create
        transaction, so the injected latency is time the wallet lock is held."""
        latency = self._faults.current.providerLatencySeconds
        if latency > 0:
            await asyncio.sleep(latency)
        tx.use_capacity(listing.id, gpu_count)
        host = f"gpu-{listing.country.lower()}-{self._rng.randint(1, listing.hosts):02d}"
        delay = self._rng.uniform(*self._provision)
        return Allocation(provider_host=host, ready_at=now + delay)

    def release(self, tx: Tx, rental: RentalRow) -> RentalRow:
        """Give the rental's GPUs back to its listing (once)."""
        if not rental.capacity_held:
            return rental
        tx.use_capacity(rental.listing_id, -rental.gpu_count)
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

    async def start_pod(self, rental_id: str, authorized_keys: str | None, *, port: int = 0) -> Pod:
        """Start (or return) the rental's pod; it accepts the account's keys."""
        return await self._pods.start(rental_id, self._pod_keys(authorized_keys), port=port)

    def _pod_keys(self, authorized_keys: str | None) -> str:
        if authorized_keys and authorized_keys.strip():
            return authorized_keys
        # An account without a key still gets a machine that boots and answers SSH, as a
        # real provider's would; nobody holds the private half of this key, so no one logs in.
        if self._placeholder_key is None:
            key = asyncssh.generate_private_key("ssh-ed25519", comment="nobody")
            self._placeholder_key = key.export_public_key().decode()
        return self._placeholder_key

    async def is_ready(self, pod: Pod) -> bool:
        return await probe_ssh(pod.host, pod.port, timeout=PROBE_TIMEOUT)

    async def stop_pod(self, rental_id: str) -> None:
        await self._pods.stop(rental_id)

    async def close(self) -> None:
        await self._pods.close()
