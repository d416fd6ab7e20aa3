"""Thin tornado handlers under ``{base_url}gpuoutlet/api/``: parse, call the manager, write JSON.

Authentication is Jupyter's own (token or login cookie with XSRF), plus the kernel token that
only these handlers accept. The work is the JSON layer's (``rest.layer.JsonAPI``); replies are
its models (``rest.models``), errors ``{"error": {"code", "message", ...}}`` (``rest.errors``).
"""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.auth.identity import User
from jupyter_server.base.call_context import CallContext
from jupyter_server.base.handlers import APIHandler
from tornado import web

from ..rest.errors import ErrorAnswer, error_reply, http_error_reply, internal_error_reply
from ..rest.layer import LongPoll, parse_json_object, parse_long_poll
from .auth import KernelToken
from .env import API_PATH, AUTH_RESOURCE
from .manager import RentalsManager

#: What a sign-in body looks like, for the "not JSON" messages.
EMAIL_EXAMPLE = '{"email": "you@example.com"}'
CODE_EXAMPLE = '{"email": "you@example.com", "code": "123456"}'

#: Who a request carrying the kernel token is.
KERNEL_USER = User(
    username="gpuoutlet-kernel",
    name="A kernel of this Jupyter server",
    display_name="gpuoutlet kernel",
)


class GpuOutletHandler(APIHandler):
    """Base of every gpuoutlet handler: the kernel token, JSON replies and JSON errors."""

    auth_resource = AUTH_RESOURCE
    manager: RentalsManager
    kernel_token: KernelToken

    def initialize(self, manager: RentalsManager, kernel_token: KernelToken) -> None:
        self.manager = manager
        self.kernel_token = kernel_token

    async def prepare(self) -> None:  # type: ignore[override]  # as APIHandler.prepare
        """Accept the kernel token here (and only here); anything else is Jupyter's auth."""
        if self.kernel_token.matches(self.request.headers.get("Authorization")):
            CallContext.set(CallContext.JUPYTER_HANDLER, self)
            if not self.check_host():
                raise web.HTTPError(403)
            self.current_user = self._jupyter_current_user = KERNEL_USER
            # Token-authenticated: no XSRF cookie and no origin check, as with Jupyter's token.
            self._token_authenticated = True
            return
        await super().prepare()

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Cache-Control", "no-store")

    def reply(self, data: dict[str, Any]) -> None:
        self.finish(json.dumps(data))

    def long_poll_args(self) -> LongPoll | None:
        return parse_long_poll(
            self.get_query_argument("wait", None),
            self.get_query_argument("since", None),
            max_wait=self.manager.config.max_wait,
        )

    def _error_reply(self, status_code: int, exc: BaseException | None) -> ErrorAnswer:
        if isinstance(exc, web.HTTPError):
            message = exc.log_message % exc.args if exc.log_message and exc.args else None
            return http_error_reply(status_code, message or exc.log_message or self._reason)
        if exc is None:
            return http_error_reply(status_code, self._reason)
        return error_reply(exc) or internal_error_reply()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        if exc_info:
            self.manager.saw(exc_info[1])  # gpuoutlet's 401: the session has ended
        reply = self._error_reply(status_code, exc_info[1] if exc_info else None)
        self.set_status(reply.status)
        for name, value in reply.headers.items():
            self.set_header(name, value)
        self.finish(json.dumps(reply.body))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        """The project's errors are expected answers: one line, no traceback."""
        if value is not None and not isinstance(value, web.HTTPError):
            mapped = error_reply(value)
            if mapped is not None:
                self.log.warning(
                    "gpuoutlet: %s %s -> %d %s: %s",
                    self.request.method,
                    self.request.path,
                    mapped.status,
                    mapped.code,
                    value,
                )
                return
        super().log_exception(typ, value, tb)

    def body(self) -> dict[str, Any]:
        """The request's JSON object (an empty body is ``{}`` where one is optional)."""
        return parse_json_object(self.request.body) if self.request.body.strip() else {}


class StatusHandler(GpuOutletHandler):
    """GET: the upstream URL, whether a sid is configured and where from, who is signed in."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.manager.status())


class TemplatesHandler(GpuOutletHandler):
    """GET: the six machine templates, what each holds and its ports."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.manager.api.templates())


class FamiliesHandler(GpuOutletHandler):
    """GET: the GPU families, derived from the catalog's listings."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.manager.api.families())


class WalletHandler(GpuOutletHandler):
    """GET: the balance, the burn, how long it lasts, and its warnings."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.manager.api.wallet())


class KeysHandler(GpuOutletHandler):
    """GET: the account's SSH keys and the local one. POST: add the local public key."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.manager.api.keys())

    @web.authenticated
    @authorized
    async def post(self) -> None:
        self.reply(await self.manager.api.add_key(self.body()))


class RentalsHandler(GpuOutletHandler):
    """GET: every rental and the list's version (``?wait=&since=`` long-polls). POST: create."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.manager.api.rentals(self.long_poll_args()))

    @web.authenticated
    @authorized
    async def post(self) -> None:
        self.reply(await self.manager.api.create(parse_json_object(self.request.body)))


class PreviewHandler(GpuOutletHandler):
    """POST: what a create of this body would do (quote, checks, confirmation line)."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        self.reply(await self.manager.api.preview(parse_json_object(self.request.body)))


class RentalHandler(GpuOutletHandler):
    """GET: one rental (``?wait=&since=`` long-polls until its version exceeds ``since``)."""

    @web.authenticated
    @authorized
    async def get(self, rental_id: str) -> None:
        self.reply(await self.manager.api.rental(rental_id, self.long_poll_args()))


class StopRentalHandler(GpuOutletHandler):
    """POST: save its work (unless ``{"save": false}``), then stop the rental for good; its SSH
    entry goes when it is stopped."""

    @web.authenticated
    @authorized
    async def post(self, rental_id: str) -> None:
        self.reply(await self.manager.api.stop(rental_id, self.body()))


class SaveSizeHandler(GpuOutletHandler):
    """GET: what a save of the rental would copy now (one quick ``du`` on its pod)."""

    @web.authenticated
    @authorized
    async def get(self, rental_id: str) -> None:
        self.reply(await self.manager.api.work.save_size(rental_id))


class SavePathsHandler(GpuOutletHandler):
    """PUT ``{"paths": [...]}``: the pod's folders saved before a stop (empty: the workdir)."""

    @web.authenticated
    @authorized
    async def put(self, rental_id: str) -> None:
        self.reply(await self.manager.api.work.set_save_paths(rental_id, self.body()))


class SaveHandler(GpuOutletHandler):
    """POST: save the rental's work now (a job; its progress is on the rental)."""

    @web.authenticated
    @authorized
    async def post(self, rental_id: str) -> None:
        self.reply(await self.manager.api.work.save(rental_id))


class TransferHandler(GpuOutletHandler):
    """GET the running or last transfer (``?wait=&since=`` long-polls), POST start an upload or
    download, DELETE cancel it."""

    @web.authenticated
    @authorized
    async def get(self, rental_id: str) -> None:
        poll = self.long_poll_args()
        since, wait = (poll.since, poll.wait) if poll is not None else (None, 0.0)
        self.reply(await self.manager.api.work.transfer(rental_id, since, wait))

    @web.authenticated
    @authorized
    async def post(self, rental_id: str) -> None:
        body = parse_json_object(self.request.body, example='{"direction": "up", "localDir": "."}')
        self.reply(await self.manager.api.work.start_transfer(rental_id, body))

    @web.authenticated
    @authorized
    async def delete(self, rental_id: str) -> None:
        self.reply(await self.manager.api.work.cancel(rental_id))


class KeepRentalHandler(GpuOutletHandler):
    """POST: "keep it", restart the rental's idle timer (optionally ``{"idleStopMinutes": N}``)."""

    @web.authenticated
    @authorized
    async def post(self, rental_id: str) -> None:
        self.reply(await self.manager.api.keep(rental_id, self.body()))


class SettleCreateHandler(GpuOutletHandler):
    """POST: which of the rentals that match a create whose answer was lost to keep
    (``{"keep": ["rent_…"]}`` or ``{"keep": "all"}``); the others are stopped."""

    @web.authenticated
    @authorized
    async def post(self, create_id: str) -> None:
        self.reply(await self.manager.api.settle_create(create_id, self.body()))


class TelemetryHandler(GpuOutletHandler):
    """GET: the rental's GPU telemetry; a look (sampled while looks last). ``?wait=&since=``
    long-polls the next sample."""

    @web.authenticated
    @authorized
    async def get(self, rental_id: str) -> None:
        poll = self.long_poll_args()
        since, wait = (poll.since, poll.wait) if poll is not None else (None, 0.0)
        self.reply(await self.manager.api.pods.telemetry(rental_id, since, wait))


class PortsHandler(GpuOutletHandler):
    """GET: the template's known ports, the ports listening on the pod, the open forwards."""

    @web.authenticated
    @authorized
    async def get(self, rental_id: str) -> None:
        self.reply(await self.manager.api.pods.ports(rental_id, self.manager.proxy_base))


class ForwardsHandler(GpuOutletHandler):
    """GET: the open forwards. POST ``{"port": N}``: forward the pod's port to a free local one."""

    @web.authenticated
    @authorized
    async def get(self, rental_id: str) -> None:
        self.reply(await self.manager.api.pods.forwards(rental_id, self.manager.proxy_base))

    @web.authenticated
    @authorized
    async def post(self, rental_id: str) -> None:
        body = parse_json_object(self.request.body, example='{"port": 7860}')
        self.reply(await self.manager.api.pods.forward(rental_id, body, self.manager.proxy_base))


class ForwardHandler(GpuOutletHandler):
    """DELETE: end the forward of the pod's port."""

    @web.authenticated
    @authorized
    async def delete(self, rental_id: str, port: str) -> None:
        pods = self.manager.api.pods
        self.reply(await pods.cancel_forward(rental_id, port, self.manager.proxy_base))


class AuthHandler(GpuOutletHandler):
    """GET: who is signed in, until when, where the session comes from (never the sid)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.manager.signin.auth())


class RequestCodeHandler(GpuOutletHandler):
    """POST ``{"email"}``: have gpuoutlet email a 6-digit sign-in code."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = parse_json_object(self.request.body, example=EMAIL_EXAMPLE)
        self.reply(await self.manager.signin.request_code(body))


class VerifyCodeHandler(GpuOutletHandler):
    """POST ``{"email", "code"}``: sign in; the session is kept and used at once."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = parse_json_object(self.request.body, example=CODE_EXAMPLE)
        self.reply(await self.manager.signin.verify_code(body))


class LogoutHandler(GpuOutletHandler):
    """POST: sign out (gpuoutlet is told; the credentials file goes)."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        self.reply(await self.manager.signin.sign_out())


def routes(
    manager: RentalsManager, kernel_token: KernelToken
) -> list[tuple[str, type[GpuOutletHandler], dict[str, Any]]]:
    """The URL patterns, relative to ``base_url`` (the ExtensionApp prefixes it)."""
    kwargs = {"manager": manager, "kernel_token": kernel_token}
    rental = rf"{API_PATH}/rentals/(?P<rental_id>[^/]+)"
    return [
        (f"{API_PATH}/status", StatusHandler, kwargs),
        (f"{API_PATH}/templates", TemplatesHandler, kwargs),
        (f"{API_PATH}/families", FamiliesHandler, kwargs),
        (f"{API_PATH}/wallet", WalletHandler, kwargs),
        (f"{API_PATH}/keys", KeysHandler, kwargs),
        (f"{API_PATH}/rentals", RentalsHandler, kwargs),
        # Before the rental pattern: "preview" is not a rental id.
        (f"{API_PATH}/rentals/preview", PreviewHandler, kwargs),
        (rental, RentalHandler, kwargs),
        (rf"{rental}/stop", StopRentalHandler, kwargs),
        (rf"{rental}/keep", KeepRentalHandler, kwargs),
        (rf"{API_PATH}/creates/(?P<create_id>[^/]+)", SettleCreateHandler, kwargs),
        (rf"{rental}/save-size", SaveSizeHandler, kwargs),
        (rf"{rental}/save-paths", SavePathsHandler, kwargs),
        (rf"{rental}/save", SaveHandler, kwargs),
        (rf"{rental}/transfer", TransferHandler, kwargs),
        (rf"{rental}/telemetry", TelemetryHandler, kwargs),
        (rf"{rental}/ports", PortsHandler, kwargs),
        (rf"{rental}/forwards", ForwardsHandler, kwargs),
        (rf"{rental}/forwards/(?P<port>[^/]+)", ForwardHandler, kwargs),
        (f"{API_PATH}/auth", AuthHandler, kwargs),
        (f"{API_PATH}/auth/request-code", RequestCodeHandler, kwargs),
        (f"{API_PATH}/auth/verify-code", VerifyCodeHandler, kwargs),
        (f"{API_PATH}/auth/logout", LogoutHandler, kwargs),
    ]
