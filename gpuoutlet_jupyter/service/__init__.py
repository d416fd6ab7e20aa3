"""RentalService: create, watch, stop and persist rentals; hosted by the server or in-process."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import ServiceConfig, build_service
    from .money import Spending
    from .record import RentalRecord, SSHInfo
    from .service import KernelSpecs, RentalService, RentalView, ServiceOptions

# Loaded on first use, so that `service.traits` (imported by the magics at %load_ext) does not
# pull in httpx and pydantic.
_EXPORTS = {
    "KernelSpecs": ".service",
    "RentalService": ".service",
    "RentalView": ".service",
    "ServiceOptions": ".service",
    "Spending": ".money",
    "RentalRecord": ".record",
    "SSHInfo": ".record",
    "ServiceConfig": ".config",
    "build_service": ".config",
}

__all__ = [
    "KernelSpecs",
    "RentalRecord",
    "RentalService",
    "RentalView",
    "SSHInfo",
    "ServiceConfig",
    "ServiceOptions",
    "Spending",
    "build_service",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
