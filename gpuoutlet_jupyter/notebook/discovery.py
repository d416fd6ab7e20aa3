"""Finding the Jupyter server that runs this kernel: the extension's variables, else its runtime file."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..server.env import ENV_SERVER_TOKEN, ENV_SERVER_URL
from .settings import ENV_PARENT_PID, KernelSettings


@dataclass(frozen=True)
class ServerLocation:
    """Where the server is and how to authenticate to its gpuoutlet API."""

    #: The server's URL including its base_url, ending in ``/``.
    url: str
    #: ``Authorization: token <token>``; None when the server has no token.
    token: str | None = field(repr=False)
    #: How it was found, for messages ("GPUOUTLET_SERVER_URL in this kernel's environment").
    source: str
    #: The Unix socket the server listens on instead of a TCP port, if any.
    socket: str | None = None
    #: True for the extension's own variables (its kernel token); False for a runtime file.
    published: bool = True


def find_server(settings: KernelSettings, runtime_dir: Path | None = None) -> ServerLocation | None:
    """The extension's variables first; else the runtime file of the parent process; else None."""
    if settings.server_url:
        return ServerLocation(
            url=_with_slash(settings.server_url),
            token=settings.server_token,
            source=f"{ENV_SERVER_URL} and {ENV_SERVER_TOKEN} in this kernel's environment",
        )
    if settings.parent_pid is None:
        return None
    if runtime_dir is None:
        # jupyter_core is light, and only needed on this path.
        from jupyter_core.paths import jupyter_runtime_dir

        runtime_dir = Path(jupyter_runtime_dir())
    return read_runtime_file(runtime_dir / f"jpserver-{settings.parent_pid}.json")


def read_runtime_file(path: Path) -> ServerLocation | None:
    """A ``jpserver-<pid>.json`` as a location; None when it is missing or not a server's."""
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or not isinstance(info.get("url"), str):
        return None
    token = info.get("token")
    sock = info.get("sock") if isinstance(info.get("sock"), str) and info.get("sock") else None
    url = info["url"]
    if sock is not None:
        # Over a Unix socket the host part is a placeholder; the path is the base_url.
        base_url = info.get("base_url")
        url = "http://localhost" + (base_url if isinstance(base_url, str) else "/")
    return ServerLocation(
        url=_with_slash(url),
        # The kernel token is only in the environment; on this path the server's own token is
        # what this kernel has (the file is private to the user, like the kernel itself).
        token=token if isinstance(token, str) and token else None,
        source=f"the Jupyter server's runtime file {path} (from {ENV_PARENT_PID})",
        socket=sock,
        published=False,
    )


def _with_slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"
