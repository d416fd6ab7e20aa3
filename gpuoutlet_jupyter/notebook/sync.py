"""Files to and from a rental's pod from a notebook: ``%gpu_sync``, and a stop that saves first.

A transfer is a job of the rentals service (the Jupyter server's, or this kernel's): this
module starts it, follows it with long-polls and shows its progress (bytes, rate, the file
moving now) until it ends. Ctrl-C cancels the transfer (what arrived whole is kept; running it
again resumes). A stop that saves first blocks until the save is done; its progress is shown
the same way, followed beside the stop request.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, Protocol

from ..api import GpuOutletError
from .backend import Backend, RentalJSON
from .errors import NotebookError

Direction = Literal["up", "down"]
#: Seconds one long-poll of a transfer may wait (its progress is published twice a second).
POLL_SECONDS = 2.0


class TransferView(Protocol):
    """Something that shows a transfer's progress (the text line, or the widget)."""

    def update(self, transfer: dict[str, Any]) -> None:
        """The transfer's latest state (``TransferView`` of the REST API, camelCase)."""

    def finish(self, transfer: dict[str, Any]) -> None:
        """The last state: it is done, failed or cancelled."""


def size_text(count: float) -> str:
    """``412.0 MB``: decimal units, as the saves' summaries count."""
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"  # pragma: no cover


_VERBS = {"upload": "Uploading", "download": "Downloading", "save": "Saving", "workdir": "Pushing"}


def transfer_line(transfer: dict[str, Any]) -> str:
    """One line: what moves where, bytes done of all, the rate, the file moving now."""
    kind = str(transfer.get("kind") or "transfer")
    remote = ", ".join(transfer.get("remoteDirs") or [])
    local = transfer.get("localDir") or ""
    where = (
        f"{local} → pod:{remote}" if kind in ("upload", "workdir") else f"pod:{remote} → {local}"
    )
    done, total = int(transfer.get("bytesDone") or 0), int(transfer.get("bytesTotal") or 0)
    state = transfer.get("state")
    if state == "running":
        head = f"{_VERBS.get(kind, kind)} {where}"
        amount = f"{size_text(done)} of {size_text(total)}" if total else size_text(done)
        if total:
            amount += f" ({100 * done / total:.0f}%)"
        parts = [head, amount, f"{size_text(float(transfer.get('rate') or 0))}/s"]
        if transfer.get("method"):
            parts.append(str(transfer["method"]))
        if transfer.get("current"):
            parts.append(str(transfer["current"]))
        return " · ".join(parts)
    text = transfer.get("summary") or transfer.get("error") or f"{kind} {state}"
    if state in ("failed", "cancelled") and transfer.get("error"):
        text = f"{kind} {state}: {transfer['error']}"
    return f"{text} ({where}, {float(transfer.get('elapsedSeconds') or 0):.1f} s)"


class LineView:
    """The transfer as one line of text, rewritten in place (``print`` with ``\\r``, or a
    display id in a kernel)."""

    def __init__(self, show: Callable[[str, bool], None]) -> None:
        self._show = show

    def update(self, transfer: dict[str, Any]) -> None:
        self._show(transfer_line(transfer), False)

    def finish(self, transfer: dict[str, Any]) -> None:
        self._show(transfer_line(transfer), True)


class SyncCore:
    """Uploads, downloads and saves of one backend's rentals, in the user's terms."""

    def __init__(
        self,
        backend: Callable[[], Backend],
        *,
        view: Callable[[], TransferView],
        say: Callable[[str], None] = print,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._backend = backend
        self._view = view
        self.say = say
        self.poll_seconds = poll_seconds

    @property
    def backend(self) -> Backend:
        return self._backend()

    def running_rental(self) -> str:
        """The one running rental (a sync without an ID), or an error naming the choices."""
        running = [r for r in self.backend.rentals()["rentals"] if r.get("status") == "running"]
        if len(running) == 1:
            return str(running[0]["id"])
        if not running:
            raise NotebookError(
                "no rental is running, so there is no pod to sync with. %gpu_rent starts one; "
                "%gpu_rentals lists yours."
            )
        ids = ", ".join(
            str(r["id"]) + (f" ({r['name']})" if r.get("name") else "") for r in running
        )
        raise NotebookError(f"{len(running)} rentals are running ({ids}): say which, by its ID.")

    def run(
        self, action: str, paths: list[str], bwlimit: float | None = None, *, wait: bool = True
    ) -> dict[str, Any] | None:
        """``%gpu_sync ACTION [ID] [LOCAL] [REMOTE]``: an ID is known by its ``rent_`` prefix."""
        paths = list(paths)
        rental_id = paths.pop(0) if paths and paths[0].startswith("rent_") else None
        if action in ("status", "cancel"):
            if paths:
                raise NotebookError(f"only a rental ID goes with {action}.")
            (self.status if action == "status" else self.cancel)(rental_id)
            return None
        if len(paths) > 2:
            raise NotebookError(
                "at most a rental ID, a local folder and the pod's folder: `%gpu_sync --help` "
                "shows the usage. Nothing was done."
            )
        local, remote = [*paths, None, None][:2]
        direction: Direction = "up" if action == "up" else "down"
        return self.sync(direction, rental_id, local, remote, bwlimit=bwlimit, wait=wait)

    def sync(
        self,
        direction: Direction,
        rental_id: str | None = None,
        local_dir: str | None = None,
        remote_dir: str | None = None,
        *,
        bwlimit: float | None = None,
        wait: bool = True,
    ) -> dict[str, Any]:
        """Start an upload (``up``) or download (``down``) and follow it until it ends.

        ``local_dir``: by default the kernel's working folder (the notebook's folder);
        ``remote_dir``: by default the rental's remote work folder (``~/work``).
        """
        rental_id = rental_id or self.running_rental()
        local = os.path.abspath(os.path.expanduser(local_dir or os.getcwd()))
        body: dict[str, Any] = {"direction": direction, "localDir": local}
        if remote_dir:
            body["remoteDir"] = remote_dir
        if bwlimit is not None:
            body["bwlimit"] = bwlimit
        started = self.backend.start_transfer(rental_id, body)
        if not wait:
            self.say(
                f"The {'upload' if direction == 'up' else 'download'} runs in the background: "
                f"%gpu_sync status {rental_id} shows it, %gpu_sync cancel {rental_id} stops it."
            )
            return dict(started.get("transfer") or {})
        return self.follow(rental_id, started)

    def follow(self, rental_id: str, reply: dict[str, Any]) -> dict[str, Any]:
        """Long-poll the rental's transfer, updating a view, until it ends; Ctrl-C cancels it."""
        transfer: dict[str, Any] = dict(reply.get("transfer") or {})
        ours = transfer.get("id")
        view = self._view()
        try:
            while transfer.get("state") == "running":
                view.update(transfer)
                reply = self.backend.transfer(
                    rental_id, since=int(reply["version"]), wait=self.poll_seconds
                )
                latest = reply.get("transfer") or {}
                if latest.get("id") != ours:
                    break  # ours ended and another began: ours is in the rental's history
                transfer = dict(latest)
        except KeyboardInterrupt:
            reply = self.backend.cancel_transfer(rental_id)
            transfer = dict(reply.get("transfer") or transfer)
            view.finish(transfer)
            self.say(
                f"Cancelled the {transfer.get('kind', 'transfer')} (interrupted). Files that "
                "arrived whole are kept: run it again to resume from there."
            )
            return transfer
        view.finish(transfer)
        if transfer.get("state") == "failed":
            raise NotebookError(transfer_line(transfer))
        return transfer

    def status(self, rental_id: str | None = None) -> dict[str, Any]:
        """The rental's running or last transfer."""
        rental_id = rental_id or self.running_rental()
        transfer = dict(self.backend.transfer(rental_id).get("transfer") or {})
        self.say(transfer_line(transfer) if transfer else f"{rental_id} has had no transfer yet.")
        return transfer

    def cancel(self, rental_id: str | None = None) -> dict[str, Any]:
        """Cancel the rental's running transfer."""
        rental_id = rental_id or self.running_rental()
        transfer = dict(self.backend.cancel_transfer(rental_id).get("transfer") or {})
        self.say(transfer_line(transfer))
        return transfer

    # A stop that saves first.

    def stop_saving(self, rental_id: str) -> RentalJSON:
        """Ask for the stop (which saves first, then stops) and show the save while it runs."""
        backend = self.backend
        asked = time.time()
        view: TransferView | None = None
        seen: dict[str, Any] = {}
        with ThreadPoolExecutor(1, thread_name_prefix="gpuoutlet-stop") as pool:
            stopping = pool.submit(backend.stop, rental_id, save=True)
            version: int | None = None
            try:
                while not stopping.done():
                    reply = backend.transfer(rental_id, since=version, wait=0.5)
                    version = int(reply["version"])
                    transfer = reply.get("transfer") or {}
                    if transfer.get("kind") == "save" and _since(transfer, asked):
                        if view is None:
                            view = self._view()
                        seen = dict(transfer)
                        view.update(seen)
            except GpuOutletError:
                pass  # the progress is a nicety; the stop's own answer says what happened
            except KeyboardInterrupt:
                self.say(
                    f"Stopped showing the save (interrupted). The stop of {rental_id} goes on: "
                    "its work is saved first, then the rental is stopped."
                )
                raise
            stopped = stopping.result()
        if view is not None:
            final = backend.transfer(rental_id).get("transfer") or seen
            view.finish(dict(final))
        return stopped


def _since(transfer: dict[str, Any], asked: float) -> bool:
    """The transfer started after the stop was asked (not an earlier save)."""
    from datetime import datetime

    started = transfer.get("startedAt")
    if not isinstance(started, str):
        return False
    try:
        return datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp() >= asked - 1
    except ValueError:
        return False


def save_line(save: dict[str, Any]) -> str:
    """The newest save, as the stop reports it (its summary says what and where)."""
    summary = str(save.get("summary") or "")
    if save.get("error") and not save.get("files"):
        return f"The save before the stop failed; the stop went ahead. {summary}"
    return summary
