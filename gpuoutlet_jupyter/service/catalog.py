"""GPU families derived from gpuoutlet's catalog listings (the API has no families endpoint).

A listing is one provider's offer of one model with a GPU count, in one region, at one price
(the whole listing's hourly price). A family gathers the listings of one ``family`` id: its
cheapest price per GPU, memory, regions, providers, and per GPU count the cheapest offer.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..api import Listing, format_cents
from ..api.errors import UnknownFamilyError


@dataclass(frozen=True)
class Offer:
    """What one GPU count of a family costs at its cheapest, and where."""

    gpu_count: int
    #: The cheapest listing's whole hourly price (what a create of this count would lock).
    price_per_hour_cents: int
    listings: int
    regions: tuple[str, ...]
    providers: tuple[str, ...]
    #: Where each listing is, as (display region, ISO code), cheapest first.
    places: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Family:
    """One GPU family as the catalog offers it now."""

    id: str
    #: Canonical model codes (``H100_SXM_80GB``).
    models: tuple[str, ...]
    vram_gb: float
    #: The cheapest price per GPU over every listing, rounded up to a whole cent.
    min_price_per_gpu_hour_cents: int
    #: Display regions (``US-East``).
    regions: tuple[str, ...]
    #: ISO country codes, the values a create's ``region`` takes (``US``).
    region_codes: tuple[str, ...]
    providers: tuple[str, ...]
    offers: tuple[Offer, ...]
    listings: int

    def offer(self, gpu_count: int) -> Offer | None:
        """The cheapest offer for that many GPUs, if any listing has it."""
        return next((o for o in self.offers if o.gpu_count == gpu_count), None)


def _per_gpu(listing: Listing) -> int:
    count = max(1, listing.gpu_count)
    return -(-listing.price_per_hour_cents // count)  # ceiling: never understate a price


def families_from(listings: Iterable[Listing]) -> list[Family]:
    """Families from listings, cheapest per GPU first."""
    grouped: dict[str, list[Listing]] = {}
    for listing in listings:
        grouped.setdefault(listing.family, []).append(listing)
    families = []
    for family_id, members in grouped.items():
        offers = []
        for count in sorted({m.gpu_count for m in members}):
            same = [m for m in members if m.gpu_count == count]
            offers.append(
                Offer(
                    gpu_count=count,
                    price_per_hour_cents=min(m.price_per_hour_cents for m in same),
                    listings=len(same),
                    regions=_distinct(m.region for m in sorted(same, key=_price)),
                    providers=_distinct(m.provider_code for m in sorted(same, key=_price)),
                    places=tuple(
                        dict.fromkeys(
                            (m.region, m.region_code or "") for m in sorted(same, key=_price)
                        )
                    ),
                )
            )
        ordered = sorted(members, key=_price)
        families.append(
            Family(
                id=family_id,
                models=_distinct(m.model for m in ordered),
                vram_gb=max(m.vram_gb for m in members),
                min_price_per_gpu_hour_cents=min(_per_gpu(m) for m in members),
                regions=_distinct(m.region for m in ordered),
                region_codes=_distinct(m.region_code for m in ordered if m.region_code),
                providers=_distinct(m.provider_code for m in ordered),
                offers=tuple(offers),
                listings=len(members),
            )
        )
    families.sort(key=lambda f: (f.min_price_per_gpu_hour_cents, f.id))
    return families


def _price(listing: Listing) -> tuple[int, str]:
    return (listing.price_per_hour_cents, listing.id)


def _distinct(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def check_family(family_id: str, families: Sequence[Family]) -> Family:
    """The family with that id; UnknownFamilyError (with close matches) when there is none."""
    for family in families:
        if family.id == family_id:
            return family
    known = [f.id for f in families]
    close = difflib.get_close_matches(family_id, known, n=3, cutoff=0.5)
    raise UnknownFamilyError(family_id, known=known, suggestions=close)


def alternatives(
    families: Sequence[Family], *, family_id: str, gpu_count: int, region: str | None
) -> list[str]:
    """What has capacity now when a request found none: the same family elsewhere, then others."""
    found: list[str] = []
    same = next((f for f in families if f.id == family_id), None)
    if same is not None:
        offer = same.offer(gpu_count)
        if offer is not None and region is not None:
            wanted = region.lower()
            others = list(
                dict.fromkeys(
                    name
                    for name, code in offer.places
                    if wanted not in (name.lower(), code.lower())
                )
            )
            if others:
                found.append(f"{family_id} ×{gpu_count} in {', '.join(others[:4])}")
        counts = [o.gpu_count for o in same.offers if o.gpu_count != gpu_count]
        if counts:
            found.append(f"{family_id} with {' or '.join(map(str, counts))} GPUs")
    for family in families:
        if family.id == family_id or family.offer(gpu_count) is None:
            continue
        offer = family.offer(gpu_count)
        assert offer is not None
        found.append(f"{family.id} ×{gpu_count} from {format_cents(offer.price_per_hour_cents)}/h")
        if len(found) >= 5:
            break
    return found
