"""The settings of saving and syncing, each declared once as a trait, and the options they make.

Shared by GpuOutletApp (server) and NotebookSession (a kernel renting by itself). Light on
purpose (traitlets and the stdlib): the notebook layer loads it at ``%load_ext``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from traitlets import Float, Integer, TraitError, Unicode, validate
from traitlets.config import Configurable


class SaveTraits(Configurable):
    """Mixin: where a rental's work is saved before a stop, and how much and how long."""

    saves_dir = Unicode(
        "~/gpuoutlet-saves",
        help="""Where a rental's save paths are copied before it is stopped (and by "Save
        now"): <saves_dir>/<rental name or id>/<folder>/.""",
    ).tag(config=True)
    max_save_bytes = Integer(
        20_000_000_000,
        help="""The most bytes one save copies (20 GB). Past it, the smallest files are saved
        first and the rest is named as left out: a save must not keep a rental billed for
        hours. 0: no limit.""",
    ).tag(config=True)
    save_timeout = Float(
        600.0,
        help="""Seconds a save before a stop may take. When they run out the stop goes ahead
        anyway and the save says what it did not copy: the pod costs money while it is saved,
        and a stop the user or the idle auto-stop asked for must happen. 0: no limit.""",
    ).tag(config=True)
    auto_stop_save_minutes = Float(
        10.0,
        help="""Save a rental this many minutes before gpuoutlet stops it at its
        autoStopAfterHours (`%gpu_rent --auto-stop`).""",
    ).tag(config=True)
    wallet_save_minutes = Float(
        15.0,
        help="""Save every running rental when the wallet will reach $0 (and gpuoutlet stop
        every pod) within this many minutes at the current burn.""",
    ).tag(config=True)
    save_check_interval = Float(
        15.0,
        help="""Seconds between two looks at the rentals for a save due before gpuoutlet
        stops them (no request is made for it).""",
    ).tag(config=True)
    wallet_check_interval = Float(
        300.0,
        help="""Seconds between two reads of the balance to foresee the wallet reaching $0
        (one request for the whole account, shared with the sidebar's reads; every minute once
        $0 is less than twice wallet_save_minutes away).""",
    ).tag(config=True)

    @validate("max_save_bytes", "save_timeout")
    def _validate_limit(self, proposal: Any) -> Any:
        if proposal["value"] < 0:
            raise TraitError(f"{proposal['trait'].name} must be 0 (no limit) or more")
        return proposal["value"]

    @validate(
        "auto_stop_save_minutes",
        "wallet_save_minutes",
        "save_check_interval",
        "wallet_check_interval",
    )
    def _validate_positive(self, proposal: Any) -> Any:
        if proposal["value"] <= 0:
            raise TraitError(f"{proposal['trait'].name} must be greater than 0")
        return proposal["value"]


@dataclass(frozen=True)
class SaveOptions:
    """How the saver saves and syncs (from ``SaveTraits`` through ``from_traits``)."""

    saves_dir: str = SaveTraits.class_traits()["saves_dir"].default_value
    max_save_bytes: int = SaveTraits.class_traits()["max_save_bytes"].default_value
    save_timeout: float = SaveTraits.class_traits()["save_timeout"].default_value
    auto_stop_save_minutes: float = SaveTraits.class_traits()[
        "auto_stop_save_minutes"
    ].default_value
    wallet_save_minutes: float = SaveTraits.class_traits()["wallet_save_minutes"].default_value
    save_check_interval: float = SaveTraits.class_traits()["save_check_interval"].default_value
    wallet_check_interval: float = SaveTraits.class_traits()["wallet_check_interval"].default_value

    @property
    def saves_path(self) -> Path:
        return Path(os.path.expanduser(self.saves_dir))

    @property
    def byte_cap(self) -> int | None:
        return self.max_save_bytes or None

    @property
    def time_cap(self) -> float | None:
        return self.save_timeout or None
