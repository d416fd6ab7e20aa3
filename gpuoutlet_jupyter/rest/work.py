"""The JSON layer's part for a rental's work: save paths and sizes, saves, uploads and downloads.

Shared by the server's handlers and the in-process host, as the rest of ``layer.py``: bodies
parsed and checked here, the saver (``gpuoutlet_jupyter.saves``) called, replies validated.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..api import RequestValidationError
from ..service.work import WorkRequest
from . import models

if TYPE_CHECKING:
    from ..saves.saver import Saver
    from ..service import RentalService

JSON = dict[str, Any]
SaverGetter = Callable[[], Awaitable["Saver"]]
ServiceGetter = Callable[[], Awaitable["RentalService"]]

#: A create body's members that are ours (the rental's work), not the rentals API's.
WORK_FIELDS = ("savePaths", "syncWorkdir", "setup")


def _text(body: JSON, name: str, problems: list[tuple[str, str]]) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or "\0" in value:
        problems.append((name, "must be a non-empty text"))
        return None
    return value.strip()


def parse_work(body: JSON) -> WorkRequest | None:
    """The create body's work members: ``savePaths``, ``syncWorkdir`` (a local folder pushed to
    the remote workdir once it runs) and ``setup`` (a command run once after it)."""
    if not any(body.get(name) is not None for name in WORK_FIELDS):
        return None
    from ..saves.paths import check_save_paths

    problems: list[tuple[str, str]] = []
    paths = body.get("savePaths")
    save_paths = None
    if paths is not None:
        if not isinstance(paths, list):
            problems.append(("savePaths", "must be a list of the pod's folders"))
        else:
            try:
                save_paths = check_save_paths(paths) or None
            except RequestValidationError as exc:
                problems.extend(exc.problems)
    workdir = _text(body, "syncWorkdir", problems)
    setup = _text(body, "setup", problems)
    if problems:
        raise RequestValidationError(problems)
    return WorkRequest(save_paths=save_paths, sync_workdir=workdir, setup=setup)


def parse_save_flag(body: JSON) -> bool:
    """A stop body: ``{"save": false}`` skips the save before the stop (default: save)."""
    unknown = sorted(set(body) - {"save"})
    problems = [(k, "is not accepted here: only save is") for k in unknown]
    save = body.get("save", True)
    if not isinstance(save, bool):
        problems.append(("save", "must be true or false"))
    if problems:
        raise RequestValidationError(problems)
    return bool(save)


class WorkAPI:
    """The endpoints of a rental's work, below HTTP."""

    def __init__(self, service: ServiceGetter, saver: SaverGetter) -> None:
        self._service = service
        self._saver = saver

    async def check_workdir(self, work: WorkRequest | None) -> WorkRequest | None:
        """A create's working folder must exist here before anything is sent."""
        if work is None or work.sync_workdir is None:
            return work
        saver = await self._saver()
        local = saver.local_path(work.sync_workdir)
        if not local.is_dir():
            raise RequestValidationError(
                [("syncWorkdir", f"{local} is not a folder on this machine: nothing to push")]
            )
        return WorkRequest(save_paths=work.save_paths, sync_workdir=str(local), setup=work.setup)

    async def save_size(self, rental_id: str) -> JSON:
        return models.SaveSizeView.model_validate(
            await (await self._saver()).size(rental_id)
        ).to_json()

    async def set_save_paths(self, rental_id: str, body: JSON) -> JSON:
        unknown = sorted(set(body) - {"paths"})
        if unknown or not isinstance(body.get("paths", []), (list, type(None))):
            raise RequestValidationError(
                [(k, "is not accepted here: only paths is") for k in unknown]
                or [("paths", "must be a list of the pod's folders (empty: the default)")]
            )
        record = await (await self._saver()).set_save_paths(rental_id, body.get("paths"))
        return models.RentalView.model_validate(record.view()).to_json()

    async def save(self, rental_id: str) -> JSON:
        saver = await self._saver()
        await saver.save_now(rental_id)
        return await self._transfer(rental_id)

    async def start_transfer(self, rental_id: str, body: JSON) -> JSON:
        allowed = {"direction", "localDir", "remoteDir", "bwlimit"}
        problems = [(k, "is not accepted here") for k in sorted(set(body) - allowed)]
        direction = body.get("direction")
        if direction not in ("up", "down"):
            problems.append(("direction", "must be up (to the pod) or down (from the pod)"))
        local = body.get("localDir")
        if not isinstance(local, str) or not local.strip():
            problems.append(("localDir", "must be a folder on this machine"))
        remote = body.get("remoteDir")
        if remote is not None and (not isinstance(remote, str) or not remote.strip()):
            problems.append(("remoteDir", "must be a folder on the pod (default: the workdir)"))
        bwlimit = body.get("bwlimit")
        if bwlimit is not None and (
            isinstance(bwlimit, bool) or not isinstance(bwlimit, (int, float)) or bwlimit <= 0
        ):
            problems.append(("bwlimit", "must be a number of bytes per second, more than 0"))
        if problems:
            raise RequestValidationError(problems)
        saver = await self._saver()
        await saver.start_sync(
            rental_id, "up" if direction == "up" else "down", str(local), remote, bwlimit=bwlimit
        )
        return await self._transfer(rental_id)

    async def transfer(self, rental_id: str, since: int | None, wait: float) -> JSON:
        service = await self._service()
        if since is not None:
            await service.wait_for_change(rental_id, since, wait)
        return await self._transfer(rental_id)

    async def cancel(self, rental_id: str) -> JSON:
        await (await self._saver()).cancel(rental_id)
        return await self._transfer(rental_id)

    async def _transfer(self, rental_id: str) -> JSON:
        view = await (await self._service()).rental(rental_id)
        return models.TransferReply.model_validate(
            {"rentalId": rental_id, "transfer": view.get("transfer"), "version": view["version"]}
        ).to_json()
