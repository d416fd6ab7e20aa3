"""NotebookSession: gpuoutlet in one kernel, its settings and the GpuCore over them.

The magics, the panel and the progress widgets all use one session: the same settings
(``%config NotebookSession``), the same backend, the same in-process service. Importing this is
light (traitlets and the stdlib): the client, the service and the widgets load when the core
first needs a backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from traitlets import All, Enum, Float, Unicode, observe
from traitlets.config import SingletonConfigurable

from ..saves.traits import SaveTraits
from ..service.traits import ServiceTraits
from .follow import WAIT_SECONDS

if TYPE_CHECKING:
    from .backend import Backend
    from .connect import BackendChoice, BackendConfig
    from .core import GpuCore
    from .follow import RentalFollow
    from .login import LoginCore
    from .progress import ProgressView
    from .sync import SyncCore, TransferView
    from .views.session import CodeSent

#: The settings' section before this class held them (the magics class did): what users wrote
#: in ``ipython_config.py`` (``c.GpuOutletMagics.…``) and ``%config GpuOutletMagics.… = …``.
LEGACY_SECTION = "GpuOutletMagics"


class NotebookSession(ServiceTraits, SaveTraits, SingletonConfigurable):
    """gpuoutlet in this kernel: where rentals are handled, how progress shows, and (when this
    kernel rents by itself) the service's own settings. ``%config NotebookSession`` lists them;
    the Jupyter server has its own (``c.GpuOutletApp.*``). A change that shapes the backend
    takes effect at the next magic: the current backend is let go."""

    backend = Enum(
        ["auto", "server", "in-process"],
        default_value="auto",
        help="""Where rentals are handled. auto: the Jupyter server that started this kernel
        (GPUOUTLET_SERVER_URL, else the server's runtime file through JPY_PARENT_PID), else
        in-process. server: the server only. in-process: this kernel talks to the rentals API
        itself (GPUOUTLET_API_URL, GPUOUTLET_SID or ~/.config/gpuoutlet/credentials).""",
    ).tag(config=True)
    progress = Enum(
        ["auto", "widget", "text"],
        default_value="auto",
        help="How progress is shown: an ipywidgets box (auto in a Jupyter kernel) or one "
        "updating text line.",
    ).tag(config=True)
    wait_seconds = Float(
        WAIT_SECONDS,
        help="Seconds one long-poll waits for a change while following a rental.",
    ).tag(config=True)
    # In-process only (the server has its own settings, c.GpuOutletApp.*).
    state_dir = Unicode(
        "",
        help="In-process: where tracked rentals are saved (<Jupyter data dir>/gpuoutlet/in-process).",
    ).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        if shell is not None:
            kwargs.setdefault("parent", shell)  # its configuration (ipython_config.py) applies
        super().__init__(**kwargs)
        #: The IPython shell this session serves (None: none, as in a script).
        self.shell = shell
        self._core: GpuCore | None = None
        # The configuration the current backend was opened with.
        self._opened: BackendConfig | None = None

    @classmethod
    def section_names(cls) -> list[str]:
        # Read before this class's own section, so a NotebookSession setting wins over a
        # GpuOutletMagics one.
        names = super().section_names()
        return [*names[:-1], LEGACY_SECTION, names[-1]]

    @classmethod
    def current(cls) -> NotebookSession:
        """This process's session: the one ``%load_ext`` made, else one made now with the running
        shell's configuration (``Panel()`` without the magics)."""
        if cls.initialized():
            return cls.instance()
        from IPython import get_ipython

        return cls.instance(shell=get_ipython())

    # The core and its backend (made on first use).

    @property
    def core(self) -> GpuCore:
        """The core over this session's backend; its follow options track the traits."""
        from ..service.options import from_traits
        from .core import GpuCore
        from .follow import FollowOptions

        if self._core is None:
            from .settings import KernelSettings

            self._core = GpuCore(
                self._connect,
                progress=self._progress_view,
                say=print,
                confirm=self._confirm,
                ask=self._ask,
                notebook=KernelSettings.from_env().notebook,
                stop_saving=lambda rental_id: self.sync.stop_saving(rental_id),
            )
        self._core.options = from_traits(FollowOptions, self)
        return self._core

    @property
    def sync(self) -> SyncCore:
        """Uploads, downloads and stops that save first, over the core's backend."""
        from .sync import SyncCore

        core = self.core
        return SyncCore(lambda: core.backend, view=self._transfer_view, say=print)

    @property
    def login(self) -> LoginCore:
        """Signing in and out over the core's backend: the form in a notebook, a hidden prompt
        in a terminal."""
        from .login import LoginCore

        form = self._show_form if self._widgets_shown() else None
        return LoginCore(self.core, ask=self._ask_secret, form=form, say=print)

    def offer_sign_in(self, error: Exception) -> None:
        """After a magic failed with ``error``: the sign-in form, when it says "not signed in"."""
        from ..api import GpuOutletError

        if isinstance(error, GpuOutletError) and self.core.connected:
            self.login.offer(error)

    def backend_config(self) -> BackendConfig:
        """The traits, as the backend's configuration."""
        from ..service.options import optional_path, service_config
        from .connect import BackendConfig
        from .settings import default_state_dir

        state_dir = optional_path(self.state_dir) or default_state_dir()
        from ..saves.traits import SaveOptions
        from ..service.options import from_traits

        return BackendConfig(
            backend=cast("BackendChoice", self.backend),
            service=service_config(self, state_dir),
            saves=from_traits(SaveOptions, self),
        )

    def open_backend(self, config: BackendConfig) -> Backend:
        """The backend for ``config``: the Jupyter server's, else a service in this kernel."""
        from .connect import open_backend

        return open_backend(config)

    def _connect(self) -> Backend:
        config = self.backend_config()
        backend = self.open_backend(config)
        self._opened = config
        return backend

    @observe(All)
    def _setting_changed(self, change: Any) -> None:
        # getattr: traits given to the constructor are set before __init__ makes `_core`.
        core: GpuCore | None = getattr(self, "_core", None)
        if core is None or not core.connected:
            return
        if self.backend_config() != self._opened:
            core.close()  # the next magic opens one with the new settings

    def close(self) -> None:
        """Let the backend go (the in-process service saves its state; rentals go on)."""
        if self._core is not None:
            self._core.close()

    # What the core asks of the kernel.

    def _progress_view(self, follow: RentalFollow) -> ProgressView:
        """A widget in a Jupyter kernel with ipywidgets (it keeps following its rental after the
        magic returns), else one updating line of text (it stops where the magic does)."""
        in_kernel = getattr(self.shell, "kernel", None) is not None
        kind = self.progress
        if kind == "auto":
            kind = "widget" if in_kernel and _have_widgets() else "text"
        if kind == "widget":
            from .widgets import ProgressWidget

            return ProgressWidget(follow=follow)
        from .progress import DisplayProgress, StreamProgress

        return DisplayProgress() if in_kernel else StreamProgress()

    def _ask(self, question: str) -> str | None:
        """The user's answer; None when this frontend cannot ask (or the input ended)."""
        from IPython.core.error import StdinNotImplementedError

        try:
            return input(question)
        except (StdinNotImplementedError, EOFError):
            return None

    def _transfer_view(self) -> TransferView:
        """A transfer's progress: a bar widget in a Jupyter kernel with ipywidgets, else a line."""
        in_kernel = getattr(self.shell, "kernel", None) is not None
        kind = self.progress
        if kind == "auto":
            kind = "widget" if in_kernel and _have_widgets() else "text"
        if kind == "widget":
            from .transfer_widget import TransferWidget

            return TransferWidget()
        from .progress import DisplayProgress, StreamProgress
        from .sync import LineView

        line = DisplayProgress() if in_kernel else StreamProgress()
        return LineView(line.show_text)

    def _widgets_shown(self) -> bool:
        """Whether widgets can be shown here: a Jupyter kernel with ipywidgets."""
        return getattr(self.shell, "kernel", None) is not None and _have_widgets()

    def _show_form(self, login: LoginCore, email: str, sent: CodeSent | None) -> bool:
        """The sign-in form (only called where ``_widgets_shown``)."""
        from IPython.display import display

        from .login_form import LoginForm

        display(LoginForm(login, email, sent))  # type: ignore[no-untyped-call]
        return True

    def _ask_secret(self, prompt: str) -> str | None:
        """The code, typed without echo and kept out of the history (None: cannot ask here)."""
        import getpass
        import sys

        from IPython.core.error import StdinNotImplementedError

        if self.shell is None and not sys.stdin.isatty():
            return None
        try:
            # In a kernel, ipykernel answers getpass with a password prompt in the frontend.
            return getpass.getpass(prompt)
        except (StdinNotImplementedError, EOFError, OSError):
            return None

    def _confirm(self, question: str) -> bool:
        from IPython.core.error import StdinNotImplementedError

        try:
            answer = input(question)
        except StdinNotImplementedError:
            from .errors import NotebookError

            raise NotebookError(
                "this frontend cannot ask for a confirmation. Nothing was stopped; run "
                "`%gpu_stop --all --yes` to stop every active rental."
            ) from None
        except EOFError:
            return False
        return answer.strip().lower() in ("y", "yes")


def _have_widgets() -> bool:
    import importlib.util

    return importlib.util.find_spec("ipywidgets") is not None
