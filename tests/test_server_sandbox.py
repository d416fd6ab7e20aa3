"""The extension end to end: Jupyter server → RentalService → sandbox rentals API → SSH pod.

pytest-jupyter runs the server; the sandbox (tests/conftest.py) runs as a subprocess with real
SSH pods; the real OpenSSH client connects through the entry the extension wrote.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_server_support import Rest, server_config, start_extension, until

from gpuoutlet_jupyter.server import ENV_SERVER_TOKEN, ENV_SERVER_URL
from gpuoutlet_jupyter.server.manager import SID_SETTING_SOURCE

# Until tests/conftest.py loads it for the whole run.


@pytest.fixture(autouse=True)
def _no_gpuoutlet_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("GPUOUTLET_SID", "GPUOUTLET_API_URL", ENV_SERVER_URL, ENV_SERVER_TOKEN):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GPUOUTLET_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))


@pytest.fixture(autouse=True)
def _no_faults_left(sandbox: Any) -> Iterator[None]:
    yield
    sandbox.set_faults({})


@pytest.fixture
def balance_cents() -> int:
    return 100_00


@pytest.fixture
def sid_via() -> str:
    """Where the server finds the sid: "config" (GpuOutletApp.sid) or "environment"."""
    return "config"


@pytest.fixture
def account(sandbox: Any, ssh_keypair: Any, balance_cents: int) -> Any:
    """A fresh account whose pods accept the test key pair."""
    return sandbox.create_account(
        balance_cents=balance_cents, authorized_keys=ssh_keypair.public_key
    )


@pytest.fixture
def ssh_dir(tmp_path: Path) -> Path:
    return tmp_path / "ssh"


@pytest.fixture
def jp_server_config(
    tmp_path: Path,
    sandbox: Any,
    account: Any,
    ssh_keypair: Any,
    sid_via: str,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Any]:
    traits: dict[str, Any] = {"identity_file": str(ssh_keypair.private_key)}
    if sid_via == "config":
        traits.update(api_url=sandbox.url, sid=account.sid)
    else:
        monkeypatch.setenv("GPUOUTLET_API_URL", sandbox.url)
        monkeypatch.setenv("GPUOUTLET_SID", account.sid)
    return server_config(tmp_path, **traits)


@pytest.fixture
def server(jp_serverapp: Any, http_server: Any, caplog: pytest.LogCaptureFixture) -> Any:
    """The ServerApp, listening, with every log record captured from here on."""
    caplog.set_level(logging.DEBUG)
    return jp_serverapp


def _files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    return error


async def _ssh(config_file: str, alias: str, command: str) -> tuple[int, str, str]:
    ssh = shutil.which("ssh")
    if ssh is None:
        pytest.skip("the OpenSSH client is not installed")
    proc = await asyncio.create_subprocess_exec(
        ssh,
        "-F",
        config_file,
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=10",
        alias,
        command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def _long_poll_until(rest: Rest, rental_id: str, done: Any, *, since: int = 0) -> Any:
    """Follow one rental with long-polls (kernel token) until `done(rental)`; bounded."""
    state = {"since": since, "seen": []}

    async def step() -> Any:
        response = await rest.api(
            "GET",
            f"rentals/{rental_id}",
            auth="kernel",
            params={"wait": "5", "since": str(state["since"])},
        )
        assert response.status_code == 200, response.text
        rental = response.json()
        assert rental["version"] >= state["since"]
        state["since"] = rental["version"]
        state["seen"].append(rental["phase"])
        return rental if done(rental) else None

    return await until(step, timeout=40, interval=0)


def _assert_sid_nowhere(
    sid: str,
    rest: Rest,
    caplog: pytest.LogCaptureFixture,
    stream: Any,
    phases: tuple[str, ...] = ("call",),
) -> None:
    """No response body and no log record of the given test phases mentions the sid."""
    assert rest.bodies, "no responses were recorded"
    assert not [body for body in rest.bodies if sid in body]
    records = [r for phase in phases for r in caplog.get_records(phase)]  # type: ignore[arg-type]
    assert len(records) > 10, "too few log records were captured to mean anything"
    leaked = [f"{r.name}: {r.getMessage()[:200]}" for r in records if sid in r.getMessage()]
    assert not leaked, leaked
    assert sid not in stream.getvalue()


async def test_rent_watch_ssh_and_stop_through_rest(
    server: Any,
    sandbox: Any,
    account: Any,
    ssh_dir: Path,
    caplog: pytest.LogCaptureFixture,
    jp_logging_stream: Any,
    jp_data_dir: Path,
) -> None:
    rest = await start_extension(server)

    status = (await rest.api("GET", "status")).json()
    assert status["configured"] is True and status["state"] == "running"
    assert status["apiUrl"] == sandbox.url
    assert status["sidSource"] == SID_SETTING_SOURCE
    families = (await rest.api("GET", "families")).json()["families"]
    assert "rtx-4090" in {f["id"] for f in families}
    wallet = (await rest.api("GET", "wallet", auth="kernel")).json()
    assert wallet["availableCents"] == 100_00

    listed = (await rest.api("GET", "rentals")).json()
    assert listed["rentals"] == []
    list_version = listed["version"]

    body = {"familyId": "rtx-4090", "gpuCount": 1, "name": "alice/server-test"}
    key = {"Idempotency-Key": "server-test-create-1"}
    response = await rest.api("POST", "rentals", json=body, headers=key)
    assert response.status_code == 200, response.text
    created = response.json()
    rental_id = created["id"]
    assert created["status"] == "provisioning" and created["name"] == "alice/server-test"
    assert created["version"] > 0 and created["phase"]
    # The key reached the API: the same key gives the same rental, never a second one.
    again = (await rest.api("POST", "rentals", json=body, headers=key)).json()
    assert again["id"] == rental_id

    # The list long-poll has already seen the create.
    response = await rest.api(
        "GET", "rentals", params={"wait": "5", "since": str(list_version)}, auth="kernel"
    )
    listed = response.json()
    assert listed["version"] > list_version
    assert [r["id"] for r in listed["rentals"]] == [rental_id]

    # Progress, with long-polls, until it runs with an SSH alias.
    running = await _long_poll_until(
        rest, rental_id, lambda r: r["status"] == "running" and r["ssh"], since=created["version"]
    )
    ssh = running["ssh"]
    assert "error" not in ssh, ssh
    assert ssh["alias"] == f"gpuoutlet-{rental_id}"
    assert ssh["configFile"] == str(ssh_dir / "config")
    entry = ssh_dir / "gpuoutlet" / f"{rental_id}.conf"
    known_hosts = ssh_dir / "gpuoutlet" / f"{rental_id}.known_hosts"
    assert entry.is_file()
    assert running["phase"].startswith("Running")
    kernel_json = jp_data_dir / "kernels" / running["kernel"] / "kernel.json"
    assert running["kernel"] == f"gpuoutlet-{rental_id.lower()}"
    assert kernel_json.is_file()

    code, out, err = await _ssh(ssh["configFile"], ssh["alias"], "python3 -c 'print(42)'")
    assert (code, out.strip()) == (0, "42"), err
    assert known_hosts.read_text().strip(), "accept-new recorded no host key"

    # A list long-poll pending across the stop returns with a newer version (the stop, or a
    # poll of the running rental that came first).
    since = (await rest.api("GET", "rentals")).json()["version"]
    waiter = asyncio.ensure_future(
        rest.api("GET", "rentals", params={"wait": "10", "since": str(since)})
    )
    response = await rest.api("POST", f"rentals/{rental_id}/stop")
    assert response.status_code == 200, response.text
    assert response.json()["status"] in {"stopping", "stopped"}
    assert (await waiter).json()["version"] > since

    stopped = await _long_poll_until(rest, rental_id, lambda r: r["status"] == "stopped")
    assert stopped["ssh"] is None and stopped["kernel"] is None
    assert not kernel_json.exists()
    assert not entry.exists()
    assert not known_hosts.exists()
    assert (ssh_dir / "config").is_file(), "the Include line's config stays"

    # Everything logged since the extension started (traitlets itself prints a sid given as
    # GpuOutletApp.sid with the whole configuration at DEBUG level, before any of our code runs;
    # the environment test below covers the server's start).
    _assert_sid_nowhere(account.sid, rest, caplog, jp_logging_stream)


@pytest.mark.parametrize("balance_cents", [50])
async def test_errors_keep_the_upstream_meaning(server: Any, account: Any) -> None:
    rest = await start_extension(server)

    response = await rest.api("POST", "rentals", json={"familyId": "rtx-4090", "gpuCount": 1})
    assert response.status_code == 402
    error = _error(response)
    assert error["code"] == "insufficient_balance"
    assert (error["requiredCents"], error["availableCents"]) == (65, 50)
    assert "$0.65" in error["message"] and "Nothing was charged" in error["message"]

    response = await rest.api("POST", "rentals", json={"gpuCount": 1})
    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == "validation_error"
    assert error["problems"] == [{"field": "familyId", "problem": "is required"}]

    response = await rest.api(
        "POST", "rentals", json={"familyId": "rtx-4090", "name": "x" * 65, "colour": "red"}
    )
    assert response.status_code == 400
    fields = {p["field"] for p in _error(response)["problems"]}
    assert fields == {"name", "colour"}

    response = await rest.api("GET", "rentals/-bad-id")
    assert response.status_code == 400 and _error(response)["code"] == "validation_error"

    response = await rest.api("GET", "rentals/rent_doesnotexist")
    assert response.status_code == 404
    assert "no such rental" in _error(response)["message"]

    assert (await rest.api("GET", "rentals")).json()["rentals"] == []


async def test_a_hostile_host_gets_an_ssh_error_and_writes_nothing(
    server: Any, sandbox: Any, ssh_dir: Path
) -> None:
    rest = await start_extension(server)
    sandbox.set_faults({"hostileHost": "pod.example\n    ProxyCommand touch /tmp/gpuoutlet-pwned"})
    created = (await rest.api("POST", "rentals", json={"familyId": "rtx-4090"})).json()
    running = await _long_poll_until(
        rest, created["id"], lambda r: r["status"] == "running" and r["ssh"]
    )
    assert "alias" not in running["ssh"]
    assert "HostName" in running["ssh"]["error"] or "host" in running["ssh"]["error"].lower()
    assert "no SSH entry was written" in running["phase"]
    assert running["kernel"] is None
    assert _files_under(ssh_dir) == []
    response = await rest.api("POST", f"rentals/{created['id']}/stop")
    assert response.status_code == 200


@pytest.mark.parametrize("sid_via", ["environment"])
async def test_the_sid_may_come_from_the_environment(
    server: Any, account: Any, caplog: pytest.LogCaptureFixture, jp_logging_stream: Any
) -> None:
    rest = await start_extension(server)
    status = (await rest.api("GET", "status")).json()
    assert status["configured"] is True
    assert status["sidSource"] == "the GPUOUTLET_SID environment variable"
    assert (await rest.api("GET", "rentals", auth="kernel")).json()["rentals"] == []
    # Kernels started from now on inherit the server's environment: the sid is no longer in it.
    assert "GPUOUTLET_SID" not in os.environ
    # From the environment, the sid is in no log line at all, the server's start included.
    _assert_sid_nowhere(account.sid, rest, caplog, jp_logging_stream, ("setup", "call"))
