"""The notebook layer: %gpu_* magics, the progress widget and panel, finding the server from a kernel.

Importing it is light; the client, httpx, pydantic and ipywidgets load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .extension import load_ipython_extension, unload_ipython_extension

if TYPE_CHECKING:
    from .magics import GpuMagics
    from .panel import Panel
    from .session import NotebookSession

__all__ = [
    "GpuMagics",
    "NotebookSession",
    "Panel",
    "load_ipython_extension",
    "unload_ipython_extension",
]


def __getattr__(name: str) -> Any:
    if name == "Panel":
        from .panel import Panel

        return Panel
    if name == "GpuMagics":
        from .magics import GpuMagics

        return GpuMagics
    if name == "NotebookSession":
        from .session import NotebookSession

        return NotebookSession
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
