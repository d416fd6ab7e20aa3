"""Building RentalService from its settings: one recipe for the server extension and the magics."""

from __future__ import annotations

from ..api import AsyncRentalsClient, ConfigurationError, Settings
from ..remote import RemoteManager
from ..ssh import SSHConfigError, SSHConfigWriter
from .access import KernelSpecs
from .idle import ActivitySource
from .options import ServiceConfig
from .service import RentalService


def build_service(
    settings: Settings,
    config: ServiceConfig,
    *,
    fix_hint: str,
    client: AsyncRentalsClient | None = None,
    activity: ActivitySource | None = None,
) -> RentalService:
    """A RentalService owning its client; `fix_hint` says where a person fixes bad SSH settings.

    `activity` tells what the rentals' kernels do; without it there is no idle auto-stop.
    The host's one RemoteManager (the rentals' shared SSH connections) is made here and closed
    with the service: ``service.remotes``.
    """
    try:
        ssh = SSHConfigWriter(
            config.ssh_dir, user=config.ssh_user, identity_file=config.identity_file
        )
    except SSHConfigError as exc:
        raise ConfigurationError(f"The SSH settings are not usable: {exc}. {fix_hint}") from None
    kernelspecs: KernelSpecs | None = None
    if config.kernelspecs:
        # Imported here: jupyter_client is only needed once a service is actually built.
        from ..kernel.specs import KernelSpecWriter

        kernelspecs = KernelSpecWriter(
            python=config.remote_python,
            state_dir=config.state_dir,
            # Remote kernels start in the working folder, where the notebook's files are synced.
            provisioner_config={"remote_cwd": config.options.remote_workdir},
        )
    service = RentalService(
        client or AsyncRentalsClient(settings),
        state_dir=config.state_dir,
        ssh=ssh,
        kernelspecs=kernelspecs,
        options=config.options,
        activity=activity,
        owns_client=True,
        remotes=RemoteManager(
            config.control_dir, telemetry_interval=config.options.telemetry_interval
        ),
    )
    from ..kernel.rental_end import EndedRentalKernels  # stdlib and filelock only

    # A rental that ended (any path) leaves no remote kernel record behind (issue 17).
    service.hooks.ended.append(EndedRentalKernels(config.state_dir).ended)
    return service
