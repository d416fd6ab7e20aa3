"""Thin handlers for the rentals' remote kernels: list them (long-poll), Reattach, Shut down.

Same base, authentication and JSON errors as ``handlers.py``; the work is ``ServerKernels``'.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from .auth import KernelToken
from .env import API_PATH
from .handlers import GpuOutletHandler
from .kernels import ServerKernels
from .manager import RentalsManager


class KernelsHandler(GpuOutletHandler):
    """Base: the server's kernels besides the manager."""

    kernels: ServerKernels

    def initialize(  # type: ignore[override]  # one more argument than the base
        self, manager: RentalsManager, kernel_token: KernelToken, kernels: ServerKernels
    ) -> None:
        super().initialize(manager, kernel_token)
        self.kernels = kernels

    async def listing(self, rental_id: str | None = None) -> None:
        poll = self.long_poll_args()
        since, wait = (poll.since, poll.wait) if poll is not None else (None, 0.0)
        self.reply(await self.kernels.api.kernels(rental_id=rental_id, since=since, wait=wait))


class KernelListHandler(KernelsHandler):
    """GET: every rental's remote kernels and their connection state (``?wait=&since=``)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        await self.listing()


class RentalKernelsHandler(KernelsHandler):
    """GET: one rental's remote kernels (``?wait=&since=`` long-polls)."""

    @web.authenticated
    @authorized
    async def get(self, rental_id: str) -> None:
        await self.listing(rental_id)


class ReattachHandler(KernelsHandler):
    """POST: adopt a detached kernel (its notebook gets a session on it)."""

    @web.authenticated
    @authorized
    async def post(self, wrapper: str) -> None:
        self.reply(await self.kernels.api.reattach(wrapper))


class ShutDownHandler(KernelsHandler):
    """POST: end a detached kernel and its folder on its machine."""

    @web.authenticated
    @authorized
    async def post(self, wrapper: str) -> None:
        self.reply(await self.kernels.api.shut_down(wrapper))


def kernel_routes(
    manager: RentalsManager, kernel_token: KernelToken, kernels: ServerKernels
) -> list[tuple[str, type[GpuOutletHandler], dict[str, Any]]]:
    """The kernel endpoints, relative to ``base_url`` (beside ``handlers.routes``)."""
    kwargs = {"manager": manager, "kernel_token": kernel_token, "kernels": kernels}
    kernel = rf"{API_PATH}/remote-kernels/(?P<wrapper>[^/]+)"
    return [
        (f"{API_PATH}/remote-kernels", KernelListHandler, kwargs),
        (rf"{API_PATH}/rentals/(?P<rental_id>[^/]+)/kernels", RentalKernelsHandler, kwargs),
        (rf"{kernel}/reattach", ReattachHandler, kwargs),
        (rf"{kernel}/shutdown", ShutDownHandler, kwargs),
    ]
