"""RentalsClient (sync) and AsyncRentalsClient on httpx: the one client every layer uses."""

from __future__ import annotations

import asyncio
import builtins
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, Generic, TypeVar

import httpx

from .._version import __version__
from . import contract, errors
from .contract import Endpoint
from .models import Family, Rental, RentalRequest, Wallet
from .responses import decode, field, parse, transport_error
from .retry import Attempts, RetryPolicy
from .settings import Settings, normalize_url

H = TypeVar("H", httpx.Client, httpx.AsyncClient)
UpdateCallback = Callable[[Rental], None]


def new_idempotency_key() -> str:
    """A fresh key for one create: reuse it only to retry that same create."""
    return f"gpuoutlet-jupyter-{uuid.uuid4()}"


def ready_or_raise(rental: Rental) -> bool:
    """The seed's loop body: True when running with a host; raise when it can no longer get there."""
    if rental.is_ready:
        return True
    if rental.status == "failed" or rental.is_final or rental.status == "stopping":
        raise errors.ProvisioningFailedError(rental)
    return False


class _Base(Generic[H]):
    """Settings, headers and request shaping shared by both clients; no I/O here."""

    _http: H

    def __init__(
        self,
        settings: Settings | None,
        api_url: str | None,
        sid: str | None,
        retry: RetryPolicy | None,
    ) -> None:
        settings = settings or Settings.from_env()
        if api_url is not None:
            settings = replace(settings, api_url=normalize_url(api_url))
        if sid is not None:
            settings = settings.with_sid(sid)
        self.settings = settings
        self.api_url = settings.api_url
        self.retry = retry or RetryPolicy()

    def _client_options(self) -> dict[str, Any]:
        # The cookie goes in a header of its own: a cookie jar would tie it to a domain that a
        # loopback sandbox does not have, and httpx never prints headers in reprs or errors.
        return {
            "base_url": self.api_url,
            "headers": {
                "Cookie": f"{contract.SESSION_COOKIE}={self.settings.require_sid()}",
                "Accept": "application/json",
                "User-Agent": f"gpuoutlet-jupyter/{__version__}",
            },
            "timeout": httpx.Timeout(self.settings.timeout_seconds, connect=10.0),
            "follow_redirects": False,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(api_url={self.api_url!r})"

    def _create_args(
        self, request: RentalRequest | None, fields: dict[str, Any], key: str | None
    ) -> tuple[dict[str, Any], str]:
        if request is None:
            request = RentalRequest.build(**fields)
        elif fields:
            raise TypeError("pass either a RentalRequest or keyword fields, not both")
        return request.to_wire(), key or new_idempotency_key()

    def _rental(self, data: Any) -> Rental:
        return parse(Rental, data, what="rental", api_url=self.api_url)

    def _rentals(self, data: Any) -> builtins.list[Rental]:
        items = field(data, "rentals", what="rentals list", api_url=self.api_url)
        return [self._rental(item) for item in items]

    def _families(self, data: Any) -> builtins.list[Family]:
        items = field(data, "families", what="families list", api_url=self.api_url)
        return [parse(Family, item, what="family", api_url=self.api_url) for item in items]

    def _wallet(self, data: Any) -> Wallet:
        return parse(Wallet, data, what="wallet", api_url=self.api_url)


class RentalsClient(_Base[httpx.Client]):
    """Blocking client. Use as a context manager, or call `close()`."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        api_url: str | None = None,
        sid: str | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(settings, api_url, sid, retry)
        self._http = httpx.Client(transport=transport, **self._client_options())
        self._sleep = sleep

    def __enter__(self) -> RentalsClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _call(
        self,
        endpoint: Endpoint,
        rental_id: str | None = None,
        *,
        body: dict[str, Any] | None = None,
        key: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> Any:
        path = endpoint.url_path(rental_id)
        headers = {contract.IDEMPOTENCY_HEADER: key} if key else None
        attempts = Attempts(retry or self.retry, endpoint, keyed=key is not None)
        while True:
            attempts.start()
            try:
                try:
                    response = self._http.request(endpoint.method, path, json=body, headers=headers)
                except httpx.TransportError as exc:
                    raise transport_error(exc, self.api_url) from exc
                return decode(endpoint, response, self.api_url)
            except errors.GpuOutletError as error:
                self._sleep(attempts.next_delay(error))

    def create(
        self,
        request: RentalRequest | None = None,
        *,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> Rental:
        """Create a rental (`POST /v1/rentals`); retries reuse one Idempotency-Key."""
        body, key = self._create_args(request, fields, idempotency_key)
        return self._rental(self._call(contract.CREATE, body=body, key=key))

    def get(self, rental_id: str, *, retry: RetryPolicy | None = None) -> Rental:
        """One rental (`GET /v1/rentals/:id`); `retry` overrides the client's policy for this call."""
        return self._rental(self._call(contract.GET, rental_id, retry=retry))

    def list(self) -> builtins.list[Rental]:
        """Every rental of the account (assumed `GET /v1/rentals`)."""
        return self._rentals(self._call(contract.LIST))

    def stop(self, rental_id: str) -> Rental:
        """Ask the API to stop a rental (assumed `POST /v1/rentals/:id/stop`)."""
        return self._rental(self._call(contract.STOP, rental_id))

    def families(self) -> builtins.list[Family]:
        """GPU families with prices and availability (assumed `GET /v1/families`)."""
        return self._families(self._call(contract.FAMILIES))

    def wallet(self) -> Wallet:
        """The wallet's available and reserved cents (assumed `GET /v1/wallet`)."""
        return self._wallet(self._call(contract.WALLET))

    def wait_until_ready(
        self,
        rental_id: str,
        interval: float = contract.POLL_INTERVAL_SECONDS,
        max_polls: int = contract.MAX_POLLS,
        on_update: UpdateCallback | None = None,
    ) -> Rental:
        """The seed's `waitUntilReady`: poll until running with a host, failed, or out of polls."""
        started = time.monotonic()
        rental: Rental | None = None
        for poll in range(1, max_polls + 1):
            rental = self.get(rental_id)
            if on_update is not None:
                on_update(rental)
            if ready_or_raise(rental):
                return rental
            if poll < max_polls:
                self._sleep(interval)
        assert rental is not None, "max_polls must be at least 1"
        raise errors.ProvisioningTimeoutError(
            rental, polls=max_polls, waited_seconds=time.monotonic() - started
        )


class AsyncRentalsClient(_Base[httpx.AsyncClient]):
    """The same client for asyncio code (the server extension and the service)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        api_url: str | None = None,
        sid: str | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(settings, api_url, sid, retry)
        self._http = httpx.AsyncClient(transport=transport, **self._client_options())
        self._sleep = sleep

    async def __aenter__(self) -> AsyncRentalsClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _call(
        self,
        endpoint: Endpoint,
        rental_id: str | None = None,
        *,
        body: dict[str, Any] | None = None,
        key: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> Any:
        path = endpoint.url_path(rental_id)
        headers = {contract.IDEMPOTENCY_HEADER: key} if key else None
        attempts = Attempts(retry or self.retry, endpoint, keyed=key is not None)
        while True:
            attempts.start()
            try:
                try:
                    response = await self._http.request(
                        endpoint.method, path, json=body, headers=headers
                    )
                except httpx.TransportError as exc:
                    raise transport_error(exc, self.api_url) from exc
                return decode(endpoint, response, self.api_url)
            except errors.GpuOutletError as error:
                await self._sleep(attempts.next_delay(error))

    async def create(
        self,
        request: RentalRequest | None = None,
        *,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> Rental:
        """Create a rental (`POST /v1/rentals`); retries reuse one Idempotency-Key."""
        body, key = self._create_args(request, fields, idempotency_key)
        return self._rental(await self._call(contract.CREATE, body=body, key=key))

    async def get(self, rental_id: str, *, retry: RetryPolicy | None = None) -> Rental:
        """One rental (`GET /v1/rentals/:id`); `retry` overrides the client's policy for this call."""
        return self._rental(await self._call(contract.GET, rental_id, retry=retry))

    async def list(self) -> builtins.list[Rental]:
        """Every rental of the account (assumed `GET /v1/rentals`)."""
        return self._rentals(await self._call(contract.LIST))

    async def stop(self, rental_id: str) -> Rental:
        """Ask the API to stop a rental (assumed `POST /v1/rentals/:id/stop`)."""
        return self._rental(await self._call(contract.STOP, rental_id))

    async def families(self) -> builtins.list[Family]:
        """GPU families with prices and availability (assumed `GET /v1/families`)."""
        return self._families(await self._call(contract.FAMILIES))

    async def wallet(self) -> Wallet:
        """The wallet's available and reserved cents (assumed `GET /v1/wallet`)."""
        return self._wallet(await self._call(contract.WALLET))

    async def wait_until_ready(
        self,
        rental_id: str,
        interval: float = contract.POLL_INTERVAL_SECONDS,
        max_polls: int = contract.MAX_POLLS,
        on_update: UpdateCallback | None = None,
    ) -> Rental:
        """The seed's `waitUntilReady`: poll until running with a host, failed, or out of polls."""
        started = time.monotonic()
        rental: Rental | None = None
        for poll in range(1, max_polls + 1):
            rental = await self.get(rental_id)
            if on_update is not None:
                on_update(rental)
            if ready_or_raise(rental):
                return rental
            if poll < max_polls:
                await self._sleep(interval)
        assert rental is not None, "max_polls must be at least 1"
        raise errors.ProvisioningTimeoutError(
            rental, polls=max_polls, waited_seconds=time.monotonic() - started
        )
