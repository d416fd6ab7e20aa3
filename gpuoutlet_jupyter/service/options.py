"""RentalService's settings and their defaults, the one source of both (stdlib only).

The traits (``service/traits.py``: ``c.GpuOutletApp.*`` on the server, ``%config
NotebookSession.*`` in a kernel) take their defaults from here, and ``from_traits`` turns them
into these objects in one step.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ServiceOptions:
    """How the service watches, caches and spends. The polling follows the seed: every 2 s."""

    poll_interval: float = 2.0
    #: Polls after which a provisioning rental is reported slow; it is still watched (it may be
    #: billed), every ``slow_poll_interval``.
    max_polls: int = 60
    slow_poll_interval: float = 10.0
    #: A running rental is polled too, so a stop elsewhere (auto-stop, the wallet) is noticed.
    running_poll_interval: float = 30.0
    backoff_max: float = 30.0
    #: 0: only at start.
    reconcile_interval: float = 300.0
    #: How long every viewer shares one answer of each account endpoint. The dashboard polls
    #: the balance every 15 s and /auth/me every 5 min; gpuoutlet caches its catalog 30 s.
    balance_ttl: float = 15.0
    catalog_ttl: float = 60.0
    keys_ttl: float = 60.0
    session_ttl: float = 300.0
    #: Refuse a create that would take the summed hourly price of the active rentals over
    #: this many cents; 0: no cap.
    max_hourly_spend_cents: int = 0
    #: Idle auto-stop of the rentals created here, in minutes, unless a create says otherwise;
    #: 0: off. Needs an activity source (the Jupyter server's kernels).
    idle_stop_minutes: float = 0.0
    #: How long before an idle stop the warning shows (at most the idle time itself).
    idle_warning_minutes: float = 5.0
    #: Seconds between two looks at the kernels' activity.
    idle_check_interval: float = 15.0


@dataclass(frozen=True)
class ServiceConfig:
    """Everything that builds a RentalService besides the API's address and session."""

    state_dir: Path
    #: None: ``~/.ssh``.
    ssh_dir: Path | None = None
    ssh_user: str = "root"
    #: None: the user's own key, else one generated for the extension.
    identity_file: Path | None = None
    #: Write a ``gpuoutlet-ssh`` kernelspec for every running rental.
    kernelspecs: bool = True
    remote_python: str = "python3"
    #: Seconds to wait for one answer of the rentals API.
    request_timeout: float = 30.0
    options: ServiceOptions = field(default_factory=ServiceOptions)


def default_of(kind: type[Any], name: str) -> Any:
    """The default of the field ``name`` of the dataclass ``kind`` (for a trait's default)."""
    for item in fields(kind):
        if item.name == name:
            if item.default is not MISSING:
                return item.default
            if item.default_factory is not MISSING:
                return item.default_factory()
            raise LookupError(f"{kind.__name__}.{name} has no default")
    raise LookupError(f"{kind.__name__} has no field {name!r}")
