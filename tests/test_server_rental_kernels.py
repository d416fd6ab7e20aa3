"""The kernel of a rental that ends (issue 15): a notebook's kernel on a rental, in a real Jupyter
server, against the sandbox; the rental is stopped from the REST API (as the sidebar does) and
from elsewhere (the gpuoutlet website). No restart is tried, the kernel and its session go, and
the server logs no error and no 500."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.server import Rest, sandbox_server_config, start_extension, until
from helpers.sshd import process_alive

from gpuoutlet_jupyter.kernel.records import kernel_states

# Nothing from the developer's own environment or credentials file leaks into these tests.
pytestmark = pytest.mark.usefixtures("no_gpuoutlet_env")


@pytest.fixture
def jp_server_config(
    tmp_path: Path, sandbox: Any, account: Any, ssh_keypair: Any
) -> dict[str, Any]:
    return sandbox_server_config(tmp_path, sandbox, account, ssh_keypair)


class Records(logging.Handler):
    """Every record the Jupyter server logs (its logger does not propagate to pytest's)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        return "\n".join(r.getMessage() for r in self.records)

    def errors(self) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= logging.ERROR]


@pytest.fixture
def server_log(server: Any) -> Iterator[Records]:
    handler = Records()
    loggers = [server.log, logging.getLogger("gpuoutlet_jupyter")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


async def _running(rest: Rest) -> dict[str, Any]:
    created = (await rest.api("POST", "rentals", json={"familyId": "rtx-4090"})).json()

    async def ready() -> dict[str, Any] | None:
        view: dict[str, Any] = (await rest.api("GET", f"rentals/{created['id']}")).json()
        return view if view["status"] == "running" and view["kernel"] else None

    rental: dict[str, Any] = await until(ready, timeout=60)
    return rental


async def _notebook_on(jp_fetch: Any, kernel: str) -> tuple[str, str]:
    """A notebook's session on the rental's kernel, as JupyterLab starts one: (session, kernel)."""
    body = {
        "path": "exp.ipynb",
        "type": "notebook",
        "name": "exp.ipynb",
        "kernel": {"name": kernel},
    }
    reply = await jp_fetch("api", "sessions", method="POST", body=json.dumps(body))
    session = json.loads(reply.body)
    return session["id"], session["kernel"]["id"]


async def _statuses(ws: Any, seen: list[str]) -> None:
    """The kernel's status messages a browser would see, until the socket closes."""
    while True:
        raw = await ws.read_message()
        if raw is None:
            return
        message = json.loads(raw)
        if message["msg_type"] == "status":
            seen.append(message["content"]["execution_state"])


@pytest.mark.parametrize("stopped_by", ["sidebar", "website"])
async def test_a_stopped_rental_takes_its_kernel_and_session(
    server: Any,
    jp_fetch: Any,
    jp_ws_fetch: Any,
    server_log: Records,
    sandbox: Any,
    account: Any,
    tmp_path: Path,
    stopped_by: str,
) -> None:
    rest = await start_extension(server)
    rental = await _running(rest)
    _session, kernel_id = await _notebook_on(jp_fetch, rental["kernel"])
    kernels = server.kernel_manager
    provisioner = kernels.get_kernel(kernel_id).provisioner
    assert provisioner.rental_id == rental["id"] and process_alive(provisioner.ssh_pid)
    ws = await jp_ws_fetch("api", "kernels", kernel_id, "channels")
    seen: list[str] = []
    watching = asyncio.ensure_future(_statuses(ws, seen))
    try:
        if stopped_by == "sidebar":
            stopped = await rest.api("POST", f"rentals/{rental['id']}/stop", json={})
            assert stopped.status_code == 200
        else:
            with sandbox.client(account.sid) as http:
                assert http.post(f"/v1/rentals/{rental['id']}/stop").status_code == 200

        async def gone() -> bool:
            sessions = json.loads((await jp_fetch("api", "sessions")).body)
            return kernel_id not in kernels and not sessions

        # Shut down with its session: a reloaded page gets no dead session back.
        await until(gone, timeout=60)
        view = (await rest.api("GET", f"rentals/{rental['id']}")).json()
        assert view["status"] == "stopped"
    finally:
        watching.cancel()
        ws.close()
    listed = json.loads((await jp_fetch("api", "sessions")).body)
    assert listed == []
    # Never restarted: no "restarting" status to the browser, no restart in the log, no
    # error, and no ssh advice about an alias that went with the rental.
    assert "restarting" not in seen and "autorestarting" not in seen
    log = server_log.text()
    assert "restarting kernel" not in log and "Exception in callback" not in log, log
    assert server_log.errors() == [], server_log.errors()
    assert "ssh_config_file" not in log and "cannot resolve" not in log, log
    assert f"rental {rental['id']} ended (stopped): shut down its kernel {kernel_id}" in log
    assert " 500 " not in log
    # Its reattach record went with it (nothing left to adopt on a machine that is gone).
    assert [
        r for r in kernel_states(tmp_path / "gpuoutlet-state") if r.rental_id == rental["id"]
    ] == []
