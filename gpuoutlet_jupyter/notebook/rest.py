"""ServerBackend: the Jupyter server's gpuoutlet REST API, from a kernel, with sync httpx and long-polls."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from .. import api
from .._version import __version__
from ..api import contract
from ..server.env import API_PATH
from ..service.traits import trait_default
from .backend import RentalJSON
from .discovery import ServerLocation
from .errors import ExtensionMissingError, ServerRefusedError, ServerUnreachableError
from .rest_errors import error_from_reply

#: Extra seconds a long-poll's read may take beyond its ``wait``.
_MARGIN = 15.0
#: Extra seconds a kernel action may take (a reattach starts a kernel over ssh).
_KERNEL_ACTION_SECONDS = 90.0


class ServerBackend:
    """Calls ``{server}gpuoutlet/api/`` with the kernel token (or the server token)."""

    kind = "server"

    def __init__(
        self,
        location: ServerLocation,
        *,
        request_timeout: float = trait_default("request_timeout"),
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.location = location
        self.request_timeout = request_timeout
        self._transport = transport
        self._async_transport = async_transport
        self._http: httpx.Client | None = None
        self._ahttp: httpx.AsyncClient | None = None
        self._api_url: str | None = None
        #: Seconds a stop that saves first may take (the server's save_timeout); -1: no limit.
        self._save_seconds: float | None = None

    def __repr__(self) -> str:
        return f"ServerBackend(url={self.location.url!r})"

    # The interface.

    @property
    def where(self) -> str:
        return f"the Jupyter server at {self.location.url} (found through {self.location.source})"

    @property
    def api_url(self) -> str | None:
        return self._api_url

    def status(self) -> dict[str, Any]:
        data: dict[str, Any] = self._request("GET", "status")
        if isinstance(data.get("apiUrl"), str):
            self._api_url = data["apiUrl"]
        return data

    def templates(self) -> dict[str, Any]:
        data: dict[str, Any] = self._request("GET", "templates")
        return data

    def families(self) -> dict[str, Any]:
        data: dict[str, Any] = self._request("GET", "families")
        return data

    def wallet(self) -> dict[str, Any]:
        wallet: dict[str, Any] = self._request("GET", "wallet")
        return wallet

    def keys(self) -> dict[str, Any]:
        data: dict[str, Any] = self._request("GET", "keys")
        return data

    def add_key(self, name: str | None = None) -> dict[str, Any]:
        body = {} if name is None else {"name": name}
        data: dict[str, Any] = self._request("POST", "keys", json=body)
        return data

    def rentals(self, *, since: int | None = None, wait: float | None = None) -> dict[str, Any]:
        data: dict[str, Any] = self._request("GET", "rentals", **_poll(since, wait))
        return data

    def rental(
        self, rental_id: str, *, since: int | None = None, wait: float | None = None
    ) -> RentalJSON:
        path = _rental_path(rental_id)
        data: RentalJSON = self._request("GET", path, **_poll(since, wait))
        return data

    def preview(self, body: dict[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = self._request("POST", "rentals/preview", json=body)
        return data

    def create(self, body: dict[str, Any]) -> RentalJSON:
        # Sent once: if the answer is lost, the rental may exist; a second send could rent
        # (and bill) a second one. The server settles a lost upstream answer itself (it looks
        # for the rental by its name), which may take a while: this waits for it.
        settling = 3 * self.request_timeout + 60.0
        data: RentalJSON = self._request("POST", "rentals", json=body, wait=settling)
        return data

    def settle_create(self, create_id: str, keep: list[str] | None) -> dict[str, Any]:
        body = {"keep": "all" if keep is None else keep}
        path = f"creates/{quote(create_id, safe='')}"
        data: dict[str, Any] = self._request("POST", path, json=body)
        return data

    def stop(self, rental_id: str, *, save: bool = True) -> RentalJSON:
        path = contract.STOP.url_path(rental_id).removeprefix("/v1/")
        if not save:
            data: RentalJSON = self._request("POST", path, json={"save": False})
            return data
        # The server saves the rental's work first, for at most its save_timeout: the answer
        # may take that long (no limit there: none here either).
        budget = self._save_budget()
        data = self._request("POST", path, json={"save": True}, wait=budget)
        return data

    def _save_budget(self) -> float | None:
        if self._save_seconds is None:
            seconds = self.status().get("saveTimeoutSeconds")
            self._save_seconds = float(seconds) + _MARGIN if seconds else -1.0
        return None if self._save_seconds < 0 else self._save_seconds

    # A rental's work (``gpuoutlet_jupyter.saves``).

    def save_size(self, rental_id: str) -> dict[str, Any]:
        data: dict[str, Any] = self._request("GET", _rental_path(rental_id) + "/save-size")
        return data

    def save(self, rental_id: str) -> dict[str, Any]:
        data: dict[str, Any] = self._request("POST", _rental_path(rental_id) + "/save")
        return data

    def start_transfer(self, rental_id: str, body: dict[str, Any]) -> dict[str, Any]:
        path = _rental_path(rental_id) + "/transfer"
        data: dict[str, Any] = self._request("POST", path, json=body)
        return data

    def transfer(
        self, rental_id: str, *, since: int | None = None, wait: float | None = None
    ) -> dict[str, Any]:
        path = _rental_path(rental_id) + "/transfer"
        data: dict[str, Any] = self._request("GET", path, **_poll(since, wait))
        return data

    def cancel_transfer(self, rental_id: str) -> dict[str, Any]:
        data: dict[str, Any] = self._request("DELETE", _rental_path(rental_id) + "/transfer")
        return data

    def keep(self, rental_id: str, *, idle_stop_minutes: float | None = None) -> RentalJSON:
        # Ours, not the rentals API's: the server's idle timer lives under the rental's own path.
        path = _rental_path(rental_id) + "/keep"
        body = None if idle_stop_minutes is None else {"idleStopMinutes": idle_stop_minutes}
        data: RentalJSON = self._request("POST", path, json=body)
        return data

    def telemetry(
        self, rental_id: str, *, since: int | None = None, wait: float | None = None
    ) -> dict[str, Any]:
        path = _rental_path(rental_id) + "/telemetry"
        data: dict[str, Any] = self._request("GET", path, **_poll(since, wait))
        return data

    def ports(self, rental_id: str) -> dict[str, Any]:
        data: dict[str, Any] = self._request("GET", _rental_path(rental_id) + "/ports")
        return data

    def forward(self, rental_id: str, port: int) -> dict[str, Any]:
        path = _rental_path(rental_id) + "/forwards"
        data: dict[str, Any] = self._request("POST", path, json={"port": port})
        return data

    def cancel_forward(self, rental_id: str, port: int) -> dict[str, Any]:
        path = f"{_rental_path(rental_id)}/forwards/{int(port)}"
        data: dict[str, Any] = self._request("DELETE", path)
        return data

    @property
    def server_url(self) -> str | None:
        return self.location.url

    async def atelemetry(self, rental_id: str, *, since: int, wait: float) -> dict[str, Any]:
        path = _rental_path(rental_id) + "/telemetry"
        data: dict[str, Any] = await self._arequest("GET", path, **_poll(since, wait))
        return data

    def kernels(self, rental_id: str | None = None) -> dict[str, Any]:
        path = "remote-kernels" if rental_id is None else _rental_path(rental_id) + "/kernels"
        data: dict[str, Any] = self._request("GET", path)
        return data

    def reattach_kernel(self, wrapper: str) -> dict[str, Any]:
        path = f"remote-kernels/{quote(wrapper, safe='')}/reattach"
        data: dict[str, Any] = self._request("POST", path, wait=_KERNEL_ACTION_SECONDS)
        return data

    def shut_down_kernel(self, wrapper: str) -> dict[str, Any]:
        path = f"remote-kernels/{quote(wrapper, safe='')}/shutdown"
        data: dict[str, Any] = self._request("POST", path, wait=_KERNEL_ACTION_SECONDS)
        return data

    # Signing the server in and out: the code goes to the server, which keeps the session.

    def auth(self) -> dict[str, Any]:
        data: dict[str, Any] = self._request("GET", "auth")
        return data

    def request_code(self, email: str) -> dict[str, Any]:
        data: dict[str, Any] = self._request("POST", "auth/request-code", json={"email": email})
        return data

    def verify_code(self, email: str, code: str) -> dict[str, Any]:
        body = {"email": email, "code": code}
        data: dict[str, Any] = self._request("POST", "auth/verify-code", json=body)
        return data

    def sign_out(self) -> dict[str, Any]:
        data: dict[str, Any] = self._request("POST", "auth/logout")
        return data

    async def arental(self, rental_id: str, *, since: int, wait: float) -> RentalJSON:
        path = _rental_path(rental_id)
        data: RentalJSON = await self._arequest("GET", path, **_poll(since, wait))
        return data

    async def arentals(self, *, since: int, wait: float) -> dict[str, Any]:
        data: dict[str, Any] = await self._arequest("GET", "rentals", **_poll(since, wait))
        return data

    async def awallet(self) -> dict[str, Any]:
        data: dict[str, Any] = await self._arequest("GET", "wallet")
        return data

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        # An AsyncClient belongs to the loop that used it; dropping it closes its sockets.
        self._ahttp = None

    # HTTP.

    def _options(self) -> dict[str, Any]:
        headers = {"Accept": "application/json", "User-Agent": f"gpuoutlet-jupyter/{__version__}"}
        if self.location.token:
            headers["Authorization"] = f"token {self.location.token}"
        return {
            "base_url": f"{self.location.url}{API_PATH}/",
            "headers": headers,
            "timeout": httpx.Timeout(self.request_timeout, connect=10.0),
            "follow_redirects": False,
            # A proxy configured for the internet has no business with the local server.
            "trust_env": False,
        }

    def _client(self) -> httpx.Client:
        if self._http is None:
            transport = self._transport
            if transport is None and self.location.socket:
                transport = httpx.HTTPTransport(uds=self.location.socket)
            self._http = httpx.Client(transport=transport, **self._options())
        return self._http

    def _aclient(self) -> httpx.AsyncClient:
        if self._ahttp is None:
            transport = self._async_transport
            if transport is None and self.location.socket:
                transport = httpx.AsyncHTTPTransport(uds=self.location.socket)
            self._ahttp = httpx.AsyncClient(transport=transport, **self._options())
        return self._ahttp

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        wait: float | None = 0.0,
    ) -> Any:
        # wait=None: the server bounds the answer itself (a save with no time limit).
        read = None if wait is None else self.request_timeout + wait
        timeout = httpx.Timeout(read, connect=10.0)
        try:
            response = self._client().request(
                method, path, params=params, json=json, headers=headers, timeout=timeout
            )
        except httpx.TransportError as exc:
            self.close()
            raise self._unreachable(exc) from None
        except BaseException:
            # Ctrl-C in the middle of a read: that connection's state is unknown, start afresh.
            self.close()
            raise
        return self._decode(response)

    async def _arequest(
        self, method: str, path: str, *, params: dict[str, str] | None = None, wait: float = 0.0
    ) -> Any:
        timeout = httpx.Timeout(self.request_timeout + wait, connect=10.0)
        try:
            response = await self._aclient().request(method, path, params=params, timeout=timeout)
        except httpx.TransportError as exc:
            self._ahttp = None
            raise self._unreachable(exc) from None
        return self._decode(response)

    def _unreachable(self, exc: httpx.TransportError) -> ServerUnreachableError:
        kind = type(exc).__name__
        what = (
            "did not answer in time"
            if isinstance(exc, httpx.TimeoutException)
            else "is not reachable"
        )
        return ServerUnreachableError(
            f"The Jupyter server at {self.location.url} {what} ({kind}); this kernel found it "
            f"through {self.location.source}. If the server was restarted, restart this kernel "
            "so it gets the new address. To talk to the rentals API from this kernel instead, "
            "run `%config NotebookSession.backend = 'in-process'` (it then reads "
            "GPUOUTLET_API_URL and GPUOUTLET_SID, or ~/.config/gpuoutlet/credentials).",
            url=self.location.url,
        )

    def _decode(self, response: httpx.Response) -> Any:
        body: Any = None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.is_success:
            if body is None:
                raise api.MalformedResponseError(
                    f"The Jupyter server at {self.location.url} answered with something that "
                    "is not JSON. Check that the gpuoutlet extension is enabled on it.",
                    status_code=response.status_code,
                    url=self.location.url,
                )
            return body
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and isinstance(error.get("code"), str):
            raise error_from_reply(response.status_code, error, server_url=self.location.url)
        raise self._bare_error(response.status_code)

    def _bare_error(self, status: int) -> api.GpuOutletError:
        """An error from Jupyter itself (no gpuoutlet error body)."""
        url = self.location.url
        if status in (401, 403):
            how = (
                "the kernel token it gave this kernel"
                if self.location.published
                else "the server token from its runtime file"
            )
            return ServerRefusedError(
                f"The Jupyter server at {url} refused {how} ({status}). Restart this kernel "
                "from that server so it gets fresh credentials, or run `%config "
                "NotebookSession.backend = 'in-process'` to talk to the rentals API directly."
            )
        if status == 404:
            return ExtensionMissingError(
                f"The Jupyter server at {url} does not serve the gpuoutlet API (404 on "
                f"{API_PATH}/). Enable the extension with `jupyter server extension enable "
                "gpuoutlet_jupyter` and restart the server, or run `%config "
                "NotebookSession.backend = 'in-process'`."
            )
        return api.ServerError(
            f"The Jupyter server at {url} answered {status}. Check its log, then try again.",
            status_code=status,
            code=f"http_{status}",
            api_message=f"HTTP {status}",
        )


def _rental_path(rental_id: str) -> str:
    """A rental's path under the extension's API (the rentals API's path, without ``/v1/``)."""
    return contract.GET.url_path(rental_id).removeprefix("/v1/")


def _poll(since: int | None, wait: float | None) -> dict[str, Any]:
    if since is None:
        return {}
    seconds = max(0.0, wait or 0.0)
    return {"params": {"since": str(since), "wait": f"{seconds:g}"}, "wait": seconds}
