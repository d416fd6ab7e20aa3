"""RentalService: create, watch, stop and persist rentals; hosted by the server or in-process."""

from .record import RentalRecord, SSHInfo
from .service import KernelSpecs, RentalService, RentalView, ServiceOptions

__all__ = [
    "KernelSpecs",
    "RentalRecord",
    "RentalService",
    "RentalView",
    "SSHInfo",
    "ServiceOptions",
]
