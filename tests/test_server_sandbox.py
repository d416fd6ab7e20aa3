"""The extension end to end: Jupyter server → RentalService → sandbox rentals API → SSH pod.

pytest-jupyter runs the server; the sandbox (tests/conftest.py) runs as a subprocess with real
SSH pods; the real OpenSSH client connects through the entry the extension wrote.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers.counting import CountingTransport
from helpers.server import (
    Rest,
    another_server,
    gpuoutlet_app,
    server_config,
    start_extension,
    until,
)

from gpuoutlet_jupyter.api import AsyncRentalsClient
from gpuoutlet_jupyter.kernel.specs import kernel_name_for
from gpuoutlet_jupyter.server import ENV_SERVER_URL
from gpuoutlet_jupyter.server.manager import SID_SETTING_SOURCE

# Until tests/conftest.py loads it for the whole run.


# Nothing from the developer's own environment or credentials file leaks into these tests.
pytestmark = pytest.mark.usefixtures("no_gpuoutlet_env")


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
def extra_traits() -> dict[str, Any]:
    """GpuOutletApp settings of one test, over test_server_support.FAST_TRAITS."""
    return {}


@pytest.fixture
def jp_server_config(
    tmp_path: Path,
    sandbox: Any,
    account: Any,
    ssh_keypair: Any,
    sid_via: str,
    extra_traits: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Any]:
    traits: dict[str, Any] = {"identity_file": str(ssh_keypair.private_key), **extra_traits}
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
    assert status["session"]["email"] == account.email and status["session"]["warning"] is None
    assert "permanent" in status["stopNotice"]
    families = (await rest.api("GET", "families")).json()["families"]
    assert "rtx-4090" in {f["id"] for f in families}
    templates = (await rest.api("GET", "templates")).json()["templates"]
    assert len(templates) == 6 and templates[0]["default"] is True
    wallet = (await rest.api("GET", "wallet", auth="kernel")).json()
    assert wallet["availableCents"] == 100_00 and wallet["warnings"] == []
    keys = (await rest.api("GET", "keys")).json()
    assert keys["local"]["onAccount"] is True
    assert [k["local"] for k in keys["keys"]] == [True]

    listed = (await rest.api("GET", "rentals")).json()
    assert listed["rentals"] == []
    list_version = listed["version"]

    body = {"familyId": "rtx-4090", "gpuCount": 1, "name": "alice/server-test"}
    preview = (await rest.api("POST", "rentals/preview", json=body)).json()
    assert preview["problems"] == [] and preview["keyOnAccount"] is True
    assert "1× rtx-4090 (ubuntu-24-04) at" in preview["confirmation"]
    response = await rest.api("POST", "rentals", json=body)
    assert response.status_code == 200, response.text
    created = response.json()
    rental_id = created["id"]
    assert created["status"] == "provisioning" and created["name"] == "alice/server-test"
    assert created["version"] > 0 and created["phase"]
    assert created["quote"] == preview["quote"]
    assert (
        created["provisioning"]["expectedSeconds"] == preview["quote"]["estimatedProvisionSeconds"]
    )

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
    assert ssh["error"] is None, ssh
    assert ssh["alias"] == f"gpuoutlet-{rental_id}"
    assert ssh["configFile"] == str(ssh_dir / "config")
    entry = ssh_dir / "gpuoutlet" / f"{rental_id}.conf"
    known_hosts = ssh_dir / "gpuoutlet" / f"{rental_id}.known_hosts"
    assert entry.is_file()
    assert running["phase"].startswith("Running")
    kernel_json = jp_data_dir / "kernels" / running["kernel"] / "kernel.json"
    assert running["kernel"] == kernel_name_for(rental_id)
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
    stopping = response.json()
    assert stopping["status"] in {"stopping", "stopped"} and stopping["alreadyStopped"] is False
    assert "destroys the pod" in stopping["notice"]
    assert stopping["costCents"] == stopping["stop"]["finalChargedCents"]
    assert (await waiter).json()["version"] > since

    stopped = await _long_poll_until(rest, rental_id, lambda r: r["status"] == "stopped")
    # A second stop: gpuoutlet's 409 already_stopped is a stop done, not an error.
    response = await rest.api("POST", f"rentals/{rental_id}/stop")
    assert response.status_code == 200, response.text
    assert response.json()["alreadyStopped"] is True
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
async def test_errors_keep_the_upstream_meaning(server: Any, sandbox: Any, account: Any) -> None:
    rest = await start_extension(server)

    # A short wallet: refused from gpuoutlet's quote and balance, before anything is sent.
    response = await rest.api("POST", "rentals", json={"familyId": "rtx-4090", "gpuCount": 1})
    assert response.status_code == 403
    error = _error(response)
    assert error["code"] == "insufficient_balance"
    assert (error["neededCents"], error["availableCents"]) == (65, 50)
    assert (
        "$0.65" in error["message"]
        and "Nothing was sent and nothing was charged" in error["message"]
    )
    assert "sign in" not in error["message"].lower()

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

    response = await rest.api("POST", "rentals", json={"familyId": "rtx-4090", "gpuCount": 3})
    assert response.status_code == 400
    assert _error(response)["problems"] == [
        {"field": "gpuCount", "problem": "must be one of 1, 2, 4, 8 (got 3)"}
    ]

    response = await rest.api("POST", "rentals", json={"familyId": "rtx-4080"})
    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == "unknown_family" and "rtx-4090" in error["suggestions"]

    # No capacity there: the API's model_unavailable, with what has capacity now.
    sandbox.deposit(account.account_id, 100_00)
    response = await rest.api("POST", "rentals", json={"familyId": "rtx-4090", "region": "AQ"})
    assert response.status_code == 400, response.text
    error = _error(response)
    assert error["code"] == "model_unavailable" and error["upstreamStatus"] == 400
    assert error["alternatives"] and "Available now" in error["message"]

    response = await rest.api("GET", "rentals/-bad-id")
    assert response.status_code == 400 and _error(response)["code"] == "validation_error"

    response = await rest.api("GET", "rentals/rent_doesnotexist")
    assert response.status_code == 404
    error = _error(response)
    assert error["code"] == "rental_not_found" and "%gpu_rentals" in error["message"]

    assert (await rest.api("GET", "rentals")).json()["rentals"] == []

    # The session expires: the API's 401 says how to sign in again, and the status says so.
    sandbox.expire_session(account.sid)
    response = await rest.api("POST", "rentals/preview", json={"familyId": "rtx-4090"})
    assert response.status_code == 401
    error = _error(response)
    assert error["code"] == "unauthorized" and error["upstreamMessage"] == "Not signed in"
    assert "session has expired" in error["message"] and "sid" in error["message"]


async def test_a_key_not_on_the_account_is_refused_then_added(
    server: Any, sandbox: Any, ssh_keypair: Any
) -> None:
    rest = await start_extension(server)
    # The server's account lists the key; this one (another account) does not.
    keys = (await rest.api("GET", "keys")).json()
    assert keys["local"]["onAccount"] is True
    # Delete it upstream, as from the dashboard: the next create is refused before money moves.
    app = gpuoutlet_app(server)
    async with sandbox.async_client(app.manager.settings.require_sid()) as upstream:
        (key,) = (await upstream.get("/v1/ssh-keys")).json()["keys"]
        assert (await upstream.delete(f"/v1/ssh-keys/{key['id']}")).status_code == 200
    response = await rest.api("POST", "rentals", json={"familyId": "rtx-4090"})
    assert response.status_code == 409, response.text
    error = _error(response)
    assert error["code"] == "key_not_on_account" and "%gpu_keys add" in error["message"]
    assert (await rest.api("GET", "rentals")).json()["rentals"] == []
    preview = (await rest.api("POST", "rentals/preview", json={"familyId": "rtx-4090"})).json()
    assert [p["code"] for p in preview["problems"]] == ["key_not_on_account"]

    response = await rest.api("POST", "keys", json={"name": "jupyter-test"})
    assert response.status_code == 200, response.text
    added = response.json()
    assert added["alreadyOnAccount"] is False and added["key"]["name"] == "jupyter-test"
    assert "Pods created from now on" in added["note"]
    again = (await rest.api("POST", "keys", json={})).json()
    assert again["alreadyOnAccount"] is True
    response = await rest.api("POST", "rentals", json={"familyId": "rtx-4090"})
    assert response.status_code == 200, response.text
    await rest.api("POST", f"rentals/{response.json()['id']}/stop")


async def test_a_hostile_host_gets_an_ssh_error_and_writes_nothing(
    server: Any, sandbox: Any, ssh_dir: Path
) -> None:
    rest = await start_extension(server)
    sandbox.set_faults({"hostileHost": "pod.example\n    ProxyCommand touch /tmp/gpuoutlet-pwned"})
    created = (await rest.api("POST", "rentals", json={"familyId": "rtx-4090"})).json()
    running = await _long_poll_until(
        rest, created["id"], lambda r: r["status"] == "running" and r["ssh"]
    )
    assert running["ssh"]["alias"] is None
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


#: Answers each long-poller of the fan-in test waits for.
FAN_IN_ANSWERS = 8
FAN_IN_VIEWERS = 20


@pytest.mark.parametrize("extra_traits", [{"poll_interval": 0.2}], ids=["poll-0.2s"])
async def test_20_concurrent_long_pollers_on_one_rental_cause_one_upstream_get_per_poll_interval(
    server: Any, sandbox: Any
) -> None:
    # The service's requests, counted on the wire as the API sees them.
    upstream = CountingTransport()
    gpuoutlet_app(server).manager.client_factory = lambda settings: AsyncRentalsClient(
        settings, transport=upstream
    )
    rest = await start_extension(server)
    poll_interval = (await rest.api("GET", "status")).json()["pollInterval"]
    assert poll_interval == 0.2
    sandbox.set_faults({"neverReady": True})  # provisioning forever: every poll is a change
    response = await rest.api("POST", "rentals", json={"familyId": "rtx-4090", "name": "fan-in"})
    assert response.status_code == 200, response.text
    created = response.json()
    rental_id = created["id"]
    service = await gpuoutlet_app(server).manager.service()

    async def viewer(index: int) -> list[int]:
        """One browser tab or kernel: its own connection, long-polling for newer versions."""
        auth = "jupyter" if index % 2 else "kernel"
        since, versions = created["version"], []
        async with httpx.AsyncClient(base_url=rest.url, timeout=30) as client:
            while len(versions) < FAN_IN_ANSWERS:
                response = await rest.api(
                    "GET",
                    f"rentals/{rental_id}",
                    auth=auth,
                    client=client,
                    params={"wait": "5", "since": str(since)},
                )
                assert response.status_code == 200, response.text
                rental = response.json()
                assert rental["version"] > since, rental
                assert rental["status"] == "provisioning", rental
                since = rental["version"]
                versions.append(since)
        return versions

    loop = asyncio.get_running_loop()
    before, started = upstream.polls(), loop.time()
    answers = await asyncio.gather(*(viewer(i) for i in range(FAN_IN_VIEWERS)))
    elapsed = loop.time() - started
    polls = upstream.polls() - before

    assert [len(versions) for versions in answers] == [FAN_IN_ANSWERS] * FAN_IN_VIEWERS
    # One upstream GET per poll interval however many viewers wait (a poller per viewer would
    # make 20 per interval), and far fewer GETs than answers given: the pollers share one.
    assert 0 < polls <= elapsed / poll_interval + 2, (polls, elapsed)
    assert polls * 4 < FAN_IN_VIEWERS * FAN_IN_ANSWERS, (polls, elapsed)
    assert service.watching() == [rental_id]

    response = await rest.api("POST", f"rentals/{rental_id}/stop")
    assert response.status_code == 200, response.text


async def test_restart_the_jupyter_server_while_a_rental_provisions_the_new_server_finishes_the_job(
    server: Any,
    http_server: Any,
    jp_configurable_serverapp: Any,
    sandbox: Any,
    account: Any,
    ssh_dir: Path,
    tmp_path: Path,
) -> None:
    rest = await start_extension(server)
    sandbox.set_faults({"neverReady": True})
    response = await rest.api("POST", "rentals", json={"familyId": "rtx-4090", "name": "restart"})
    assert response.status_code == 200, response.text
    created = response.json()
    rental_id = created["id"]
    # The first server watches it: it has polled it at least once.
    await _long_poll_until(rest, rental_id, lambda r: r["polls"] >= 1, since=created["version"])

    # The first Jupyter server shuts down (ServerApp's own shutdown step for extensions) and
    # stops listening; the rental is still provisioning upstream.
    await server.cleanup_extensions()
    http_server.stop()
    assert (await gpuoutlet_app(server).manager.status())["state"] == "stopped"
    assert ENV_SERVER_URL not in os.environ
    state_file = tmp_path / "gpuoutlet-state" / "rentals.json"
    persisted = json.loads(state_file.read_text())["rentals"]
    assert [r["rental"]["id"] for r in persisted] == [rental_id]
    async with sandbox.async_client(account.sid) as upstream:
        assert (await upstream.get(f"/v1/rentals/{rental_id}")).json()["status"] == "provisioning"
    assert not (ssh_dir / "gpuoutlet" / f"{rental_id}.conf").exists()
    sandbox.set_faults({})  # the pod may now boot, with nobody watching

    # A new server, same configuration (state_dir, ssh_dir), a new port and a new extension.
    async with another_server(jp_configurable_serverapp) as restarted:
        assert restarted is not server
        second = await start_extension(restarted)
        assert second.url != rest.url
        app = gpuoutlet_app(restarted)
        assert app is not gpuoutlet_app(server)
        assert (await second.api("GET", "status")).json()["state"] == "running"
        # It resumed watching the rental from its state folder (not adopted: created here).
        assert (await app.manager.service()).watching() == [rental_id]
        listed = (await second.api("GET", "rentals", auth="kernel")).json()["rentals"]
        assert [(r["id"], r["createdHere"]) for r in listed] == [(rental_id, True)]

        running = await _long_poll_until(
            second,
            rental_id,
            lambda r: r["status"] == "running" and r["phase"].startswith("Running: connect"),
        )
        ssh = running["ssh"]
        assert ssh["alias"] == f"gpuoutlet-{rental_id}", ssh
        assert ssh["configFile"] == str(ssh_dir / "config")
        entry = ssh_dir / "gpuoutlet" / f"{rental_id}.conf"
        assert entry.is_file()
        assert ssh["alias"] in entry.read_text()

        response = await second.api("POST", f"rentals/{rental_id}/stop")
        assert response.status_code == 200, response.text
        stopped = await _long_poll_until(second, rental_id, lambda r: r["status"] == "stopped")
        assert stopped["ssh"] is None
        assert not entry.exists()
    assert ENV_SERVER_URL not in os.environ


#: An ~/.ssh whose parent does not exist: every write there fails with FileNotFoundError.
UNWRITABLE_SSH_DIR = "/nonexistent-gpuoutlet-test-home/.ssh"


@pytest.mark.parametrize("extra_traits", [{"ssh_dir": UNWRITABLE_SSH_DIR}], ids=["no-home"])
async def test_a_running_rental_and_an_unwritable_ssh_dir_at_start_leave_every_endpoint_working(
    server: Any, sandbox: Any, account: Any
) -> None:
    assert not Path(UNWRITABLE_SSH_DIR).parent.exists()
    # A rental already running when the server starts (made on the website, say).
    async with sandbox.async_client(account.sid) as upstream:
        response = await upstream.post("/v1/rentals", json={"familyId": "rtx-4090", "gpuCount": 1})
        assert response.status_code == 200, response.text
        made = response.json()

        async def is_running() -> bool:
            got = (await upstream.get(f"/v1/rentals/{made['id']}")).json()
            return bool(got["status"] == "running")

        await until(is_running, timeout=30)

    rest = await start_extension(server)
    status = (await rest.api("GET", "status")).json()
    assert status["configured"] is True and status["state"] == "running", status
    for path in ("rentals", "wallet", f"rentals/{made['id']}"):
        response = await rest.api("GET", path)
        assert response.status_code == 200, (path, response.text)
    rental = (await rest.api("GET", f"rentals/{made['id']}")).json()
    assert rental["status"] == "running"
    assert UNWRITABLE_SSH_DIR in rental["ssh"]["error"], rental["ssh"]
    assert "no SSH entry was written" in rental["phase"]
    response = await rest.api("POST", f"rentals/{made['id']}/stop")
    assert response.status_code == 200, response.text
    assert not Path(UNWRITABLE_SSH_DIR).parent.exists()


@pytest.mark.parametrize("balance_cents", [140])
# Running rentals refreshed every 2 s: the fixture's 0.2 s alone would spend the whole request
# budget and hold the balance's background reads.
@pytest.mark.parametrize("extra_traits", [{"running_poll_interval": 2.0}], ids=["running-2s"])
async def test_the_wallet_warns_of_pods_stopping_at_zero_and_of_money_owed(
    server: Any, sandbox: Any, account: Any
) -> None:
    rest = await start_extension(server)
    made = []
    for _ in range(2):
        response = await rest.api("POST", "rentals", json={"familyId": "rtx-4090"})
        assert response.status_code == 200, response.text
        made.append(response.json())
    for rental in made:
        await _long_poll_until(rest, rental["id"], lambda r: r["status"] == "running")
    # Ten minutes of both running (on the sandbox's clock): the wallet now lasts under an hour
    # at their burn, and at $0 gpuoutlet stops every pod.
    sandbox.advance(600)
    sandbox.open_invoice(account.account_id, 10_000, reason="topup_failed")
    # The balance is shared by every viewer for balance_ttl (15 s): wait for the next read.
    deadline = time.monotonic() + 60
    while True:
        wallet = (await rest.api("GET", "wallet")).json()
        read = wallet["openInvoiceCount"] == 1 and wallet["hoursLeft"] < 1
        if read or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    burn = sum(r["pricePerHourCents"] for r in made)
    assert wallet["burnCentsPerHour"] == burn and wallet["hoursLeft"] < 1
    assert (wallet["openInvoicesCents"], wallet["openInvoiceCount"]) == (10_000, 1)
    codes = [w["code"] for w in wallet["warnings"]]
    assert codes == ["wallet_under_an_hour", "open_invoices"], wallet["warnings"]
    assert "stops every pod" in wallet["warnings"][0]["message"]
    assert "$100.00" in wallet["warnings"][1]["message"]
    for rental in made:
        await rest.api("POST", f"rentals/{rental['id']}/stop")
