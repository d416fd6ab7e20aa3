"""Per-rental kernelspecs (``gpuoutlet-<rental id>``) that start ipykernel on the rental over SSH."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..ssh.fsutil import atomic_write
from ..ssh.validate import validate_rental_id
from .records import forget_rental

if TYPE_CHECKING:
    from ..api import Rental
    from ..ssh import SSHEntry

PROVISIONER_NAME = "gpuoutlet-ssh"
KERNEL_PREFIX = "gpuoutlet-"
KERNEL_FILE = "kernel.json"
LOGOS = ("logo-32x32.png", "logo-64x64.png", "logo-svg.svg")
DEFAULT_PYTHON = "python3"


# Cached: the idle look maps every rental to its kernel name every few seconds.
@functools.lru_cache(maxsize=4096)
def kernel_name_for(rental_id: str) -> str:
    """The kernel name of a rental: ``gpuoutlet-<rental id, lowercased>-<8 hex of its hash>``.

    Jupyter lowercases kernelspec names (its folders are listed and looked up by the lowercased
    name), so the id's case cannot tell ``rent_Ab`` from ``rent_aB``; the hash of the exact id
    can. The lowercased id stays in the name so that a person can still tell which rental it is.
    """
    exact = validate_rental_id(rental_id)
    digest = hashlib.sha256(exact.encode("ascii")).hexdigest()[:8]
    return f"{KERNEL_PREFIX}{exact.lower()}-{digest}"


def _legacy_name_for(rental_id: str) -> str:
    """The name earlier versions gave a rental's kernelspec (before the hash)."""
    return KERNEL_PREFIX + validate_rental_id(rental_id).lower()


def display_name_for(rental: Rental) -> str:
    """``Python 3 · rtx-4090 ×1 · <name or id>`` (parts the API did not send are left out)."""
    gpus = rental.family_id or ""
    if rental.gpu_count:
        gpus = f"{gpus} ×{rental.gpu_count}".strip()
    label = (rental.name or "").strip() or rental.id
    return " · ".join(part for part in ("Python 3", gpus, label) if part)


def kernelspec_for(
    rental: Rental,
    entry: SSHEntry,
    *,
    python: str = DEFAULT_PYTHON,
    provisioner_config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``kernel.json`` of a running rental (the argv is what runs on the machine)."""
    config: dict[str, Any] = {
        "ssh_alias": entry.alias,
        "ssh_config_file": os.fspath(entry.config_file),
        "known_hosts_file": os.fspath(entry.known_hosts_file),
        "python": python,
        "rental_id": rental.id,
    }
    config.update(provisioner_config or {})
    return {
        # Runs on the machine: {python} is the provisioner config's "python".
        "argv": ["{python}", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": display_name_for(rental),
        "language": "python",
        "interrupt_mode": "signal",
        "env": {},
        "metadata": {
            "kernel_provisioner": {"provisioner_name": PROVISIONER_NAME, "config": config},
            "gpuoutlet": {
                "rental_id": rental.id,
                "family_id": rental.family_id,
                "gpu_count": rental.gpu_count,
                "name": rental.name,
                "ssh_alias": entry.alias,
            },
        },
    }


def default_kernels_dir() -> Path:
    """``<Jupyter data dir>/kernels``, where Jupyter looks for the user's kernelspecs."""
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "kernels"


def _ipykernel_logos() -> list[Path]:
    import importlib.util

    spec = importlib.util.find_spec("ipykernel")
    if spec is None or spec.origin is None:
        return []
    folder = Path(spec.origin).parent / "resources"
    return [folder / name for name in LOGOS if (folder / name).is_file()]


class KernelSpecWriter:
    """Writes and removes the kernelspec of each running rental (the service's KernelSpecs).

    ``kernels_dir`` defaults to ``jupyter_data_dir()/kernels``; ``python`` is the interpreter
    on the machines; ``provisioner_config`` adds keys to every spec's provisioner config
    (``{"install_ipykernel": True}``, ``{"heartbeat_timeout": 120}``, ...). ``state_dir``: the
    server's, where the kernels' reattach records live: the specs name it, and removing a
    rental's spec (its rental stopped) forgets its detached kernels.
    """

    def __init__(
        self,
        kernels_dir: Path | str | None = None,
        *,
        python: str = DEFAULT_PYTHON,
        provisioner_config: Mapping[str, Any] | None = None,
        state_dir: Path | str | None = None,
    ) -> None:
        self._kernels_dir = Path(kernels_dir) if kernels_dir is not None else None
        self.python = python
        self.provisioner_config = dict(provisioner_config or {})
        self.state_dir = Path(state_dir) if state_dir is not None else None
        if self.state_dir is not None:
            self.provisioner_config.setdefault("state_dir", os.fspath(self.state_dir))

    @property
    def kernels_dir(self) -> Path:
        # Resolved late: JUPYTER_DATA_DIR may be set after the writer is made (tests, Hub).
        return self._kernels_dir if self._kernels_dir is not None else default_kernels_dir()

    def spec_dir(self, rental_id: str) -> Path:
        return self.kernels_dir / kernel_name_for(rental_id)

    def install(self, rental: Rental, entry: SSHEntry) -> str:
        """Write (or rewrite) the rental's kernelspec; return its kernel name."""
        name = kernel_name_for(rental.id)
        folder = self.kernels_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        for logo in _ipykernel_logos():
            with contextlib.suppress(OSError):
                shutil.copyfile(logo, folder / logo.name)
        spec = kernelspec_for(
            rental, entry, python=self.python, provisioner_config=self.provisioner_config
        )
        data = (json.dumps(spec, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
        # kernel.json last and atomically: a half-written spec is never listed.
        atomic_write(folder / KERNEL_FILE, data, mode=0o644)
        return name

    def remove(self, rental_id: str) -> None:
        """Delete the rental's kernelspec if there is one (idempotent), and one an earlier
        version wrote under the old name if it is this rental's (not another id's case)."""
        if self.state_dir is not None:
            forget_rental(rental_id, self.state_dir)  # its machine, and so its kernels, are gone
        self._remove_folder(self.spec_dir(rental_id))
        legacy = self.kernels_dir / _legacy_name_for(rental_id)
        if self._rental_of(legacy) == rental_id:
            self._remove_folder(legacy)

    @staticmethod
    def _remove_folder(folder: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            (folder / KERNEL_FILE).unlink()  # first: it stops being a kernelspec at once
        shutil.rmtree(folder, ignore_errors=True)

    @staticmethod
    def _rental_of(folder: Path) -> str | None:
        """The rental id a kernelspec folder was written for; None: not one of ours."""
        try:
            spec = json.loads((folder / KERNEL_FILE).read_text("utf-8"))
            rental_id = spec["metadata"]["gpuoutlet"]["rental_id"]
        except (OSError, ValueError, KeyError, TypeError):
            return None  # not one of ours, or half-removed
        return rental_id if isinstance(rental_id, str) else None

    def installed(self) -> dict[str, str]:
        """``{kernel name: rental id}`` of the gpuoutlet kernelspecs present (for a cleanup of
        specs whose rental this server no longer tracks)."""
        try:
            names = sorted(os.listdir(self.kernels_dir))
        except (FileNotFoundError, NotADirectoryError):
            return {}
        found: dict[str, str] = {}
        for name in names:
            if not name.startswith(KERNEL_PREFIX):
                continue
            rental_id = self._rental_of(self.kernels_dir / name)
            if rental_id is not None:
                found[name] = rental_id
        return found


if TYPE_CHECKING:
    from ..service.access import KernelSpecs

    # mypy checks here that the writer is what RentalService(kernelspecs=...) expects.
    _satisfies_protocol: KernelSpecs = KernelSpecWriter()
