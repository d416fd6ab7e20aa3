"""What the sandbox rents out: GPU families, providers' listings per region, templates.

A listing is one provider's offer of one machine shape (family × GPU count) in one region at
one total hourly price, with a stock of such machines (sheet 2.3: "many listings per model").
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from . import ids

GPU_COUNTS = (1, 2, 4, 8)
DEFAULT_TEMPLATE = "ubuntu-24-04"


@dataclass(frozen=True)
class Template:
    id: str
    contents: str
    ports: tuple[int, ...]


#: The six templates "wired in today" (sheet 4).
TEMPLATES: Mapping[str, Template] = {
    t.id: t
    for t in (
        Template("ubuntu-24-04", "Ubuntu 24.04 with CUDA drivers only", ()),
        Template("pytorch", "Ubuntu + CUDA + PyTorch 2.x + transformers + accelerate", ()),
        Template("vllm", "vLLM inference server", ()),
        Template("ollama", "Ollama daemon, ready for `ollama pull`", (11434,)),
        Template("a1111", "AUTOMATIC1111 Stable Diffusion WebUI", (7860,)),
        Template("text-gen-webui", "oobabooga text-generation-webui", (7860,)),
    )
}


@dataclass(frozen=True)
class Family:
    id: str
    #: The canonical model code listings carry and `model=` filters on.
    model: str
    #: What nvidia-smi calls one of its GPUs.
    gpu_name: str
    vram_gb: int
    #: nvidia-smi's memory.total, MiB.
    memory_mib: int
    #: Board power limit, watts (for the simulated power.draw).
    power_watts: int
    interconnect: str


FAMILIES: Mapping[str, Family] = {
    f.id: f
    for f in (
        Family("rtx-3090", "RTX_3090", "NVIDIA GeForce RTX 3090", 24, 24576, 350, "PCIe"),
        Family("rtx-4090", "RTX_4090", "NVIDIA GeForce RTX 4090", 24, 24564, 450, "PCIe"),
        Family("l4", "L4", "NVIDIA L4", 24, 23034, 72, "PCIe"),
        Family("a6000", "RTX_A6000", "NVIDIA RTX A6000", 48, 49140, 300, "PCIe"),
        Family("l40s", "L40S", "NVIDIA L40S", 48, 46068, 350, "PCIe"),
        Family("a100-40gb", "A100_SXM_40GB", "NVIDIA A100-SXM4-40GB", 40, 40960, 400, "NVLink"),
        Family("a100-80gb", "A100_SXM_80GB", "NVIDIA A100-SXM4-80GB", 80, 81920, 400, "NVLink"),
        Family("h100-80gb", "H100_SXM_80GB", "NVIDIA H100 80GB HBM3", 80, 81559, 700, "NVLink"),
        Family("b200", "B200", "NVIDIA B200", 192, 183359, 1000, "NVLink"),
    )
}
PROVIDERS = ("vast", "runpod")

#: Display regions (what rentals and listings carry) and their ISO country codes.
REGIONS: Mapping[str, str] = {
    "US-East": "US",
    "US-Central": "US",
    "US-West": "US",
    "CA-Central": "CA",
    "DE-Frankfurt": "DE",
    "FI-Helsinki": "FI",
    "NL-Amsterdam": "NL",
    "FR-Paris": "FR",
    "GB-London": "GB",
    "SE-Stockholm": "SE",
    "PL-Warsaw": "PL",
    "JP-Tokyo": "JP",
    "SG-Singapore": "SG",
    "KR-Seoul": "KR",
    "AU-Sydney": "AU",
}
#: The broad regions filters and creates accept besides countries (sheet 2.3: us, eu, apac).
BROAD_REGIONS: Mapping[str, frozenset[str]] = {
    "us": frozenset({"US"}),
    "eu": frozenset({"DE", "FI", "FR", "GB", "NL", "PL", "SE"}),
    "apac": frozenset({"AU", "JP", "KR", "SG"}),
}
_COUNTRY_RE = re.compile(r"[A-Za-z]{2}")


@dataclass(frozen=True)
class Listing:
    id: str
    family: Family
    gpu_count: int
    #: Total hourly price of the machine (all its GPUs), cents.
    price_cents: int
    provider: str
    region: str
    region_code: str
    #: How many such machines the provider has (before any are rented).
    stock: int

    @property
    def slug(self) -> str:
        """Provider host names are derived from it: `vast-us-east-4090`."""
        return f"{self.provider}-{self.region.lower()}-{self.family.id.split('-')[-1]}"


def _offer(
    family: str, provider: str, region: str, per_gpu_cents: int, stock: Mapping[int, int]
) -> list[Listing]:
    fam = FAMILIES[family]
    return [
        Listing(
            id=ids.stable_id("lst", f"{provider}/{family}/{region}/{count}"),
            family=fam,
            gpu_count=count,
            price_cents=per_gpu_cents * count,
            provider=provider,
            region=region,
            region_code=REGIONS[region],
            stock=machines,
        )
        for count, machines in stock.items()
    ]


_WIDE = {1: 16, 2: 8, 4: 4, 8: 2}
_SOME = {1: 8, 2: 4, 4: 2, 8: 1}
_FEW = {1: 4, 2: 2}

LISTINGS: tuple[Listing, ...] = tuple(
    listing
    for offer in (
        _offer("rtx-3090", "vast", "US-Central", 32, {1: 24, 2: 8, 4: 4, 8: 2}),
        _offer("rtx-3090", "runpod", "NL-Amsterdam", 39, _SOME),
        _offer("rtx-3090", "vast", "FR-Paris", 41, _FEW),
        _offer("rtx-3090", "runpod", "SG-Singapore", 45, _FEW),
        # The sheet's own example: an RTX 4090 for 65 ¢/h (M/api-reference/rentals/get).
        _offer("rtx-4090", "vast", "US-East", 65, {1: 64, 2: 16, 4: 8, 8: 4}),
        _offer("rtx-4090", "runpod", "US-West", 69, _WIDE),
        _offer("rtx-4090", "vast", "DE-Frankfurt", 72, _WIDE),
        _offer("rtx-4090", "runpod", "FI-Helsinki", 74, _SOME),
        _offer("rtx-4090", "vast", "CA-Central", 76, _FEW),
        _offer("rtx-4090", "vast", "SG-Singapore", 79, {1: 8, 2: 4, 4: 2}),
        _offer("rtx-4090", "runpod", "JP-Tokyo", 84, {1: 4, 2: 2, 4: 1, 8: 1}),
        _offer("l4", "runpod", "US-East", 44, _WIDE),
        _offer("l4", "vast", "PL-Warsaw", 46, _SOME),
        _offer("l4", "runpod", "KR-Seoul", 52, _FEW),
        _offer("a6000", "vast", "US-East", 79, _SOME),
        _offer("a6000", "runpod", "DE-Frankfurt", 85, _SOME),
        _offer("a6000", "vast", "GB-London", 89, _FEW),
        _offer("l40s", "runpod", "US-Central", 99, _WIDE),
        _offer("l40s", "vast", "FI-Helsinki", 105, _SOME),
        _offer("l40s", "runpod", "NL-Amsterdam", 109, _FEW),
        _offer("l40s", "vast", "JP-Tokyo", 119, {1: 4, 2: 2, 4: 1}),
        _offer("a100-40gb", "vast", "US-West", 129, _SOME),
        _offer("a100-40gb", "runpod", "DE-Frankfurt", 139, {1: 4, 2: 2, 4: 1}),
        _offer("a100-80gb", "runpod", "US-East", 179, _WIDE),
        _offer("a100-80gb", "vast", "CA-Central", 185, {1: 4, 2: 2, 4: 1, 8: 1}),
        _offer("a100-80gb", "vast", "SE-Stockholm", 189, {1: 4, 2: 2, 4: 2, 8: 1}),
        _offer("a100-80gb", "runpod", "SG-Singapore", 199, _FEW),
        # The sheet's preview example: an H100 for 280 ¢/h from vast in US-East.
        _offer("h100-80gb", "vast", "US-East", 280, _WIDE),
        _offer("h100-80gb", "runpod", "US-Central", 289, _SOME),
        _offer("h100-80gb", "vast", "FI-Helsinki", 295, {1: 4, 2: 2, 4: 2, 8: 1}),
        _offer("h100-80gb", "runpod", "GB-London", 310, {1: 4, 2: 2, 4: 1, 8: 1}),
        _offer("h100-80gb", "vast", "AU-Sydney", 319, {1: 2, 2: 1}),
        _offer("h100-80gb", "runpod", "JP-Tokyo", 325, {1: 2, 2: 1, 4: 1, 8: 1}),
        # Scarce on purpose: one machine of each shape.
        _offer("b200", "runpod", "US-East", 599, {1: 1, 2: 1, 4: 1, 8: 1}),
        _offer("b200", "vast", "DE-Frankfurt", 649, {1: 1, 8: 1}),
    )
    for listing in offer
)


def region_filter(value: str) -> frozenset[str] | None:
    """The display regions a `region` value names: an ISO country code (any case), a broad
    region (us, eu, apac) or a display region (`US-East`); None if it is none of these."""
    text = value.strip()
    lowered = text.lower()
    if lowered in BROAD_REGIONS:
        countries = BROAD_REGIONS[lowered]
        return frozenset(r for r, code in REGIONS.items() if code in countries)
    for region in REGIONS:
        if region.lower() == lowered:
            return frozenset({region})
    if _COUNTRY_RE.fullmatch(text):
        # A well-formed country without listings matches nothing (model_unavailable), not an
        # error: the provider may simply have no machines there.
        return frozenset(r for r, code in REGIONS.items() if code == text.upper())
    return None


class Catalogue:
    """The listings with their stock (scaled for benchmarks), and how creates pick one."""

    def __init__(self, *, capacity_factor: int = 1) -> None:
        if capacity_factor < 1:
            raise ValueError("capacity_factor must be >= 1")
        self.listings = {listing.id: listing for listing in LISTINGS}
        self._factor = capacity_factor
        # Cheapest first; ties in catalogue order, as `GET /v1/catalog/listings` pages them.
        self._ordered = sorted(LISTINGS, key=lambda x: x.price_cents)

    def stock(self, listing: Listing) -> int:
        return listing.stock * self._factor

    def free(self, listing: Listing, used: Mapping[str, int]) -> int:
        return self.stock(listing) - used.get(listing.id, 0)

    def ordered(self) -> list[Listing]:
        return list(self._ordered)

    def matching(self, family_id: str, gpu_count: int, region: str | None) -> list[Listing]:
        """Listings of that shape in that region (None: anywhere), cheapest first."""
        regions = None if region is None else region_filter(region)
        return [
            x
            for x in self._ordered
            if x.family.id == family_id
            and x.gpu_count == gpu_count
            and (regions is None or x.region in regions)
        ]

    def cheapest_live(
        self, candidates: Iterable[Listing], used: Mapping[str, int]
    ) -> Listing | None:
        """The first candidate (they are cheapest first) with a machine free."""
        return next((c for c in candidates if self.free(c, used) > 0), None)

    def live(self, used: Mapping[str, int]) -> list[Listing]:
        return [x for x in self._ordered if self.free(x, used) > 0]


def encode_cursor(last_id: str) -> str:
    """An opaque cursor, as the sheet's example decodes: base64 of {"lastId": …}."""
    return base64.b64encode(
        json.dumps({"lastId": last_id}, separators=(",", ":")).encode()
    ).decode()


def decode_cursor(cursor: str) -> str | None:
    """The `lastId` a cursor carries, or None if it is not one of ours."""
    try:
        data = json.loads(base64.b64decode(cursor.encode(), validate=True))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    last = data.get("lastId") if isinstance(data, dict) else None
    return last if isinstance(last, str) else None
