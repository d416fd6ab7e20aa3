"""RentalService: create, watch, stop and persist rentals; hosted by the server or in-process."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .access import KernelSpecs
    from .build import build_service
    from .hooks import RentalHooks, StopRequest
    from .money import Spending
    from .options import ServiceConfig, ServiceOptions
    from .record import RentalRecord, SSHInfo
    from .service import RentalService
    from .tracker import RentalView

# Loaded on first use, so that `service.traits` (imported by the magics at %load_ext) does not
# pull in httpx and pydantic.
_EXPORTS = {
    "KernelSpecs": ".access",
    "RentalHooks": ".hooks",
    "StopRequest": ".hooks",
    "RentalService": ".service",
    "RentalView": ".tracker",
    "ServiceOptions": ".options",
    "Spending": ".money",
    "RentalRecord": ".record",
    "SSHInfo": ".record",
    "ServiceConfig": ".options",
    "build_service": ".build",
}

__all__ = [
    "KernelSpecs",
    "RentalHooks",
    "RentalRecord",
    "RentalService",
    "RentalView",
    "SSHInfo",
    "ServiceConfig",
    "ServiceOptions",
    "Spending",
    "StopRequest",
    "build_service",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
