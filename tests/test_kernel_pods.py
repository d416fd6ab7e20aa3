"""Remote kernels on sandbox rentals: several on one pod, and through jupyter-server's REST API.

The jupyter-server tests are plain ``async def`` (pytest-jupyter runs them); the others are
marked for pytest-asyncio.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers.server import ws_execute
from helpers.sshd import process_alive
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager

from gpuoutlet_jupyter.api import Rental
from gpuoutlet_jupyter.kernel.specs import KernelSpecWriter, kernel_name_for
from gpuoutlet_jupyter.sandbox.testing import SandboxProcess, SSHKeypair, wait_for_status
from gpuoutlet_jupyter.ssh import SSHConfigWriter, SSHEntry

# Until tests/conftest.py loads it for the whole run.

pytestmark = pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the OpenSSH client")

TIMEOUT = 60.0


@dataclass
class PodRental:
    rental: Rental
    entry: SSHEntry


@pytest.fixture(scope="module")
def pod_rental(
    sandbox: SandboxProcess, ssh_keypair: SSHKeypair, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PodRental]:
    """A running sandbox rental (a pod) and its SSH alias in a temp ssh folder."""
    account = sandbox.create_account(balance_cents=100_00, authorized_keys=ssh_keypair.public_key)
    with sandbox.client(account.sid) as http:
        created = http.post(
            "/v1/rentals", json={"familyId": "rtx-4090", "gpuCount": 1, "name": "kernel tests"}
        )
        created.raise_for_status()
        running = wait_for_status(http, created.json()["id"], {"running", "failed"})
        assert running["status"] == "running", running
        rental = Rental.model_validate(running)
        ssh = SSHConfigWriter(
            tmp_path_factory.mktemp("pod-ssh"), identity_file=ssh_keypair.private_key
        )
        entry = ssh.write(rental.id, rental.host, rental.port)
        yield PodRental(rental, entry)
        http.post(f"/v1/rentals/{rental.id}/stop")


def _exists(path: Path) -> bool:
    return os.path.lexists(path)


async def _gone(pid: int, timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if not process_alive(pid):
            return True
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.05)


async def _cell(kc: Any, code: str) -> str:
    outputs: list[str] = []

    def keep(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream":
            outputs.append(msg["content"]["text"])

    reply = await kc.execute_interactive(code, output_hook=keep, timeout=TIMEOUT)
    assert reply["content"]["status"] == "ok", reply["content"]
    return "".join(outputs)


# 12. three kernels at once on one pod.


@pytest.mark.asyncio
async def test_three_kernels_at_once_on_one_pod(pod_rental: PodRental, tmp_path: Path) -> None:
    # The pod's python3 is the sandbox's interpreter, which has ipykernel: the default spec.
    specs = KernelSpecWriter(tmp_path / "kernels", state_dir=tmp_path / "state")
    name = specs.install(pod_rental.rental, pod_rental.entry)
    ksm = KernelSpecManager(kernel_dirs=[str(specs.kernels_dir)])
    kms = [AsyncKernelManager(kernel_name=name, kernel_spec_manager=ksm) for _ in range(3)]
    await asyncio.wait_for(asyncio.gather(*(km.start_kernel() for km in kms)), TIMEOUT)
    clients = [km.client() for km in kms]
    try:
        for kc in clients:
            kc.start_channels()
        await asyncio.gather(*(kc.wait_for_ready(timeout=TIMEOUT) for kc in clients))
        code = "import os\nprint(os.getpid(), os.environ['GPUOUTLET_POD_ID'])"
        outputs = await asyncio.gather(*(_cell(kc, code) for kc in clients))
        pids = {int(out.split()[0]) for out in outputs}
        assert pids == {km.provisioner.remote_pid for km in kms} and len(pids) == 3
        assert len({out.split()[1] for out in outputs}) == 1  # one pod
        ports = [set(km.provisioner.local_ports.values()) for km in kms]
        assert len(set.union(*ports)) == 15  # five each, none shared
    finally:
        for kc in clients:
            kc.stop_channels()
        await asyncio.gather(*(km.shutdown_kernel() for km in kms))
    for km in kms:
        assert not km.provisioner.has_process and km.provisioner.ssh_pid is None


# 14. the kernelspec in the kernel picker, and a cell through the REST API and the websocket.


async def test_kernelspec_listed_and_a_cell_runs_through_jupyter_server(
    pod_rental: PodRental, jp_fetch: Any, jp_ws_fetch: Any, jp_serverapp: Any, jp_data_dir: Path
) -> None:
    specs = KernelSpecWriter(jp_data_dir / "kernels", state_dir=jp_data_dir / "gpuoutlet")
    name = specs.install(pod_rental.rental, pod_rental.entry)
    assert name == kernel_name_for(pod_rental.rental.id)

    listed = json.loads((await jp_fetch("api", "kernelspecs")).body)["kernelspecs"]
    assert name in listed
    spec = listed[name]["spec"]
    assert spec["display_name"] == "Python 3 · rtx-4090 ×1 · kernel tests"
    assert spec["interrupt_mode"] == "signal"
    assert spec["metadata"]["kernel_provisioner"]["provisioner_name"] == "gpuoutlet-ssh"
    assert any(path.endswith("logo-64x64.png") for path in listed[name]["resources"].values())

    started = await jp_fetch("api", "kernels", method="POST", body=json.dumps({"name": name}))
    kernel_id = json.loads(started.body)["id"]
    km = jp_serverapp.kernel_manager.get_kernel(kernel_id)
    remote_pid = km.provisioner.remote_pid
    assert process_alive(remote_pid)

    ws = await jp_ws_fetch("api", "kernels", kernel_id, "channels")
    try:
        stdout, reply = await ws_execute(
            ws, "import os\nprint('hello from', os.getpid())", timeout=TIMEOUT
        )
        assert reply["content"]["status"] == "ok"
        assert stdout.strip() == f"hello from {remote_pid}"
    finally:
        ws.close()
    deleted = await jp_fetch("api", "kernels", kernel_id, method="DELETE")
    assert deleted.code == 204
    assert await _gone(remote_pid, 15)

    specs.remove(pod_rental.rental.id)
    listed = json.loads((await jp_fetch("api", "kernelspecs")).body)["kernelspecs"]
    assert name not in listed
    assert not _exists(jp_data_dir / "kernels" / name)
