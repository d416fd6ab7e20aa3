"""The service's settings as traitlets, shared by GpuOutletApp (server) and GpuOutletMagics (kernel)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from traitlets import Bool, Float, Integer, TraitError, Unicode, validate
from traitlets.config import Configurable

if TYPE_CHECKING:
    from .config import ServiceConfig


class ServiceTraits(Configurable):
    """Mixin: how RentalService writes SSH entries and kernelspecs, and how often it polls."""

    ssh_dir = Unicode(
        "", help="The SSH folder whose config gets the rentals' aliases (~/.ssh)."
    ).tag(config=True)
    ssh_user = Unicode("root", help="User name written in each rental's SSH entry.").tag(
        config=True
    )
    identity_file = Unicode(
        "",
        help="""Private key written in each rental's SSH entry. Empty: your ~/.ssh/id_ed25519 or
        id_rsa, else a key generated once for gpuoutlet-jupyter.""",
    ).tag(config=True)
    kernelspecs = Bool(
        True, help="Add a Jupyter kernel (gpuoutlet-<rental id>) for every running rental."
    ).tag(config=True)
    remote_python = Unicode(
        "python3", help="The Python interpreter on the rented machine that runs remote kernels."
    ).tag(config=True)
    poll_interval = Float(
        2.0, help="Seconds between two polls of a provisioning rental (the API asks for 2)."
    ).tag(config=True)
    max_polls = Integer(
        60,
        help="Polls after which a provisioning rental is reported as slow and polled less often.",
    ).tag(config=True)
    slow_poll_interval = Float(
        10.0, help="Seconds between two polls of a rental that is slow to provision."
    ).tag(config=True)
    running_poll_interval = Float(
        30.0, help="Seconds between two polls of a running rental (to notice stops elsewhere)."
    ).tag(config=True)
    reconcile_interval = Float(
        300.0,
        help="""Seconds between two comparisons with the API's list of rentals (adopts rentals
        made elsewhere, notices vanished ones). 0: only at start.""",
    ).tag(config=True)
    max_hourly_spend_cents = Integer(
        0,
        help="""Spending cap, in cents per hour: a new rental is refused, before anything is
        sent to the API, when its price plus the prices of the rentals still provisioning,
        running or stopping would exceed it. 0: no cap.""",
    ).tag(config=True)
    request_timeout = Float(30.0, help="Seconds to wait for one answer of the rentals API.").tag(
        config=True
    )

    @validate(
        "poll_interval",
        "slow_poll_interval",
        "running_poll_interval",
        "request_timeout",
        "max_polls",
    )
    def _validate_positive(self, proposal: Any) -> Any:
        value = proposal["value"]
        if value <= 0:
            raise TraitError(f"{proposal['trait'].name} must be greater than 0 (got {value})")
        return value

    @validate("reconcile_interval", "max_hourly_spend_cents")
    def _validate_not_negative(self, proposal: Any) -> Any:
        if proposal["value"] < 0:
            raise TraitError(f"{proposal['trait'].name} must be 0 or more")
        return proposal["value"]

    def service_config(self, state_dir: Path) -> ServiceConfig:
        """These traits as the service's configuration."""
        # Imported here: the magics load this mixin at %load_ext, before any client is needed.
        from .config import ServiceConfig
        from .service import ServiceOptions

        return ServiceConfig(
            state_dir=state_dir,
            ssh_dir=Path(self.ssh_dir).expanduser() if self.ssh_dir else None,
            ssh_user=self.ssh_user,
            identity_file=Path(self.identity_file).expanduser() if self.identity_file else None,
            kernelspecs=self.kernelspecs,
            remote_python=self.remote_python,
            options=ServiceOptions(
                poll_interval=self.poll_interval,
                max_polls=self.max_polls,
                slow_poll_interval=self.slow_poll_interval,
                running_poll_interval=self.running_poll_interval,
                reconcile_interval=self.reconcile_interval,
                max_hourly_spend_cents=self.max_hourly_spend_cents,
            ),
        )
