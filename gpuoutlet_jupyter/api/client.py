"""RentalsClient (sync) and AsyncRentalsClient on httpx: the one client every layer uses.

Every request goes to an endpoint listed in ``contract`` (a hook refuses any other before it
is sent). Replies become the models of ``models``, ``account`` and ``listings``; refusals become
the errors of ``errors``. Lists are followed page by page to the end. A create is sent once:
the API has no idempotency key, so it is never retried here.
"""

from __future__ import annotations

import asyncio
import builtins
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from http.cookies import CookieError, SimpleCookie
from typing import Any, Generic, Protocol, TypeVar

import httpx
from pydantic import BaseModel, SecretStr

from .._version import __version__
from . import contract, errors, redact
from .account import Balance, CodeRequested, LoggedOut, Session, SignIn, SSHKey, SSHKeyList
from .contract import MAX_PAGE_SIZE, Endpoint
from .listings import Facets, Listing, ListingsPage
from .models import (
    STATUSES,
    CreatedRental,
    Meter,
    Preview,
    Rental,
    RentalRequest,
    RentalsPage,
    StopResult,
)
from .responses import decode, parse, transport_error
from .retry import Attempts, RetryPolicy
from .settings import Settings, normalize_url

H = TypeVar("H", httpx.Client, httpx.AsyncClient)
P = TypeVar("P", RentalsPage, ListingsPage)
M = TypeVar("M", bound=BaseModel)
UpdateCallback = Callable[[Rental], None]

# httpcore traces headers at DEBUG; the session cookie is taken out of those lines.
redact.install()

#: A list longer than this many pages is taken for a cursor that never ends.
_MAX_PAGES = 10_000


def ready_or_raise(rental: Rental) -> bool:
    """The documented loop body: True when running with a host; raise when it can no longer get there."""
    if rental.is_ready:
        return True
    if rental.is_final or rental.status == "stopping":
        raise errors.ProvisioningFailedError(rental)
    return False


def _sid_from(response: httpx.Response, api_url: str) -> SecretStr:
    """The ``sid`` of the ``Set-Cookie`` headers, straight into a SecretStr (never logged)."""
    for header in response.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(header)
        except CookieError:
            continue
        morsel = jar.get(contract.SESSION_COOKIE)
        if morsel is not None and morsel.value:
            return SecretStr(morsel.value)
    raise errors.MalformedResponseError(
        f"The rentals API at {api_url} accepted the code but sent no `{contract.SESSION_COOKIE}` "
        "cookie, so there is no session to keep. Ask for a new code and try again.",
        status_code=response.status_code,
        url=api_url,
    )


class _Pages(Generic[P]):
    """Cursor bookkeeping of one list walk: a cursor seen twice means a loop, not more data."""

    def __init__(self, what: str, api_url: str) -> None:
        self.what = what
        self.api_url = api_url
        self.cursor: str | None = None
        self._seen: set[str] = set()
        self.pages = 0

    def next(self, page: P) -> bool:
        """Record a page; True when there is another to fetch."""
        self.pages += 1
        cursor = page.next_cursor
        if not cursor:
            return False
        if cursor in self._seen or self.pages >= _MAX_PAGES:
            raise errors.MalformedResponseError(
                f"The rentals API at {self.api_url} keeps answering the {self.what} list with "
                "the same page cursor, so the list never ends. This is on the API's side; try "
                "again shortly.",
                status_code=200,
                url=self.api_url,
            )
        self._seen.add(cursor)
        self.cursor = cursor
        return True


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
        self._base_path = httpx.URL(self.api_url).path.rstrip("/")

    def _client_options(self) -> dict[str, Any]:
        # The cookie goes in a header of its own: a cookie jar would tie it to a domain that a
        # loopback sandbox does not have, and httpx never prints headers in reprs or errors.
        headers = {
            "Accept": "application/json",
            "User-Agent": f"gpuoutlet-jupyter/{__version__}",
        }
        if self.settings.sid is not None and self.settings.sid.get_secret_value():
            headers["Cookie"] = f"{contract.SESSION_COOKIE}={self.settings.require_sid()}"
        return {
            "base_url": self.api_url,
            "headers": headers,
            "timeout": httpx.Timeout(self.settings.timeout_seconds, connect=10.0),
            "follow_redirects": False,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(api_url={self.api_url!r})"

    # The contract, checked on the request actually sent (whatever built it).

    def _check_request(self, request: httpx.Request) -> None:
        path = request.url.path
        if self._base_path and path.startswith(self._base_path):
            path = path[len(self._base_path) :]
        contract.check_request(request.method, path)

    def _prepare(self, endpoint: Endpoint) -> None:
        if endpoint.session:
            self.settings.require_sid()

    def _forget_cookies(self) -> None:
        # Set-Cookie (verify-code, logout, a sliding refresh) must not linger in a jar: the
        # session is the one in the settings, and the sid stays where it belongs.
        self._http.cookies.clear()

    # Shaping requests and replies.

    @staticmethod
    def _request(request: RentalRequest | None, fields: dict[str, Any]) -> RentalRequest:
        if request is None:
            return RentalRequest.build(**fields)
        if fields:
            raise TypeError("pass either a RentalRequest or keyword fields, not both")
        return request

    @staticmethod
    def _list_params(status: str | None, cursor: str | None, page_size: int) -> dict[str, Any]:
        if status is not None and status not in STATUSES:
            raise errors.RequestValidationError(
                [("status", f"must be one of {', '.join(STATUSES)} (got {status!r})")],
                what="rentals query",
            )
        params: dict[str, Any] = {"pageSize": _page_size(page_size)}
        if status:
            params["status"] = status
        if cursor:
            params["cursor"] = cursor
        return params

    @staticmethod
    def _listing_params(
        filters: dict[str, Any], cursor: str | None, page_size: int
    ) -> dict[str, Any]:
        allowed = {"model", "minVramGb", "gpuCount", "region", "maxPricePerHourCents"}
        unknown = sorted(set(filters) - allowed)
        if unknown:
            raise errors.RequestValidationError(
                [
                    (name, f"is not a listings filter ({', '.join(sorted(allowed))})")
                    for name in unknown
                ],
                what="listings query",
            )
        params: dict[str, Any] = {k: v for k, v in filters.items() if v is not None}
        params["pageSize"] = _page_size(page_size)
        if cursor:
            params["cursor"] = cursor
        return params

    def _parse(self, model: type[M], data: Any, what: str) -> M:
        return parse(model, data, what=what, api_url=self.api_url)


def _page_size(size: int) -> int:
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise errors.RequestValidationError(
            [("pageSize", f"must be from 1 to {MAX_PAGE_SIZE} (got {size})")], what="list query"
        )
    return size


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
        self._http = httpx.Client(
            transport=transport,
            event_hooks={
                "request": [self._check_request],
                "response": [lambda _r: self._forget_cookies()],
            },
            **self._client_options(),
        )
        self._sleep = sleep

    def __enter__(self) -> RentalsClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _send(
        self,
        endpoint: Endpoint,
        resource_id: str | None = None,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        retry: RetryPolicy | None = None,
    ) -> tuple[Any, httpx.Response]:
        self._prepare(endpoint)
        path = endpoint.url_path(resource_id)
        attempts = Attempts(retry or self.retry, endpoint)
        while True:
            attempts.start()
            try:
                try:
                    response = self._http.request(endpoint.method, path, json=body, params=params)
                except httpx.TransportError as exc:
                    raise transport_error(exc, self.api_url) from exc
                return decode(endpoint, response, self.api_url, resource_id), response
            except errors.GpuOutletError as error:
                self._sleep(attempts.next_delay(error))

    def _call(self, endpoint: Endpoint, resource_id: str | None = None, **kwargs: Any) -> Any:
        return self._send(endpoint, resource_id, **kwargs)[0]

    # Auth.

    def me(self) -> Session:
        """Who is signed in, and when the session ends (``GET /v1/auth/me``)."""
        return self._parse(Session, self._call(contract.ME), "session")

    def request_code(self, email: str, *, intent: str | None = None) -> CodeRequested:
        """Have a 6-digit sign-in code mailed (``POST /v1/auth/request-code``)."""
        body = {"email": email, **({"intent": intent} if intent else {})}
        return self._parse(CodeRequested, self._call(contract.REQUEST_CODE, body=body), "reply")

    def verify_code(self, email: str, code: str) -> SignIn:
        """Trade the code for a session: the reply's user and expiry, and the new sid."""
        data, response = self._send(contract.VERIFY_CODE, body={"email": email, "code": code})
        session = self._parse(Session, data, "session")
        return SignIn(session=session, sid=_sid_from(response, self.api_url))

    def logout(self) -> LoggedOut:
        """End the session upstream (``POST /v1/auth/logout``); its sid answers 401 afterwards."""
        return self._parse(LoggedOut, self._call(contract.LOGOUT), "reply")

    # Money and offers.

    def balance(self) -> Balance:
        """The wallet (``GET /v1/billing/balance``)."""
        return self._parse(Balance, self._call(contract.BALANCE), "balance")

    def listings_page(
        self, *, cursor: str | None = None, page_size: int = MAX_PAGE_SIZE, **filters: Any
    ) -> ListingsPage:
        """One page of catalog listings, cheapest first."""
        params = self._listing_params(filters, cursor, page_size)
        return self._parse(
            ListingsPage, self._call(contract.LISTINGS, params=params), "listings page"
        )

    def listings(self, **filters: Any) -> builtins.list[Listing]:
        """Every catalog listing matching ``filters`` (``model``, ``region``, ...), all pages."""
        pages: _Pages[ListingsPage] = _Pages("listings", self.api_url)
        found: builtins.list[Listing] = []
        while True:
            page = self.listings_page(cursor=pages.cursor, **filters)
            found.extend(page.listings)
            if not pages.next(page):
                return found

    def facets(self) -> Facets:
        """What the catalog holds, for filters (``GET /v1/catalog/facets``)."""
        return self._parse(Facets, self._call(contract.FACETS), "facets")

    # Rentals.

    def preview(self, request: RentalRequest | None = None, **fields: Any) -> Preview:
        """A quote for a rental: price, estimated provisioning time, the listing it would use."""
        body = self._request(request, fields).preview_wire()
        return self._parse(Preview, self._call(contract.PREVIEW, body=body), "quote")

    def create(self, request: RentalRequest | None = None, **fields: Any) -> CreatedRental:
        """Create a rental (``POST /v1/rentals``): sent once, never retried (no idempotency key)."""
        body = self._request(request, fields).to_wire()
        data = self._call(contract.CREATE, body=body)
        return self._parse(CreatedRental, data, "created rental")

    def get(self, rental_id: str, *, retry: RetryPolicy | None = None) -> Rental:
        """One rental (``GET /v1/rentals/:id``); ``retry`` overrides the client's policy."""
        return self._parse(Rental, self._call(contract.GET, rental_id, retry=retry), "rental")

    def list_page(
        self,
        *,
        status: str | None = None,
        cursor: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
        retry: RetryPolicy | None = None,
    ) -> RentalsPage:
        """One page of the account's rentals, newest first."""
        params = self._list_params(status, cursor, page_size)
        data = self._call(contract.LIST, params=params, retry=retry)
        return self._parse(RentalsPage, data, "rentals page")

    def list(
        self, *, status: str | None = None, retry: RetryPolicy | None = None
    ) -> builtins.list[Rental]:
        """Every rental of the account (``status``: only those), following the pages to the end."""
        pages: _Pages[RentalsPage] = _Pages("rentals", self.api_url)
        found: builtins.list[Rental] = []
        while True:
            page = self.list_page(status=status, cursor=pages.cursor, retry=retry)
            found.extend(page.rentals)
            if not pages.next(page):
                return found

    def stop(self, rental_id: str) -> StopResult:
        """Stop a rental for good (the pod and its disk are destroyed).

        A rental already stopped raises AlreadyStoppedError: callers take it as done.
        """
        return self._parse(StopResult, self._call(contract.STOP, rental_id), "stop reply")

    def meter(self, rental_id: str) -> Meter:
        """The live billing of one rental (``GET /v1/rentals/:id/meter``)."""
        return self._parse(Meter, self._call(contract.METER, rental_id), "meter")

    # SSH keys.

    def ssh_keys(self) -> builtins.list[SSHKey]:
        """The account's SSH keys, newest first (fingerprints; the key text is never returned)."""
        return self._parse(SSHKeyList, self._call(contract.SSH_KEYS), "SSH key list").keys

    def add_ssh_key(self, name: str, public_key: str) -> SSHKey:
        """Add a public key; pods created from now on let it in (running ones do not)."""
        body = {"name": name, "publicKey": public_key}
        return self._parse(SSHKey, self._call(contract.ADD_SSH_KEY, body=body), "SSH key")

    # Following one rental (scripts; the service has its own watcher).

    def wait_until_ready(
        self,
        rental_id: str,
        interval: float = contract.POLL_INTERVAL_SECONDS,
        max_polls: int = contract.MAX_POLLS,
        on_update: UpdateCallback | None = None,
    ) -> Rental:
        """The documented readiness loop: poll until running with a host, failed, or out of polls."""
        started = time.monotonic()
        for poll in _polls(max_polls):
            rental = self.get(rental_id)
            if on_update is not None:
                on_update(rental)
            if ready_or_raise(rental):
                return rental
            if poll < max_polls:
                self._sleep(interval)
        raise errors.ProvisioningTimeoutError(
            rental, polls=max_polls, waited_seconds=time.monotonic() - started
        )


class RequestGate(Protocol):
    """What every request of the async client passes through: the service's request budget
    (one per host) waits for the request's turn in ``before`` and reads the answer's rate-limit
    headers in ``after`` (``None``: no answer came)."""

    async def before(self, endpoint: Endpoint) -> None: ...

    def after(self, endpoint: Endpoint, response: httpx.Response | None) -> None: ...


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
        gate: RequestGate | None = None,
    ) -> None:
        super().__init__(settings, api_url, sid, retry)
        #: What every request passes through before it is sent (the service's request budget).
        self.gate = gate

        async def check(request: httpx.Request) -> None:
            self._check_request(request)

        async def forget(_response: httpx.Response) -> None:
            self._forget_cookies()

        self._http = httpx.AsyncClient(
            transport=transport,
            event_hooks={"request": [check], "response": [forget]},
            **self._client_options(),
        )
        self._sleep = sleep

    async def __aenter__(self) -> AsyncRentalsClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _send(
        self,
        endpoint: Endpoint,
        resource_id: str | None = None,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        retry: RetryPolicy | None = None,
    ) -> tuple[Any, httpx.Response]:
        self._prepare(endpoint)
        path = endpoint.url_path(resource_id)
        attempts = Attempts(retry or self.retry, endpoint)
        gate = self.gate
        while True:
            attempts.start()
            if gate is not None:
                # Its turn in the request budget (every try counts); a request held back
                # there was never sent, and is not retried here.
                await gate.before(endpoint)
            try:
                try:
                    response = await self._http.request(
                        endpoint.method, path, json=body, params=params
                    )
                except BaseException as exc:
                    if gate is not None:
                        gate.after(endpoint, None)
                    if isinstance(exc, httpx.TransportError):
                        raise transport_error(exc, self.api_url) from exc
                    raise
                if gate is not None:
                    gate.after(endpoint, response)
                return decode(endpoint, response, self.api_url, resource_id), response
            except errors.GpuOutletError as error:
                delay = attempts.next_delay(error)
                if (
                    gate is not None
                    and endpoint.session
                    and isinstance(error, errors.RateLimitedError)
                ):
                    # The gate holds every request until Retry-After has passed: the retry
                    # waits there, in its turn among the others, rather than beside them.
                    continue
                await self._sleep(delay)

    async def _call(self, endpoint: Endpoint, resource_id: str | None = None, **kwargs: Any) -> Any:
        return (await self._send(endpoint, resource_id, **kwargs))[0]

    # Auth.

    async def me(self) -> Session:
        """Who is signed in, and when the session ends (``GET /v1/auth/me``)."""
        return self._parse(Session, await self._call(contract.ME), "session")

    async def request_code(self, email: str, *, intent: str | None = None) -> CodeRequested:
        """Have a 6-digit sign-in code mailed (``POST /v1/auth/request-code``)."""
        body = {"email": email, **({"intent": intent} if intent else {})}
        data = await self._call(contract.REQUEST_CODE, body=body)
        return self._parse(CodeRequested, data, "reply")

    async def verify_code(self, email: str, code: str) -> SignIn:
        """Trade the code for a session: the reply's user and expiry, and the new sid."""
        data, response = await self._send(contract.VERIFY_CODE, body={"email": email, "code": code})
        session = self._parse(Session, data, "session")
        return SignIn(session=session, sid=_sid_from(response, self.api_url))

    async def logout(self) -> LoggedOut:
        """End the session upstream (``POST /v1/auth/logout``); its sid answers 401 afterwards."""
        return self._parse(LoggedOut, await self._call(contract.LOGOUT), "reply")

    # Money and offers.

    async def balance(self) -> Balance:
        """The wallet (``GET /v1/billing/balance``)."""
        return self._parse(Balance, await self._call(contract.BALANCE), "balance")

    async def listings_page(
        self, *, cursor: str | None = None, page_size: int = MAX_PAGE_SIZE, **filters: Any
    ) -> ListingsPage:
        """One page of catalog listings, cheapest first."""
        params = self._listing_params(filters, cursor, page_size)
        data = await self._call(contract.LISTINGS, params=params)
        return self._parse(ListingsPage, data, "listings page")

    async def listings(self, **filters: Any) -> builtins.list[Listing]:
        """Every catalog listing matching ``filters`` (``model``, ``region``, ...), all pages."""
        pages: _Pages[ListingsPage] = _Pages("listings", self.api_url)
        found: builtins.list[Listing] = []
        while True:
            page = await self.listings_page(cursor=pages.cursor, **filters)
            found.extend(page.listings)
            if not pages.next(page):
                return found

    async def facets(self) -> Facets:
        """What the catalog holds, for filters (``GET /v1/catalog/facets``)."""
        return self._parse(Facets, await self._call(contract.FACETS), "facets")

    # Rentals.

    async def preview(self, request: RentalRequest | None = None, **fields: Any) -> Preview:
        """A quote for a rental: price, estimated provisioning time, the listing it would use."""
        body = self._request(request, fields).preview_wire()
        return self._parse(Preview, await self._call(contract.PREVIEW, body=body), "quote")

    async def create(self, request: RentalRequest | None = None, **fields: Any) -> CreatedRental:
        """Create a rental (``POST /v1/rentals``): sent once, never retried (no idempotency key)."""
        body = self._request(request, fields).to_wire()
        data = await self._call(contract.CREATE, body=body)
        return self._parse(CreatedRental, data, "created rental")

    async def get(self, rental_id: str, *, retry: RetryPolicy | None = None) -> Rental:
        """One rental (``GET /v1/rentals/:id``); ``retry`` overrides the client's policy."""
        data = await self._call(contract.GET, rental_id, retry=retry)
        return self._parse(Rental, data, "rental")

    async def list_page(
        self,
        *,
        status: str | None = None,
        cursor: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
        retry: RetryPolicy | None = None,
    ) -> RentalsPage:
        """One page of the account's rentals, newest first."""
        params = self._list_params(status, cursor, page_size)
        data = await self._call(contract.LIST, params=params, retry=retry)
        return self._parse(RentalsPage, data, "rentals page")

    async def list(
        self, *, status: str | None = None, retry: RetryPolicy | None = None
    ) -> builtins.list[Rental]:
        """Every rental of the account (``status``: only those), following the pages to the end."""
        pages: _Pages[RentalsPage] = _Pages("rentals", self.api_url)
        found: builtins.list[Rental] = []
        while True:
            page = await self.list_page(status=status, cursor=pages.cursor, retry=retry)
            found.extend(page.rentals)
            if not pages.next(page):
                return found

    async def stop(self, rental_id: str) -> StopResult:
        """Stop a rental for good (the pod and its disk are destroyed).

        A rental already stopped raises AlreadyStoppedError: callers take it as done.
        """
        data = await self._call(contract.STOP, rental_id)
        return self._parse(StopResult, data, "stop reply")

    async def meter(self, rental_id: str) -> Meter:
        """The live billing of one rental (``GET /v1/rentals/:id/meter``)."""
        return self._parse(Meter, await self._call(contract.METER, rental_id), "meter")

    # SSH keys.

    async def ssh_keys(self) -> builtins.list[SSHKey]:
        """The account's SSH keys, newest first (fingerprints; the key text is never returned)."""
        data = await self._call(contract.SSH_KEYS)
        return self._parse(SSHKeyList, data, "SSH key list").keys

    async def add_ssh_key(self, name: str, public_key: str) -> SSHKey:
        """Add a public key; pods created from now on let it in (running ones do not)."""
        body = {"name": name, "publicKey": public_key}
        data = await self._call(contract.ADD_SSH_KEY, body=body)
        return self._parse(SSHKey, data, "SSH key")

    # Following one rental.

    async def wait_until_ready(
        self,
        rental_id: str,
        interval: float = contract.POLL_INTERVAL_SECONDS,
        max_polls: int = contract.MAX_POLLS,
        on_update: UpdateCallback | None = None,
    ) -> Rental:
        """The documented readiness loop: poll until running with a host, failed, or out of polls."""
        started = time.monotonic()
        for poll in _polls(max_polls):
            rental = await self.get(rental_id)
            if on_update is not None:
                on_update(rental)
            if ready_or_raise(rental):
                return rental
            if poll < max_polls:
                await self._sleep(interval)
        raise errors.ProvisioningTimeoutError(
            rental, polls=max_polls, waited_seconds=time.monotonic() - started
        )


def _polls(max_polls: int) -> Iterator[int]:
    if max_polls < 1:
        raise ValueError("max_polls must be at least 1")
    return iter(range(1, max_polls + 1))
