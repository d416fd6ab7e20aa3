"""Pydantic models of the catalog: listings (one provider's offer in one region) and facets."""

from __future__ import annotations

from .models import Cents, Reply


class Listing(Reply):
    """One offer of ``GET /v1/catalog/listings``: a model, a GPU count and a price, somewhere."""

    id: str
    #: Canonical model code, e.g. ``H100_SXM_80GB``.
    model: str
    #: The family id a create takes, e.g. ``h100-80gb``.
    family: str
    vram_gb: float
    gpu_count: int
    #: The whole hourly price of this listing (all its GPUs), the rate a create locks.
    price_per_hour_cents: Cents
    provider_code: str
    #: Display region, e.g. ``US-East``.
    region: str
    #: ISO country code, e.g. ``US``.
    region_code: str | None = None
    interconnect: str | None = None


class ListingsPage(Reply):
    """One page of listings, cheapest first."""

    listings: list[Listing]
    next_cursor: str | None = None


class FacetCount(Reply):
    code: str
    count: int


class PriceRange(Reply):
    min_cents: Cents
    max_cents: Cents


class Facets(Reply):
    """``GET /v1/catalog/facets``: what the catalog holds, for filters (cached 30 s upstream)."""

    models: list[FacetCount]
    regions: list[FacetCount]
    providers: list[FacetCount]
    price_range: PriceRange | None = None
