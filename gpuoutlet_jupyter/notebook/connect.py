"""Choosing the backend: the Jupyter server this kernel belongs to, else a service in-process."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..saves.traits import SaveOptions
from ..service.options import ServiceConfig
from .backend import Backend
from .discovery import ServerLocation, find_server
from .errors import ExtensionMissingError, NoServerError
from .settings import KernelSettings

BackendChoice = Literal["auto", "server", "in-process"]


@dataclass(frozen=True)
class BackendConfig:
    """How to pick and configure the backend (from ``NotebookSession``'s traits)."""

    #: The in-process service's settings; its ``request_timeout`` is the server's client's too.
    service: ServiceConfig
    backend: BackendChoice = "auto"
    #: Saving and syncing, when this kernel hosts the service itself.
    saves: SaveOptions = field(default_factory=SaveOptions)


def open_backend(config: BackendConfig, settings: KernelSettings | None = None) -> Backend:
    """The server this kernel belongs to, if any (probed once); else an in-process service."""
    settings = settings or KernelSettings.from_env()
    location: ServerLocation | None = None
    if config.backend != "in-process":
        location = find_server(settings)
    if location is None and config.backend == "server":
        raise NoServerError(
            "No Jupyter server was found for this kernel (it has neither GPUOUTLET_SERVER_URL "
            "in its environment nor a JPY_PARENT_PID with a runtime file), yet "
            "NotebookSession.backend is 'server'. Start the kernel from a Jupyter server with "
            "the gpuoutlet extension, or run `%config NotebookSession.backend = 'auto'`."
        )
    if location is not None:
        from .rest import ServerBackend

        server = ServerBackend(location, request_timeout=config.service.request_timeout)
        try:
            server.status()
        except ExtensionMissingError:
            server.close()
            if config.backend == "server" or location.published:
                raise
            # A Jupyter server without the extension: this kernel talks to the API itself.
            note = f"the Jupyter server at {location.url} does not run the gpuoutlet extension"
            return _in_process(config, note)
        except BaseException:
            server.close()
            raise
        return server
    return _in_process(config, None)


def _in_process(config: BackendConfig, note: str | None) -> Backend:
    from .inprocess import InProcessBackend

    return InProcessBackend(config.service, note=note, saves=config.saves)
