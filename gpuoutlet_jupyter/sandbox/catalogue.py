"""What the sandbox rents out: GPU families, per-country listings, templates and regions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

GPU_COUNTS = (1, 2, 4, 8)
DEFAULT_TEMPLATE = "ubuntu-24-04"
TEMPLATES = ("ubuntu-24-04", "pytorch", "tensorflow", "jax", "cuda-12")

#: Broader regions a create may name instead of a country.
REGIONS: Mapping[str, tuple[str, ...]] = {
    "EU": ("DE", "FI", "FR", "GB", "NL", "PL", "SE"),
    "NA": ("CA", "US"),
    "APAC": ("AU", "JP", "KR", "SG"),
}


@dataclass(frozen=True)
class Family:
    id: str
    display_name: str
    gpu_memory_gb: int


@dataclass(frozen=True)
class Listing:
    """One provider offer: a family in one country at one per-GPU price, with a GPU capacity."""

    id: str
    family_id: str
    country: str
    price_per_gpu_hour_cents: int
    capacity_gpus: int
    #: Hosts are named gpu-<country>-<nn>; each holds 8 GPUs.
    hosts: int


FAMILIES: tuple[Family, ...] = (
    Family("rtx-4090", "NVIDIA GeForce RTX 4090", 24),
    Family("rtx-3090", "NVIDIA GeForce RTX 3090", 24),
    Family("l4", "NVIDIA L4", 24),
    Family("a6000", "NVIDIA RTX A6000", 48),
    Family("l40s", "NVIDIA L40S", 48),
    Family("a100-80gb", "NVIDIA A100 80GB", 80),
    Family("h100-80gb", "NVIDIA H100 80GB", 80),
)


def _listing(family_id: str, country: str, cents: int, capacity: int) -> Listing:
    compact = family_id.replace("-", "")
    return Listing(
        id=f"{country.lower()}-{compact}",
        family_id=family_id,
        country=country,
        price_per_gpu_hour_cents=cents,
        capacity_gpus=capacity,
        hosts=max(1, capacity // 8),
    )


LISTINGS: tuple[Listing, ...] = (
    _listing("rtx-4090", "FI", 65, 24),
    _listing("rtx-4090", "US", 69, 32),
    _listing("rtx-4090", "CA", 72, 8),
    _listing("rtx-4090", "DE", 74, 16),
    _listing("rtx-4090", "SG", 79, 8),
    _listing("rtx-4090", "JP", 84, 8),
    _listing("rtx-3090", "US", 39, 16),
    _listing("rtx-3090", "NL", 42, 16),
    _listing("rtx-3090", "FR", 44, 8),
    _listing("rtx-3090", "SG", 49, 8),
    _listing("l4", "US", 44, 16),
    _listing("l4", "PL", 46, 8),
    _listing("l4", "KR", 52, 8),
    _listing("a6000", "US", 79, 16),
    _listing("a6000", "DE", 85, 8),
    _listing("a6000", "GB", 89, 8),
    _listing("l40s", "US", 99, 16),
    _listing("l40s", "FI", 105, 16),
    _listing("l40s", "NL", 109, 8),
    _listing("l40s", "JP", 119, 8),
    _listing("a100-80gb", "US", 179, 16),
    _listing("a100-80gb", "CA", 185, 8),
    _listing("a100-80gb", "DE", 189, 8),
    _listing("a100-80gb", "SE", 189, 8),
    _listing("a100-80gb", "SG", 199, 8),
    _listing("h100-80gb", "US", 280, 16),
    _listing("h100-80gb", "FI", 295, 8),
    _listing("h100-80gb", "GB", 310, 8),
    _listing("h100-80gb", "AU", 319, 8),
    _listing("h100-80gb", "JP", 325, 8),
)

FAMILY_IDS = tuple(f.id for f in FAMILIES)
COUNTRIES = tuple(sorted({listing.country for listing in LISTINGS}))
#: Every accepted `region` value: the countries with listings, then the broader regions.
REGION_CODES = COUNTRIES + tuple(REGIONS)


class Catalogue:
    """The listings with their capacities (scaled for benchmarks) and the matching rules."""

    def __init__(self, *, capacity_factor: int = 1) -> None:
        if capacity_factor < 1:
            raise ValueError("capacity_factor must be >= 1")
        self.families = {f.id: f for f in FAMILIES}
        self.listings = {listing.id: listing for listing in LISTINGS}
        self._factor = capacity_factor

    def capacity(self, listing: Listing) -> int:
        return listing.capacity_gpus * self._factor

    def listings_for(self, family_id: str) -> list[Listing]:
        return [listing for listing in LISTINGS if listing.family_id == family_id]

    def matching(self, family_id: str, region: str | None) -> list[Listing]:
        """The family's listings in `region` (country or broader region; None: anywhere)."""
        countries = _countries(region)
        return [
            listing
            for listing in self.listings_for(family_id)
            if countries is None or listing.country in countries
        ]

    def cheapest(
        self, candidates: Iterable[Listing], gpu_count: int, used: Mapping[str, int]
    ) -> Listing | None:
        """The cheapest candidate with `gpu_count` free GPUs; ties go to catalogue order."""
        free = [c for c in candidates if self.capacity(c) - used.get(c.id, 0) >= gpu_count]
        return min(free, key=lambda c: c.price_per_gpu_hour_cents, default=None)


def _countries(region: str | None) -> frozenset[str] | None:
    if region is None:
        return None
    if region in REGIONS:
        return frozenset(REGIONS[region])
    return frozenset((region,))
