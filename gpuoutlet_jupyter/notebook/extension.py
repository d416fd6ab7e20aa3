"""Loading and unloading the magics into an IPython shell; the core the panel shares with them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .core import GpuCore
    from .magics import GpuOutletMagics

#: The magics instance of each shell this extension is loaded into (by the shell's id).
_LOADED: dict[int, GpuOutletMagics] = {}
#: Settings and backend of Panel() when the magics are not loaded.
_standalone: GpuOutletMagics | None = None


def load_ipython_extension(ipython: Any) -> None:
    """Register the %gpu_* magics; nothing heavy is imported until a magic runs."""
    from .magics import GpuOutletMagics

    if id(ipython) in _LOADED:
        return
    from .completion import register

    magics = GpuOutletMagics(shell=ipython)  # also joins shell.configurables, for %config
    ipython.register_magics(magics)
    register(ipython)
    _LOADED[id(ipython)] = magics


def unload_ipython_extension(ipython: Any) -> None:
    """Remove the magics and close the backend (rentals go on; they are not stopped)."""
    magics = _LOADED.pop(id(ipython), None)
    if magics is None:
        return
    magics.close()
    from .completion import unregister

    unregister(ipython)
    table = ipython.magics_manager.magics
    for kind, names in magics.magics.items():
        for name in names:
            table[kind].pop(name, None)
    ipython.magics_manager.registry.pop(type(magics).__name__, None)
    if magics in ipython.configurables:
        ipython.configurables.remove(magics)


def loaded_magics(ipython: Any = None) -> GpuOutletMagics | None:
    """The magics loaded into ``ipython`` (default: the running shell), if any."""
    if ipython is None:
        from IPython import get_ipython

        ipython = get_ipython()
    return _LOADED.get(id(ipython)) if ipython is not None else None


def shared_core() -> GpuCore:
    """The loaded magics' core (same backend and settings), else a default one."""
    global _standalone
    magics = loaded_magics()
    if magics is not None:
        return magics.core
    if _standalone is None:
        from .magics import GpuOutletMagics

        # One for the process: every Panel() shares its backend (one in-process service).
        _standalone = GpuOutletMagics(shell=None)
    return _standalone.core
