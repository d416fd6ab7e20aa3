"""The jupyter-server extension: thin tornado handlers over a plain manager hosting RentalService.

Importing this package stays light (no tornado, no jupyter_server): the kernel side reads the
environment variable names and the URL prefix from here. ``GpuOutletApp`` is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .env import API_PATH, AUTH_RESOURCE, ENV_SERVER_TOKEN, ENV_SERVER_URL, EXTENSION_NAME

if TYPE_CHECKING:
    from .app import GpuOutletApp

__all__ = [
    "API_PATH",
    "AUTH_RESOURCE",
    "ENV_SERVER_TOKEN",
    "ENV_SERVER_URL",
    "EXTENSION_NAME",
    "GpuOutletApp",
]


def __getattr__(name: str) -> Any:
    if name == "GpuOutletApp":
        from .app import GpuOutletApp

        return GpuOutletApp
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
