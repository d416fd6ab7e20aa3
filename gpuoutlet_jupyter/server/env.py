"""Names shared by the server extension and the kernels it starts (stdlib only)."""

from __future__ import annotations

from typing import Final

#: The ExtensionApp's name; also its traitlets section (``c.GpuOutletApp``) and settings key.
EXTENSION_NAME: Final = "gpuoutlet"
#: Where the REST API lives, relative to the server's ``base_url``.
API_PATH: Final = "gpuoutlet/api"
#: The jupyter-server authorization resource of every handler.
AUTH_RESOURCE: Final = "gpuoutlet"
#: Set in the server's environment once the port is bound, so every kernel started afterwards
#: inherits them: the server's URL (including ``base_url``), and a token that only the gpuoutlet
#: handlers accept (``Authorization: token <value>``).
ENV_SERVER_URL: Final = "GPUOUTLET_SERVER_URL"
ENV_SERVER_TOKEN: Final = "GPUOUTLET_SERVER_TOKEN"  # noqa: S105 - a variable name
