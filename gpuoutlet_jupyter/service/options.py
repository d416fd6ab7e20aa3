"""RentalService's options, built from the settings' traits in one step (``from_traits``).

Each setting is declared once, as a trait (traits.py: its name, type, default and help); the
fields here that a setting fills take their defaults from it, so a default is written in one
place. The rest are the service's own constants.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

from traitlets import HasTraits

from .traits import ServiceTraits, trait_default

D = TypeVar("D")


@dataclass(frozen=True)
class ServiceOptions:
    """How the service watches, caches and spends. The polling follows the seed: every 2 s."""

    poll_interval: float = trait_default("poll_interval")
    #: Polls after which a provisioning rental is reported slow; it is still watched (it may be
    #: billed), every ``slow_poll_interval``.
    max_polls: int = trait_default("max_polls")
    slow_poll_interval: float = trait_default("slow_poll_interval")
    #: A running rental is polled too, so a stop elsewhere (auto-stop, the wallet) is noticed.
    running_poll_interval: float = trait_default("running_poll_interval")
    backoff_max: float = 30.0
    #: 0: only at start.
    reconcile_interval: float = trait_default("reconcile_interval")
    #: How long every viewer shares one answer of each account endpoint. The dashboard polls
    #: the balance every 15 s and /auth/me every 5 min. The catalog and the keys change
    #: seldom (a create asks for its quote, and checks the keys, afresh): 5 min.
    balance_ttl: float = 15.0
    catalog_ttl: float = 300.0
    keys_ttl: float = 300.0
    session_ttl: float = 300.0
    #: The request budget (budget.py): this host's share of gpuoutlet's limits.
    max_requests_per_minute: int = trait_default("max_requests_per_minute")
    max_requests_per_hour: int = trait_default("max_requests_per_hour")
    #: How long a viewer's read may wait for its turn in the budget before it is refused (a
    #: 429 of ours, nothing sent); a create or a stop waits up to ``act_patience``.
    viewer_patience: float = 10.0
    act_patience: float = 60.0
    #: After a create's answer was lost (a timeout, a dropped connection, a 5xx), how long
    #: the newest rentals are searched for it (a timeout adds the request timeout: the API may
    #: still be working on it).
    create_search_seconds: float = 15.0
    #: Refuse a create that would take the summed hourly price of the active rentals over
    #: this many cents; 0: no cap.
    max_hourly_spend_cents: int = trait_default("max_hourly_spend_cents")
    #: Idle auto-stop of the rentals created here, in minutes, unless a create says otherwise;
    #: 0: off. Needs an activity source (the Jupyter server's kernels).
    idle_stop_minutes: float = trait_default("idle_stop_minutes")
    #: How long before an idle stop the warning shows (at most the idle time itself).
    idle_warning_minutes: float = trait_default("idle_warning_minutes")
    #: Seconds between two looks at the kernels' activity.
    idle_check_interval: float = trait_default("idle_check_interval")
    #: The working folder on the pods: kernels start there; saved before a stop by default.
    remote_workdir: str = trait_default("remote_workdir")
    #: GPU utilisation (percent) that counts as activity for the idle stop; 0: GPUs do not count.
    idle_gpu_util: float = trait_default("idle_gpu_util")
    #: Seconds between two telemetry samples of a rental someone looks at.
    telemetry_interval: float = trait_default("telemetry_interval")


@dataclass(frozen=True)
class ServiceConfig:
    """Everything that builds a RentalService besides the API's address and session."""

    state_dir: Path
    #: None: ``~/.ssh``.
    ssh_dir: Path | None = None
    ssh_user: str = trait_default("ssh_user")
    #: None: the user's own key, else one generated for the extension.
    identity_file: Path | None = None
    #: Write a ``gpuoutlet-ssh`` kernelspec for every running rental.
    kernelspecs: bool = trait_default("kernelspecs")
    remote_python: str = trait_default("remote_python")
    #: Seconds to wait for one answer of the rentals API.
    request_timeout: float = trait_default("request_timeout")
    #: The shared SSH connections' control sockets (None: /tmp/gpuoutlet-ssh-<uid>).
    control_dir: Path | None = None
    options: ServiceOptions = field(default_factory=ServiceOptions)


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


def service_config(source: ServiceTraits, state_dir: Path) -> ServiceConfig:
    """A host's traits (the server's or a kernel's) as the service's config."""
    return from_traits(
        ServiceConfig,
        source,
        state_dir=state_dir,
        ssh_dir=optional_path(source.ssh_dir),
        identity_file=optional_path(source.identity_file),
        control_dir=optional_path(source.control_dir),
        options=from_traits(ServiceOptions, source),
    )


def optional_path(value: str) -> Path | None:
    """A path trait (empty: unset) as a Path, ``~`` expanded."""
    return Path(value).expanduser() if value.strip() else None


def default_of(kind: type[Any], name: str) -> Any:
    """The default of the field ``name`` of the dataclass ``kind`` (for a trait declared
    beside the dataclass it fills, as the server's ``max_wait``)."""
    for item in fields(kind):
        if item.name == name:
            if item.default is not MISSING:
                return item.default
            if item.default_factory is not MISSING:
                return item.default_factory()
            raise LookupError(f"{kind.__name__}.{name} has no default")
    raise LookupError(f"{kind.__name__} has no field {name!r}")
