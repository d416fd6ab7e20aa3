"""Rent a GPU from inside Jupyter; this top-level import stays light (no tornado, no jupyter_server)."""

from ._version import __version__

__all__ = ["__version__"]
