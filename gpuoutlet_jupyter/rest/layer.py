"""The one JSON layer over RentalService, shared by the server's handlers and the in-process host.

Request bodies are parsed and checked here (so the create rules exist once), the service is
called, and every reply is validated against ``models`` before it is handed out. No tornado.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..api import GpuOutletError, RentalRequest, RequestValidationError
from ..api.models import STOP_NOTICE
from ..api.templates import TEMPLATES
from ..service import RentalService
from ..service.idle import GPU_FIELD, IDLE_FIELD, parse_gpu_util, parse_idle_minutes
from . import models
from .errors import InvalidBodyError, InvalidQueryError
from .pods import PodsAPI
from .work import WORK_FIELDS, SaverGetter, WorkAPI, parse_save_flag, parse_work

JSON = dict[str, Any]
ServiceGetter = Callable[[], Awaitable[RentalService]]

#: What a body may hold to name an SSH key being added.
KEY_NAME_FIELD = "name"
#: What a create body may hold besides the API's fields: where it was asked from.
NOTEBOOK_FIELD = "notebook"


@dataclass(frozen=True)
class LongPoll:
    """A long-poll request: answer once the version exceeds ``since``, or after ``wait`` s."""

    wait: float
    since: int


def parse_long_poll(wait: str | None, since: str | None, *, max_wait: float) -> LongPoll | None:
    """``?wait=SECONDS&since=VERSION`` → LongPoll (wait capped at ``max_wait``); neither → None."""
    if wait is None and since is None:
        return None
    problems: list[tuple[str, str]] = []
    seconds = 0.0
    version = 0
    if wait is None:
        problems.append(("wait", "is required with since (seconds to wait for a change)"))
    else:
        try:
            seconds = float(wait)
        except ValueError:
            seconds = math.nan
        if not math.isfinite(seconds) or seconds < 0:
            problems.append(("wait", f"must be a number of seconds, 0 or more (got {wait!r})"))
    if since is None:
        problems.append(("since", "is required with wait (the last version you have)"))
    else:
        try:
            version = int(since)
        except ValueError:
            problems.append(("since", f"must be a whole number, a version (got {since!r})"))
    if problems:
        raise InvalidQueryError(problems)
    return LongPoll(wait=min(seconds, max_wait), since=version)


def parse_json_object(
    body: bytes, *, example: str = '{"familyId": "rtx-4090", "gpuCount": 1}'
) -> JSON:
    """A request body that must be one JSON object."""
    if not body.strip():
        raise InvalidBodyError(f"The request has no body: send a JSON object such as {example}.")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidBodyError(
            f"The request body is not valid JSON ({exc}). Send a JSON object such as {example}."
        ) from None
    except RecursionError:
        # json.loads recurses once per nesting level; no body of ours nests more than twice.
        raise InvalidBodyError(
            "The request body is nested too deeply to be read. Send one flat JSON object such "
            f"as {example}."
        ) from None
    if not isinstance(data, dict):
        raise InvalidBodyError(
            f"The request body must be a JSON object, not a {type(data).__name__}: "
            f"for example {example}."
        )
    return data


def parse_idle(body: JSON) -> tuple[float | None, float | None, list[tuple[str, str]]]:
    """The idle stop's members of a body: minutes and GPU threshold (None: not given), and
    the problems with them."""
    problems: list[tuple[str, str]] = []
    minutes = gpu = None
    try:
        minutes = parse_idle_minutes(body.get(IDLE_FIELD))
    except RequestValidationError as exc:
        problems.extend(exc.problems)
    try:
        gpu = parse_gpu_util(body.get(GPU_FIELD))
    except RequestValidationError as exc:
        problems.extend(exc.problems)
    return minutes, gpu, problems


@dataclass(frozen=True)
class CreateBody:
    """A create body: the API's request, and ours besides it."""

    request: RentalRequest
    #: The idle stop (None: the default; 0: none).
    idle_stop_minutes: float | None = None
    #: GPUs busier than this (percent) keep the rental from idling (None: the default).
    idle_gpu_util: float | None = None
    #: The notebook it was asked from (its path or name), for the rental's automatic name.
    notebook: str | None = None


def parse_create(body: JSON) -> CreateBody:
    """A create body (camelCase): the API's fields, our idle stop, GPU threshold and notebook,
    every problem of all of them at once (the work fields are ``parse_work``'s)."""
    minutes, gpu, problems = parse_idle(body)
    notebook = body.get(NOTEBOOK_FIELD)
    if notebook is not None and (not isinstance(notebook, str) or len(notebook) > 1024):
        problems.append((NOTEBOOK_FIELD, "must be a notebook's path or name (text)"))
        notebook = None
    ours = (IDLE_FIELD, GPU_FIELD, NOTEBOOK_FIELD, *WORK_FIELDS)
    try:
        request = RentalRequest.build(**{k: v for k, v in body.items() if k not in ours})
    except RequestValidationError as exc:
        problems.extend(exc.problems)
    if problems:
        raise RequestValidationError(problems)
    return CreateBody(request, idle_stop_minutes=minutes, idle_gpu_util=gpu, notebook=notebook)


def parse_keep(body: JSON) -> list[str] | None:
    """``{"keep": ["rent_…", …]}`` or ``{"keep": "all"}`` → the rentals to keep (None: all)."""
    unknown = sorted(set(body) - {"keep"})
    problems = [(k, "is not accepted here: only keep is") for k in unknown]
    keep = body.get("keep")
    if keep == "all":
        keep = None
    elif not (isinstance(keep, list) and keep and all(isinstance(k, str) for k in keep)):
        problems.append(("keep", 'must be a list of rental ids, or "all"'))
    if problems:
        raise RequestValidationError(problems, what="choice")
    return keep


def parse_key_name(body: JSON) -> str | None:
    """``{"name": "laptop"}`` (optional) → the name to give the key on the account."""
    unknown = sorted(set(body) - {KEY_NAME_FIELD})
    problems = [(k, f"is not accepted here: only {KEY_NAME_FIELD} is") for k in unknown]
    name = body.get(KEY_NAME_FIELD)
    if name is not None and (not isinstance(name, str) or not 1 <= len(name.strip()) <= 64):
        problems.append((KEY_NAME_FIELD, "must be a text of 1 to 64 characters"))
    if problems:
        raise RequestValidationError(problems, what="key")
    return name.strip() if isinstance(name, str) else None


def reply(model: type[models.RestModel], data: Any) -> JSON:
    """``data`` checked against its reply model, as JSON."""
    return model.model_validate(data).to_json()


def templates_reply() -> JSON:
    """The six templates (needs no session: the list is the vendor's documentation)."""
    return reply(
        models.TemplatesView,
        {
            "templates": [
                {
                    "id": t.id,
                    "title": t.title,
                    "contents": t.contents,
                    "ports": list(t.ports),
                    "portsNote": t.ports_note,
                    "default": t.default,
                }
                for t in TEMPLATES
            ]
        },
    )


class JsonAPI:
    """Every endpoint's work below HTTP: parse, call the service, validate the reply."""

    def __init__(self, service: ServiceGetter, saver: SaverGetter | None = None) -> None:
        self._service = service
        #: A rental's work: save paths and sizes, saves, uploads and downloads (work.py).
        self.work = WorkAPI(service, saver or _no_saver)
        #: A rental's pod: telemetry, ports, forwards (pods.py).
        self.pods = PodsAPI(service)

    async def families(self) -> JSON:
        families = await (await self._service()).families()
        return reply(
            models.FamiliesView,
            {
                "families": [
                    {
                        "id": f.id,
                        "models": list(f.models),
                        "vramGb": f.vram_gb,
                        "minPricePerGpuHourCents": f.min_price_per_gpu_hour_cents,
                        "regions": list(f.regions),
                        "regionCodes": list(f.region_codes),
                        "providers": list(f.providers),
                        "offers": [
                            {
                                "gpuCount": o.gpu_count,
                                "pricePerHourCents": o.price_per_hour_cents,
                                "listings": o.listings,
                                "regions": list(o.regions),
                                "providers": list(o.providers),
                            }
                            for o in f.offers
                        ],
                        "listings": f.listings,
                    }
                    for f in families
                ]
            },
        )

    async def templates(self) -> JSON:
        return templates_reply()

    async def wallet(self) -> JSON:
        return reply(models.WalletView, await (await self._service()).wallet_view())

    async def keys(self) -> JSON:
        check = await (await self._service()).key_check()
        return reply(models.KeysView, check.to_json())

    async def add_key(self, body: JSON) -> JSON:
        name = parse_key_name(body)
        service = await self._service()
        key, already = await service.add_local_key(name)
        note = (
            "This key was already on your gpuoutlet account."
            if already
            else "Added. Pods created from now on let this key in; pods already running do "
            "not (gpuoutlet copies the account's keys into a pod only when it is created)."
        )
        return reply(
            models.AddKeyReply,
            {"key": {**key.to_json(), "local": True}, "alreadyOnAccount": already, "note": note},
        )

    async def rentals(self, poll: LongPoll | None = None) -> JSON:
        service = await self._service()
        if poll is not None:
            await service.wait_for_any_change(poll.since, poll.wait)
            # A sign-in may have replaced the service while this waited: answer from the new one.
            service = await self._service()
        # No await since the list was read: this version is the one of that list.
        return reply(
            models.RentalsView,
            {
                "rentals": service.rentals(),
                "pendingCreates": service.pending.views(),
                "version": service.version,
                "apiProblem": service.health.problem(),
            },
        )

    async def rental(self, rental_id: str, poll: LongPoll | None = None) -> JSON:
        service = await self._service()
        if poll is None:
            return reply(models.RentalView, await service.rental(rental_id))
        view = await service.wait_for_change(rental_id, poll.since, poll.wait)
        current = await self._service()
        if current is not service:
            view = await current.rental(rental_id)
        return reply(models.RentalView, view)

    async def preview(self, body: JSON) -> JSON:
        request = parse_create(body).request
        return reply(models.PreviewView, await (await self._service()).quote(request))

    async def create(self, body: JSON) -> JSON:
        """Validate the camelCase body (the API's fields, our ``idleStopMinutes``,
        ``idleGpuUtil``, ``notebook`` and the work fields), create once (never retried: the API
        has no idempotency key)."""
        problems: list[tuple[str, str]] = []
        work = None
        try:
            work = parse_work(body)
        except RequestValidationError as exc:
            problems.extend(exc.problems)
        try:
            create = parse_create(body)
        except RequestValidationError as exc:
            raise RequestValidationError([*exc.problems, *problems]) from None
        if problems:
            raise RequestValidationError(problems)
        work = await self.work.check_workdir(work)
        service = await self._service()
        view = await service.create(
            create.request,
            idle_stop_minutes=create.idle_stop_minutes,
            idle_gpu_util=create.idle_gpu_util,
            notebook=create.notebook,
            work=work,
        )
        return reply(models.CreateReply, view)

    async def settle_create(self, create_id: str, body: JSON) -> JSON:
        """Keep some (or all) of the rentals that match a create whose answer was lost; the
        others are stopped."""
        keep = parse_keep(body)
        settled = await (await self._service()).settle_create(create_id, keep)
        stopped = [{**view, "notice": STOP_NOTICE} for view in settled["stopped"]]
        return reply(models.SettleReply, {**settled, "stopped": stopped})

    async def stop(self, rental_id: str, body: JSON | None = None) -> JSON:
        """Save the rental's work first (unless ``{"save": false}``), then stop it for good."""
        save = parse_save_flag(body or {})
        view = await (await self._service()).stop(rental_id, save=save)
        return reply(models.StopReply, {**view, "notice": STOP_NOTICE})

    async def keep(self, rental_id: str, body: JSON) -> JSON:
        """ "Keep it": restart the idle timer; ``{"idleStopMinutes": N, "idleGpuUtil": P}``
        also change it."""
        unknown = sorted(set(body) - {IDLE_FIELD, GPU_FIELD})
        minutes, gpu, problems = parse_idle(body)
        only = f"only {IDLE_FIELD} and {GPU_FIELD} are"
        problems += [(name, f"is not accepted here: {only}") for name in unknown]
        if problems:
            raise RequestValidationError(problems)
        service = await self._service()
        view = await service.keep(rental_id, idle_stop_minutes=minutes, idle_gpu_util=gpu)
        return reply(models.RentalView, view)

    async def session(self) -> tuple[JSON | None, GpuOutletError | None]:
        """The ``session`` member of the status and, when it cannot be read, the error."""
        try:
            info = await (await self._service()).session()
        except GpuOutletError as exc:
            return None, exc
        return info.to_json(), None


async def _no_saver() -> Any:
    raise GpuOutletError("Saving and syncing are not set up in this host.")


def status_reply(fields: JSON) -> JSON:
    """The status of a host (server or in-process), with the stop notice."""
    return reply(models.StatusView, {**fields, "stopNotice": STOP_NOTICE})
