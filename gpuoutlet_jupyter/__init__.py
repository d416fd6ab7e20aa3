"""Rent a GPU from inside Jupyter; this top-level import stays light (no tornado, no jupyter_server)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .notebook.panel import Panel
    from .notebook.rent import Rental, rent

__all__ = [
    "Panel",
    "Rental",
    "__version__",
    "load_ipython_extension",
    "rent",
    "unload_ipython_extension",
]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """The jupyter-server extension (imported here, lazily: kernels never load tornado)."""
    from .server.app import GpuOutletApp

    return [{"module": "gpuoutlet_jupyter.server", "app": GpuOutletApp}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """The prebuilt JupyterLab sidebar (for `jupyter labextension develop`)."""
    return [{"src": "labextension", "dest": "gpuoutlet-jupyter"}]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext gpuoutlet_jupyter``: the %gpu_* magics (the client loads on first use)."""
    from .notebook.extension import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext gpuoutlet_jupyter``: removes the magics; rentals are not stopped."""
    from .notebook.extension import unload_ipython_extension as unload

    unload(ipython)


def __getattr__(name: str) -> Any:
    # `gpuoutlet_jupyter.Panel()` without importing ipywidgets at `import gpuoutlet_jupyter`.
    if name == "Panel":
        from .notebook.panel import Panel

        return Panel
    # `with gpuoutlet_jupyter.rent("rtx-4090") as rental:` (notebook/rent.py), loaded on use.
    if name in ("rent", "Rental"):
        from .notebook import rent as module

        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
