"""The service's settings as traitlets, shared by GpuOutletApp (server) and NotebookSession (kernel).

Light on purpose (traitlets and the stdlib): the notebook layer loads it at ``%load_ext``.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

from traitlets import Bool, Float, HasTraits, Integer, TraitError, Unicode, validate
from traitlets.config import Configurable

from .options import ServiceConfig, ServiceOptions, default_of

D = TypeVar("D")

_OPTIONS = ServiceOptions()


def from_traits(kind: type[D], source: HasTraits, **given: Any) -> D:
    """The dataclass ``kind`` with each field taken from the trait of ``source`` that has its
    name, unless ``given`` (values that need converting, or that no trait holds). Fields with
    neither keep their defaults. The one step from settings to options: a trait added to both
    sides is passed on without a list to keep."""
    assert is_dataclass(kind)
    taken = {
        item.name: getattr(source, item.name)
        for item in fields(kind)
        if item.name not in given and source.has_trait(item.name)
    }
    return kind(**taken, **given)


def optional_path(value: str) -> Path | None:
    """A path trait (empty: unset) as a Path, ``~`` expanded."""
    return Path(value).expanduser() if value.strip() else None


class ServiceTraits(Configurable):
    """Mixin: how RentalService writes SSH entries and kernelspecs, and how often it polls."""

    ssh_dir = Unicode(
        "", help="The SSH folder whose config gets the rentals' aliases (~/.ssh)."
    ).tag(config=True)
    ssh_user = Unicode(
        default_of(ServiceConfig, "ssh_user"), help="User name written in each rental's SSH entry."
    ).tag(config=True)
    identity_file = Unicode(
        "",
        help="""Private key written in each rental's SSH entry. Empty: your ~/.ssh/id_ed25519 or
        id_rsa, else a key generated once for gpuoutlet-jupyter.""",
    ).tag(config=True)
    kernelspecs = Bool(
        default_of(ServiceConfig, "kernelspecs"),
        help="Add a Jupyter kernel (gpuoutlet-<rental id>) for every running rental.",
    ).tag(config=True)
    remote_python = Unicode(
        default_of(ServiceConfig, "remote_python"),
        help="The Python interpreter on the rented machine that runs remote kernels.",
    ).tag(config=True)
    request_timeout = Float(
        default_of(ServiceConfig, "request_timeout"),
        help="Seconds to wait for one answer of the rentals API.",
    ).tag(config=True)
    poll_interval = Float(
        _OPTIONS.poll_interval,
        help="Seconds between two polls of a provisioning rental (the API asks for 2).",
    ).tag(config=True)
    max_polls = Integer(
        _OPTIONS.max_polls,
        help="Polls after which a provisioning rental is reported as slow and polled less often.",
    ).tag(config=True)
    slow_poll_interval = Float(
        _OPTIONS.slow_poll_interval,
        help="Seconds between two polls of a rental that is slow to provision.",
    ).tag(config=True)
    running_poll_interval = Float(
        _OPTIONS.running_poll_interval,
        help="Seconds between two polls of a running rental (to notice stops elsewhere).",
    ).tag(config=True)
    reconcile_interval = Float(
        _OPTIONS.reconcile_interval,
        help="""Seconds between two comparisons with the API's list of rentals (adopts rentals
        made elsewhere, notices vanished ones). 0: only at start.""",
    ).tag(config=True)
    max_hourly_spend_cents = Integer(
        _OPTIONS.max_hourly_spend_cents,
        help="""Spending cap, in cents per hour: a new rental is refused, before anything is
        sent to the API, when its price plus the prices of the rentals still provisioning,
        running or stopping would exceed it. 0: no cap.""",
    ).tag(config=True)

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
        """These traits (and any ServiceOptions trait of a subclass) as the service's config."""
        return from_traits(
            ServiceConfig,
            self,
            state_dir=state_dir,
            ssh_dir=optional_path(self.ssh_dir),
            identity_file=optional_path(self.identity_file),
            options=from_traits(ServiceOptions, self),
        )
