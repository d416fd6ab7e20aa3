"""The service's settings, each declared once as a trait: its name, type, default and help.

Shared by GpuOutletApp (server) and NotebookSession (kernel); ``options.py`` turns them into the
service's options and takes its defaults from here. Light on purpose (traitlets only): the
notebook layer loads it at ``%load_ext``.
"""

from __future__ import annotations

import os
from typing import Any

from traitlets import Bool, Float, Integer, TraitError, Unicode, validate
from traitlets.config import Configurable

#: ``remote.controlpath.MAX_CONTROL_DIR`` on Linux, here so that this module stays light.
_MAX_CONTROL_DIR = 49


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
    request_timeout = Float(30.0, help="Seconds to wait for one answer of the rentals API.").tag(
        config=True
    )
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
    max_requests_per_minute = Integer(
        60,
        help="""Upstream requests this host sends in any minute, at most. gpuoutlet allows 100 a
        minute per session, GETs included, shared with its website and your other tools: the
        rest is left for them. Polls are batched, so this does not grow with your rentals.""",
    ).tag(config=True)
    max_requests_per_hour = Integer(
        600,
        help="""Upstream requests this host sends in any hour, at most (gpuoutlet allows 1,000
        an hour per session, shared like the minute's).""",
    ).tag(config=True)
    remote_workdir = Unicode(
        "~/work",
        help="""The working folder on the rented machines: where remote kernels start (so a
        notebook's relative paths work there), where `%gpu_sync` and the sidebar's "Upload
        folder" put files, and the folder saved before a stop unless a rental names others.""",
    ).tag(config=True)
    max_hourly_spend_cents = Integer(
        0,
        help="""Spending cap, in cents per hour: a new rental is refused, before anything is
        sent to the API, when its price plus the prices of the rentals still provisioning,
        running or stopping would exceed it. 0: no cap.""",
    ).tag(config=True)

    control_dir = Unicode(
        "",
        help="""The folder of the shared SSH connections' control sockets (one connection per
        rental carries its telemetry, port forwards and syncs). It must be short: at most 49
        bytes (Unix sockets hold about 108). Empty: /tmp/gpuoutlet-ssh-<uid>.""",
    ).tag(config=True)
    telemetry_interval = Float(
        5.0,
        help="""Seconds between two GPU telemetry samples (nvidia-smi on the pod, over its shared
        SSH connection), taken only while someone looks: an open sidebar card, %gpu_top.""",
    ).tag(config=True)

    @validate("control_dir")
    def _validate_control_dir(self, proposal: Any) -> Any:
        value = str(proposal["value"]).strip()
        if value:
            full = os.path.abspath(os.path.expanduser(value))
            if len(os.fsencode(full)) > _MAX_CONTROL_DIR:
                raise TraitError(
                    f"control_dir {full!r} is {len(os.fsencode(full))} bytes long: ssh's "
                    f"control sockets need a folder of at most {_MAX_CONTROL_DIR} bytes, such "
                    f"as /tmp/gpuoutlet-ssh-{os.getuid()}"
                )
        return value

    @validate(
        "telemetry_interval",
        "poll_interval",
        "slow_poll_interval",
        "running_poll_interval",
        "request_timeout",
        "max_polls",
        "max_requests_per_minute",
        "max_requests_per_hour",
    )
    def _validate_positive(self, proposal: Any) -> Any:
        value = proposal["value"]
        if value <= 0:
            raise TraitError(f"{proposal['trait'].name} must be greater than 0 (got {value})")
        return value

    @validate("remote_workdir")
    def _validate_remote_workdir(self, proposal: Any) -> Any:
        value = str(proposal["value"]).strip()
        if not value or any(c in value for c in "\0\n\r"):
            raise TraitError("remote_workdir must be a folder such as ~/work or /data")
        return value

    @validate("reconcile_interval", "max_hourly_spend_cents")
    def _validate_not_negative(self, proposal: Any) -> Any:
        if proposal["value"] < 0:
            raise TraitError(f"{proposal['trait'].name} must be 0 or more")
        return proposal["value"]


class IdleTraits(Configurable):
    """Mixin: the idle auto-stop, for a host that sees the rentals' kernels (the server)."""

    idle_stop_minutes = Float(
        0.0,
        help="""Idle auto-stop for the rentals created through this server, unless a create says
        otherwise (`%gpu_rent --idle-stop MINUTES`, the sidebar's field): a running rental is
        stopped once none of its remote kernels has run anything or been busy for this many
        minutes, after a warning (see idle_warning_minutes). 0: off.""",
    ).tag(config=True)
    idle_warning_minutes = Float(
        5.0,
        help="""How many minutes before an idle stop the sidebar and the progress widgets warn,
        with a "Keep it" button (at most the idle time itself).""",
    ).tag(config=True)
    idle_gpu_util = Float(
        0.0,
        help="""GPU-aware idle auto-stop, in percent of GPU utilisation: a rental with an idle stop
        counts as idle only if, besides its kernels, its GPUs stayed under this utilisation for
        the idle time (nvidia-smi on the pod, looked at with the kernels), so a job started over
        plain ssh keeps it alive. Used by the creates that do not say (`%gpu_rent
        --idle-gpu-util PERCENT`, the sidebar's field). 0: the GPUs do not count.""",
    ).tag(config=True)
    idle_check_interval = Float(
        15.0, help="Seconds between two looks at the rentals' kernels for the idle auto-stop."
    ).tag(config=True)

    @validate("idle_stop_minutes", "idle_warning_minutes")
    def _validate_idle_minutes(self, proposal: Any) -> Any:
        if proposal["value"] < 0:
            raise TraitError(f"{proposal['trait'].name} must be 0 or more")
        return proposal["value"]

    @validate("idle_gpu_util")
    def _validate_idle_gpu_util(self, proposal: Any) -> Any:
        if not 0 <= proposal["value"] <= 100:
            raise TraitError("idle_gpu_util must be a percentage from 0 (off) to 100")
        return proposal["value"]

    @validate("idle_check_interval")
    def _validate_idle_check(self, proposal: Any) -> Any:
        if proposal["value"] <= 0:
            raise TraitError("idle_check_interval must be greater than 0")
        return proposal["value"]


def trait_default(name: str) -> Any:
    """The default of the setting ``name``, as its trait declares it."""
    for host in (ServiceTraits, IdleTraits):
        trait = host.class_traits().get(name)
        if trait is not None:
            return trait.default_value
    raise LookupError(f"no service setting is named {name!r}")
