"""Loading and unloading the magics into an IPython shell, over the kernel's one NotebookSession."""

from __future__ import annotations

from typing import Any

#: The magics of each shell this extension is loaded into (by the shell's id).
_LOADED: dict[int, list[Any]] = {}


def load_ipython_extension(ipython: Any) -> None:
    """Register the %gpu_* magics and the session's settings; nothing heavy is imported until
    a magic runs."""
    if id(ipython) in _LOADED:
        return
    from .completion import register
    from .create_magics import CreateMagics
    from .kernel_magics import KernelMagics
    from .login_magics import LoginMagics
    from .magics import GpuMagics
    from .pod_magics import PodMagics
    from .session import NotebookSession

    if NotebookSession.initialized():
        session = NotebookSession.current()  # made by Panel() before the magics were loaded
        session.shell = session.shell or ipython
    else:
        session = NotebookSession.instance(shell=ipython)
    if session not in ipython.configurables:
        ipython.configurables.append(session)  # for %config NotebookSession
    loaded = [
        GpuMagics(shell=ipython, session=session),
        CreateMagics(shell=ipython, session=session),
        KernelMagics(shell=ipython, session=session),
        LoginMagics(shell=ipython, session=session),
        PodMagics(shell=ipython, session=session),
    ]
    for magics in loaded:
        ipython.register_magics(magics)
    register(ipython)
    _LOADED[id(ipython)] = loaded


def unload_ipython_extension(ipython: Any) -> None:
    """Remove the magics and close the session's backend (rentals go on; they are not stopped)."""
    loaded = _LOADED.pop(id(ipython), None)
    if loaded is None:
        return
    from .completion import unregister
    from .session import NotebookSession

    session = loaded[0].session
    session.close()
    if NotebookSession.initialized() and NotebookSession.instance() is session:
        NotebookSession.clear_instance()  # a %reload_ext starts a fresh session
    unregister(ipython)
    table = ipython.magics_manager.magics
    for magics in loaded:
        for kind, names in magics.magics.items():
            for name in names:
                table[kind].pop(name, None)
        ipython.magics_manager.registry.pop(type(magics).__name__, None)
    for configurable in (*loaded, session):
        if configurable in ipython.configurables:
            ipython.configurables.remove(configurable)
