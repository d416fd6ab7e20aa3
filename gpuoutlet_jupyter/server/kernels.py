"""The server's remote kernels: the shared view of the kernel records, and "Reattach" done here.

Tornado-free, like ``manager.py``: the handlers (``kernel_handlers.py``) call ``api``. Reattach
marks the detached kernel for adoption, then starts the rental's kernelspec the way JupyterLab
would for its notebook (a session on the notebook's path), so the kernel is adopted at once and
the notebook, opened, finds its variables; without a notebook a bare kernel is started.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

from jupyter_client.kernelspec import NoSuchKernel
from jupyter_core.utils import ensure_async

from ..kernel.records import KernelRecord
from ..kernel.specs import kernel_name_for
from ..rest.kernels import KernelActionError, KernelBoard, KernelsJson, Started

log = logging.getLogger(__name__)


class ServerKernels:
    """The kernel records of the server's state dir, for the REST API and the sidebar."""

    def __init__(self, state_dir: Path | str, serverapp: Any | None = None) -> None:
        self.serverapp = serverapp
        self.board = KernelBoard(state_dir)
        self.api = KernelsJson(self.board, starter=self._start if serverapp is not None else None)

    async def close(self) -> None:
        await self.board.close()

    async def _start(self, record: KernelRecord) -> Started:
        """Start the rental's kernelspec for the kernel's notebook: it adopts the kernel."""
        app = self.serverapp
        assert app is not None
        name = record.kernel_name or kernel_name_for(record.rental_id)
        try:
            await ensure_async(app.kernel_spec_manager.get_kernel_spec(name))
        except NoSuchKernel:
            raise KernelActionError(
                f"The kernel {name} of {record.rental_id} is gone: the rental is not running "
                "any more, and its kernels ended with its machine.",
                code="rental_not_running",
                status=409,
                rental_id=record.rental_id,
            ) from None
        path = await self._notebook(record)
        try:
            if path is not None:
                model = await app.session_manager.create_session(
                    path=path, name=os.path.basename(path), type="notebook", kernel_name=name
                )
                kernel_id = str(model["kernel"]["id"])
            else:
                kernel_id = str(
                    await ensure_async(app.kernel_manager.start_kernel(kernel_name=name))
                )
        except KernelActionError:
            raise
        except Exception as exc:
            log.warning("gpuoutlet: reattaching %s failed: %s", record.wrapper, exc)
            raise KernelActionError(
                f"The kernel {record.wrapper} on {record.rental_id} could not be reattached: "
                f"{exc}. It stays detached and listed: try again once its machine answers.",
                code="reattach_failed",
                status=502,
                rental_id=record.rental_id,
            ) from None
        km = app.kernel_manager.get_kernel(kernel_id)
        adopted = getattr(getattr(km, "provisioner", None), "wrapper_id", "") == record.wrapper
        return Started(kernel_id=kernel_id, path=path, adopted=adopted)

    async def _notebook(self, record: KernelRecord) -> str | None:
        """The kernel's notebook as Jupyter names it (relative to its root), if it is still
        there and no session has it (one that has it opened its own kernel meanwhile)."""
        app = self.serverapp
        assert app is not None
        if not record.session_name:
            return None
        path = await asyncio.to_thread(api_path, record.session_name, app.contents_manager.root_dir)
        if path is None:
            return None  # under another root: this server cannot open it
        if not await ensure_async(app.contents_manager.file_exists(path)):
            return None
        if await app.session_manager.session_exists(path=path):
            return None
        return path


def api_path(session_name: str, root_dir: str) -> str | None:
    """A notebook's file path (``JPY_SESSION_NAME``) as Jupyter's API names it, relative to the
    server's root; None when it is not under that root."""
    root = os.path.realpath(root_dir)
    full = os.path.realpath(session_name)
    if os.path.commonpath([root, full]) != root or full == root:
        return None
    return Path(os.path.relpath(full, root)).as_posix()
