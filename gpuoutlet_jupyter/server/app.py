"""GpuOutletApp: the ExtensionApp that hosts RentalService inside a Jupyter server.

Configure it like any Jupyter app, e.g. in ``jupyter_server_config.py``::

    c.GpuOutletApp.api_url = "http://127.0.0.1:8765"   # a local sandbox
    c.GpuOutletApp.poll_interval = 2.0

Sign in from Jupyter (the sidebar, or ``%gpu_login`` in a notebook): the session goes to the
credentials file (mode 0600) and is used at once. A sid set by hand is best left to
``GPUOUTLET_SID`` or that file, so it is not in a config file. Lifecycle: settings and handlers at initialisation; the service starts in
``_start_jupyter_server_extension`` (the loop runs, the port is bound) and closes in
``stop_extension``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.extension.application import ExtensionApp
from jupyter_server.utils import url_path_join
from pydantic import SecretStr
from traitlets import Float, TraitError, Unicode, default, validate

from .._version import __version__
from ..api.settings import ENV_SID
from ..kernel.provisioner import detach_all
from ..saves import SaveOptions, SaveTraits
from ..service.options import default_of, from_traits, service_config
from ..service.traits import IdleTraits, ServiceTraits
from .activity import KernelManagerActivity
from .auth import KernelToken
from .env import API_PATH, ENV_SERVER_TOKEN, ENV_SERVER_URL, EXTENSION_NAME
from .handlers import routes
from .kernel_handlers import kernel_routes
from .kernels import ServerKernels
from .manager import ManagerConfig, RentalsManager
from .rental_kernels import RentalKernels

#: The logger every module of the package logs to; routed to the server's log while it runs.
_LIBRARY_LOGGER = "gpuoutlet_jupyter"


class GpuOutletApp(ServiceTraits, IdleTraits, SaveTraits, ExtensionApp):
    """Rent GPUs from Jupyter: REST under ``{base_url}gpuoutlet/api/`` over one RentalService."""

    name = EXTENSION_NAME
    description = "Rent a GPU from inside Jupyter: REST API and rental watcher."
    version = __version__
    load_other_extensions = True

    api_url = Unicode(
        "",
        help="""URL of the rentals API, e.g. https://gpuoutlet.ai or a local sandbox's URL.
        Empty: the GPUOUTLET_API_URL environment variable, then `api_url=` in the credentials
        file (~/.config/gpuoutlet/credentials), then https://gpuoutlet.ai.""",
    ).tag(config=True)

    sid = Unicode(
        "",
        help="""The gpuoutlet session (the website's `sid` cookie). Empty: the GPUOUTLET_SID
        environment variable, then `sid=` in the credentials file (~/.config/gpuoutlet/credentials,
        mode 0600), which a sign-in from Jupyter (the sidebar, %gpu_login) writes. Prefer those:
        a config file is easily shared, and Jupyter prints its whole configuration, this value
        included, at the DEBUG log level. A sign-in from Jupyter replaces this value until the
        server restarts. Never shown by the REST API nor logged by this extension. Without
        any, the server still starts, the endpoints answer 503 `not_configured`, and the
        sidebar offers to sign in.""",
    ).tag(config=True)

    state_dir = Unicode(
        help="""Where the tracked rentals are persisted, so a restarted server resumes watching
        them. Default: <Jupyter data dir>/gpuoutlet.""",
    ).tag(config=True)

    max_wait = Float(
        default_of(ManagerConfig, "max_wait"),
        help="Cap, in seconds, on the `wait` of a long-poll request to the REST API.",
    ).tag(config=True)

    @default("state_dir")
    def _default_state_dir(self) -> str:
        return os.path.join(jupyter_data_dir(), EXTENSION_NAME)

    @validate("max_wait")
    def _validate_max_wait(self, proposal: Any) -> Any:
        if proposal["value"] < 0:
            raise TraitError("max_wait must be 0 or more")
        return proposal["value"]

    # Set by initialize_settings.
    manager: RentalsManager
    kernel_token: KernelToken
    kernels: ServerKernels

    def manager_config(self) -> ManagerConfig:
        """The traitlets, as the manager's configuration (in one step: see ``from_traits``)."""
        return from_traits(
            ManagerConfig,
            self,
            service=service_config(self, Path(self.state_dir).expanduser()),
            api_url=self.api_url.strip(),
            sid=SecretStr(self.sid.strip()) if self.sid.strip() else None,
            saves=from_traits(SaveOptions, self),
            local_root=self._root_dir(),
        )

    def _root_dir(self) -> Path | None:
        """The server's root folder: relative local folders of a sync are there."""
        root = getattr(self.serverapp, "root_dir", None) if self.serverapp is not None else None
        return Path(root).expanduser() if root else None

    def initialize_settings(self) -> None:
        """Build the manager (no I/O, no tasks: there may be no running loop yet)."""
        self.kernel_token = KernelToken()
        # The server runs the rentals' remote kernels, so it can tell an idle rental.
        activity = None
        if self.serverapp is not None:
            activity = KernelManagerActivity(self.serverapp.kernel_manager)
        self.manager = RentalsManager(self.manager_config(), activity=activity)
        # The rentals' remote kernels, read from their records (no upstream request).
        self.kernels = ServerKernels(Path(self.state_dir).expanduser(), self.serverapp)
        if self.serverapp is not None:
            # A rental that ended takes its kernels (and their sessions) with it.
            kernels = RentalKernels(
                self.serverapp.kernel_manager, getattr(self.serverapp, "session_manager", None)
            )
            self.manager.host.on_build.append(
                lambda service: service.hooks.ended.append(kernels.ended)
            )
        self._saved_environ: dict[str, str | None] = {}
        # The sid lives in this process only: kernels (user code) started later must not
        # inherit it. They reach the API through this server with their own token instead.
        if ENV_SID in os.environ:
            self._saved_environ[ENV_SID] = os.environ.pop(ENV_SID)
        self._route_library_logs()
        if self.sid.strip() and self.log.isEnabledFor(logging.DEBUG):
            self.log.warning(
                "gpuoutlet: GpuOutletApp.sid is set in the Jupyter configuration, which Jupyter "
                "prints at the DEBUG log level: set GPUOUTLET_SID or use the credentials file "
                "instead, so the session stays out of logs."
            )

    def initialize_handlers(self) -> None:
        self.handlers.extend(routes(self.manager, self.kernel_token))
        self.handlers.extend(kernel_routes(self.manager, self.kernel_token, self.kernels))

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        """On the live loop, port bound: tell future kernels where we are, then start watching."""
        self._publish_to_kernels(serverapp.connection_url)
        self.manager.proxy_base = proxy_base(serverapp)
        await self.manager.start()

    async def stop_extension(self) -> None:
        # Jupyter is going away and shuts its kernels down next: the rentals' remote kernels
        # stay on their machines, detached, for the next Jupyter to adopt (issue 17).
        await detach_all()
        await self.kernels.close()
        await self.manager.stop()
        self._unpublish()
        self._unroute_library_logs()

    # Kernels find the server through the environment they inherit.

    def _publish_to_kernels(self, url: str) -> None:
        for name, value in ((ENV_SERVER_URL, url), (ENV_SERVER_TOKEN, self.kernel_token.value)):
            self._saved_environ.setdefault(name, os.environ.get(name))
            os.environ[name] = value
        self.log.info("gpuoutlet: kernels reach the gpuoutlet API at %s%s/", url, API_PATH)

    def _unpublish(self) -> None:
        for name, previous in self._saved_environ.items():
            if previous is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = previous
        self._saved_environ.clear()

    # The library's loggers (service, api, ssh) write to the server's log, as tornado's do.

    def _route_library_logs(self) -> None:
        library = logging.getLogger(_LIBRARY_LOGGER)
        self._routed_logger = False
        if library.handlers or library.parent is not logging.getLogger():
            return  # configured by someone else: leave it alone
        server_log = self.serverapp.log if self.serverapp is not None else self.log
        library.parent = server_log
        self._routed_logger = True

    def _unroute_library_logs(self) -> None:
        if getattr(self, "_routed_logger", False):
            logging.getLogger(_LIBRARY_LOGGER).parent = logging.getLogger()
            self._routed_logger = False


def proxy_base(serverapp: Any) -> str | None:
    """``{base_url}proxy/`` when jupyter-server-proxy is enabled on this server, else None: a
    forwarded pod port is then opened through it (and so works when JupyterLab is remote)."""
    extensions = getattr(getattr(serverapp, "extension_manager", None), "extensions", {})
    package = extensions.get("jupyter_server_proxy")
    if package is None or not package.enabled:
        return None
    return url_path_join(serverapp.base_url, "proxy/")
