"""Never lose work to a stop: a rental's work saved before every stop, and its folders synced.

A stop destroys the pod and its disk. The :class:`Saver` joins a RentalService through its
hooks and saves each rental's save paths to ``<saves_dir>/<rental name or id>/`` before every
stop the service makes, ahead of the stops gpuoutlet makes itself (``Guard``), and runs the
uploads and downloads asked for (``%gpu_sync``, the sidebar), one per rental at a time, over
the rental's shared SSH connection (``gpuoutlet_jupyter.remote``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .traits import SaveOptions, SaveTraits

if TYPE_CHECKING:
    from .errors import WorkError
    from .saver import Saver

__all__ = ["SaveOptions", "SaveTraits", "Saver", "WorkError", "attach_saver", "save_status"]


def save_status(options: SaveOptions, remote_workdir: str) -> dict[str, Any]:
    """The status members about saving: the remote workdir, where saves go, their limits."""
    return {
        "remoteWorkdir": remote_workdir,
        "savesDir": options.saves_dir,
        "maxSaveBytes": options.byte_cap,
        "saveTimeoutSeconds": options.time_cap,
    }


def attach_saver(service: Any, options: SaveOptions, **kwargs: Any) -> Saver:
    """A Saver joined to ``service``'s hooks (call before ``service.start()``)."""
    from .saver import Saver

    kwargs.setdefault("remotes", service.remotes)  # the host's one RemoteManager
    return Saver(service, options, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "Saver":
        from .saver import Saver

        return Saver
    if name == "WorkError":
        from .errors import WorkError

        return WorkError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
