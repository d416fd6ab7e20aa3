"""A kernel whose rental ended (issue 15): what it says, and that it is never restarted on a
machine that is gone. The ssh advice about ssh_config_file only when that is the cause."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager

from gpuoutlet_jupyter.api import Rental
from gpuoutlet_jupyter.kernel import messages
from gpuoutlet_jupyter.kernel.provisioner import RemoteKernelError
from gpuoutlet_jupyter.kernel.specs import KernelSpecWriter
from gpuoutlet_jupyter.ssh import SSHConfigWriter

RENTAL = "rent_01OVEROVEROVEROVEROVEROVER"
UNRESOLVED = "ssh: Could not resolve hostname gpuoutlet-x: Name or service not known"


def _rental(rental_id: str = RENTAL) -> Rental:
    return Rental.model_validate(
        {
            "id": rental_id,
            "status": "running",
            "host": "127.0.0.1",
            "port": 2222,
            "pricePerHourCents": 65,
            "startedAt": "2026-01-01T00:00:00Z",
            "familyId": "rtx-4090",
            "gpuCount": 1,
        }
    )


@pytest.fixture
def writer(tmp_path: Path, ssh_keypair: object) -> SSHConfigWriter:
    return SSHConfigWriter(tmp_path / "ssh", identity_file=ssh_keypair.private_key)  # type: ignore[attr-defined]


def _where(writer: SSHConfigWriter, *, config: bool = True) -> messages.Where:
    return messages.Where(
        alias=f"gpuoutlet-{RENTAL}",
        python="python3",
        config_file=str(writer.config_file) if config else "",
        known_hosts_file=str(writer.known_hosts_file(RENTAL)),
        rental_id=RENTAL,
    )


def test_an_unresolved_alias_of_a_stopped_rental_says_so(writer: SSHConfigWriter) -> None:
    writer.write(RENTAL, "127.0.0.1", 2222)
    writer.remove(RENTAL)  # what the service does when the rental stops
    text = messages.ssh_failure(_where(writer), 255, UNRESOLVED)
    assert text.startswith(f"rental {RENTAL} was stopped: pick another kernel")
    assert "(ssh_config_file in" not in text and "resolve" not in text


def test_the_ssh_config_file_advice_only_when_none_was_given(writer: SSHConfigWriter) -> None:
    writer.write(RENTAL, "127.0.0.1", 2222)  # the entry is there: the alias should resolve
    no_config = messages.ssh_failure(_where(writer, config=False), 255, UNRESOLVED)
    assert "pass the ssh config that defines it (ssh_config_file" in no_config
    with_config = messages.ssh_failure(_where(writer), 255, UNRESOLVED)
    assert "(ssh_config_file in" not in with_config
    assert f"{writer.config_file} does not define it" in with_config
    assert "Include line" in with_config and "was stopped" not in with_config


@pytest.mark.asyncio
async def test_a_kernel_of_a_stopped_rental_is_not_started(
    tmp_path: Path, writer: SSHConfigWriter
) -> None:
    """Starting (or restarting) the kernel of a rental that ended: refused at once with the
    reason, no ssh run, no restarter left."""
    entry = writer.write(RENTAL, "127.0.0.1", 2222)
    specs = KernelSpecWriter(tmp_path / "kernels", python=sys.executable, state_dir=tmp_path)
    name = specs.install(_rental(), entry)
    writer.remove(RENTAL)
    ksm = KernelSpecManager(kernel_dirs=[str(specs.kernels_dir)])
    km = AsyncKernelManager(kernel_name=name, kernel_spec_manager=ksm)
    with pytest.raises(RemoteKernelError) as failure:
        await asyncio.wait_for(km.start_kernel(), 15)
    assert str(failure.value).startswith(f"rental {RENTAL} was stopped: pick another kernel")
    assert km.provisioner is not None and km.provisioner.ssh_pid is None
    assert km.autorestart is False
    await km.shutdown_kernel(now=True)
