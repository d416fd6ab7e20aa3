"""The JSON layer's part for a rental's pod: GPU telemetry, its ports, and port forwards.

Shared by the server's handlers and the in-process host, as the rest of ``layer.py``: arguments
checked here, the service's ``pods`` called, replies validated against ``models``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..api import RequestValidationError
from ..service.pods import forward_json
from . import models

if TYPE_CHECKING:
    from ..service import RentalService

JSON = dict[str, Any]
ServiceGetter = Callable[[], Awaitable["RentalService"]]

#: The forward body's member: the pod's port.
PORT_FIELD = "port"


def parse_port(value: Any, *, field: str = PORT_FIELD) -> int:
    """A pod's TCP port, from a body member or a path segment."""
    port: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        port = value
    elif isinstance(value, str) and value.strip().isdigit():
        port = int(value.strip())
    if port is None or not 1 <= port <= 65535:
        raise RequestValidationError(
            [(field, f"must be a TCP port, a whole number from 1 to 65535 (got {value!r})")]
        )
    return port


def parse_forward(body: JSON) -> int:
    """``{"port": 7860}`` → the pod's port to forward."""
    unknown = sorted(set(body) - {PORT_FIELD})
    problems = [(k, f"is not accepted here: only {PORT_FIELD} is") for k in unknown]
    if PORT_FIELD not in body:
        problems.append((PORT_FIELD, "is required: the pod's port to open, such as 7860"))
    if problems:
        raise RequestValidationError(problems)
    return parse_port(body[PORT_FIELD])


class PodsAPI:
    """Telemetry, ports and forwards of a rental's pod, below HTTP."""

    def __init__(self, service: ServiceGetter) -> None:
        self._service = service

    async def _tracked(self, rental_id: str) -> RentalService:
        service = await self._service()
        await service.rental(rental_id)  # an id made elsewhere is fetched and tracked first
        return service

    async def telemetry(self, rental_id: str, since: int | None = None, wait: float = 0.0) -> JSON:
        """The rental's telemetry; this call is a look (the sampler runs while looks last)."""
        service = await self._tracked(rental_id)
        view = await service.pods.telemetry(rental_id, since=since, wait=wait)
        return models.TelemetryView.model_validate(view).to_json()

    async def ports(self, rental_id: str, proxy_base: str | None = None) -> JSON:
        service = await self._tracked(rental_id)
        view = await service.pods.ports(rental_id, proxy_base)
        return models.PortsView.model_validate(view).to_json()

    async def forward(self, rental_id: str, body: JSON, proxy_base: str | None = None) -> JSON:
        """Forward the pod's ``port`` to a free local port (the same one while it lasts)."""
        port = parse_forward(body)
        service = await self._tracked(rental_id)
        forward = await service.pods.forward(rental_id, port)
        return models.ForwardView.model_validate(forward_json(forward, proxy_base)).to_json()

    async def forwards(self, rental_id: str, proxy_base: str | None = None) -> JSON:
        service = await self._tracked(rental_id)
        listed = await service.pods.forwards(rental_id)
        return models.ForwardsView.model_validate(
            {"rentalId": rental_id, "forwards": [forward_json(f, proxy_base) for f in listed]}
        ).to_json()

    async def cancel_forward(
        self, rental_id: str, port: Any, proxy_base: str | None = None
    ) -> JSON:
        """End the forward of the pod's ``port``; the forwards left."""
        checked = parse_port(port)
        service = await self._tracked(rental_id)
        await service.pods.cancel_forward(rental_id, checked)
        return await self.forwards(rental_id, proxy_base)
