"""What a kernel learns from its environment: the Jupyter server that started it, where its own
state goes (stdlib only; jupyter_core when asked for the state dir)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..server.env import ENV_SERVER_TOKEN, ENV_SERVER_URL

#: Set by jupyter_client's launcher in every kernel it starts: the pid of the launching process.
ENV_PARENT_PID = "JPY_PARENT_PID"
#: Set by a Jupyter server in the kernels of its sessions: the notebook's path.
ENV_SESSION_NAME = "JPY_SESSION_NAME"


@dataclass(frozen=True)
class KernelSettings:
    """The kernel-side environment, read once, in one place.

    The rentals API's own settings (GPUOUTLET_API_URL, GPUOUTLET_SID, the credentials file) are
    read by ``gpuoutlet_jupyter.api.Settings`` and only on the in-process path.
    """

    #: The server URL (with its base_url) that the extension published to its kernels.
    server_url: str | None = None
    #: The kernel token that only the gpuoutlet handlers accept; never shown in a repr.
    server_token: str | None = field(default=None, repr=False)
    #: The pid of whatever launched this kernel (a Jupyter server, nbclient, VS Code, ...).
    parent_pid: int | None = None
    #: The notebook this kernel runs (its path), when the server said (a rental's name has it).
    notebook: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KernelSettings:
        """Read the variables; empty or malformed values count as unset."""
        env = os.environ if environ is None else environ
        pid_text = env.get(ENV_PARENT_PID, "").strip()
        return cls(
            server_url=env.get(ENV_SERVER_URL, "").strip() or None,
            server_token=env.get(ENV_SERVER_TOKEN, "").strip() or None,
            parent_pid=int(pid_text) if pid_text.isdigit() and int(pid_text) > 0 else None,
            notebook=env.get(ENV_SESSION_NAME, "").strip() or None,
        )


def default_state_dir() -> Path:
    """``<Jupyter data dir>/gpuoutlet/in-process``: apart from the server's own state file."""
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "gpuoutlet" / "in-process"
