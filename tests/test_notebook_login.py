"""%gpu_login, %gpu_logout and the sign-in form in real kernels: a kernel of a Jupyter server
that starts signed out, and a terminal IPython renting by itself (a real pty: the code is asked
for without echo and kept out of the history). The sandbox mails the codes to its mailbox."""

from __future__ import annotations

import os
import re
import sqlite3
import stat
import sys
from pathlib import Path
from typing import Any

import pexpect
import pytest
from helpers.kernels import comm_send, execute, ready_client, run_ok, widget_states
from helpers.server import gpuoutlet_app, server_config, start_extension

from gpuoutlet_jupyter.api.settings import read_credentials

pytestmark = pytest.mark.usefixtures("no_gpuoutlet_env")


@pytest.fixture
def credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config" / "credentials"
    monkeypatch.setenv("GPUOUTLET_CREDENTIALS_FILE", str(path))
    return path


@pytest.fixture
def account(sandbox: Any, ssh_keypair: Any) -> Any:
    return sandbox.create_account(balance_cents=100_00, authorized_keys=ssh_keypair.public_key)


@pytest.fixture
def jp_server_config(
    tmp_path: Path, sandbox: Any, ssh_keypair: Any, credentials: Path
) -> dict[str, Any]:
    return server_config(tmp_path, api_url=sandbox.url, identity_file=str(ssh_keypair.private_key))


def _no_secret(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert not re.search(rf"(?<![0-9A-Za-z]){re.escape(secret)}(?![0-9A-Za-z])", text), secret


def _exists(path: Path) -> bool:
    return path.exists()


def _widget(states: dict[str, dict[str, Any]], **match: Any) -> str:
    """The comm id of the one widget whose state has these values."""
    found = [c for c, s in states.items() if all(s.get(k) == v for k, v in match.items())]
    assert len(found) == 1, (match, states)
    return found[0]


async def test_login_form_codes_limits_expiry_401_and_logout_from_a_server_kernel(
    server: Any, sandbox: Any, account: Any, credentials: Path
) -> None:
    rest = await start_extension(server)
    kernels = server.kernel_manager
    kernel_id = await kernels.start_kernel(kernel_name="python3")
    kc = await ready_client(kernels.get_kernel(kernel_id))
    email = account.email
    outputs: list[str] = []
    codes: list[str] = []
    try:
        await run_ok(kc, "%load_ext gpuoutlet_jupyter")
        status = await run_ok(kc, "%gpu_status")
        assert "signed in" in status.text and "no: %gpu_login you@example.com" in status.text

        # A magic that needs a session: the error says how, and the form is offered.
        run = await execute(kc, "%gpu_wallet")
        assert not run.ok and "%gpu_login" in run.text
        states = widget_states(run.messages)
        _widget(states, _model_name="ButtonModel", description="Send code")

        # %gpu_login EMAIL: the code is sent, the form takes it; the kernel is free at once.
        run = await run_ok(kc, f"%gpu_login {email}")
        outputs.append(run.text)
        form = widget_states(run.messages)
        message = " ".join(str(s.get("value")) for s in form.values())
        assert f"emailed a 6-digit sign-in code to {email}" in message
        assert "/sandbox/mailbox" in message  # a local API: where its codes appear
        code_field = _widget(form, _model_name="TextModel", placeholder="6 digits")
        sign_in = _widget(form, _model_name="ButtonModel", description="Sign in")
        code = sandbox.sign_in_code(email)
        codes.append(code)

        # A second request within 30 s is no failure: use the code already sent.
        run = await run_ok(kc, f"%gpu_login {email}")
        again = " ".join(str(s.get("value")) for s in widget_states(run.messages).values())
        assert "less than 30 s ago: use that one" in again

        # A wrong code (as a script passes it): how many tries are left.
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        codes.append(wrong)
        run = await execute(kc, f"%gpu_login {email} --code {wrong}")
        assert not run.ok and "4 tries left for this code" in run.text
        outputs.append(run.text)

        # The form: the code typed and "Sign in" clicked, as the browser sends them.
        await comm_send(kc, code_field, {"method": "update", "state": {"value": code}})
        clicked = await comm_send(kc, sign_in, {"method": "custom", "content": {"event": "click"}})
        after = widget_states(run.messages + clicked.messages)
        updates = [
            m["content"]["data"]["state"]
            for m in clicked.messages
            if m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == code_field
        ]
        assert {"value": ""} in updates  # the code is not kept in the widget
        shown = " ".join(str(s.get("value")) for s in after.values())
        outputs.append(shown)
        assert f"as {email} until" in shown and "still signed in after a restart" in shown
        sid = read_credentials(credentials)["sid"]

        status = await run_ok(kc, "%gpu_status")
        assert f"signed in as        {email}" in status.text and "session ends" in status.text
        wallet = await run_ok(kc, "%gpu_wallet")
        assert "$100.00 available" in wallet.text
        outputs += [status.text, wallet.text]

        # The session ends under the kernel: the error says so, and the form comes back with
        # the email filled in.
        sandbox.expire_session(sid)
        # (The wallet is shared for 15 s: a quote is always asked afresh.)
        run = await execute(kc, "%gpu_rent rtx-4090 --no-wait")
        assert not run.ok and "session has expired" in run.text
        states = widget_states(run.messages)
        _widget(states, _model_name="TextModel", value=email)
        outputs.append(run.text)

        # A code older than 10 minutes.
        sandbox.advance(31)
        await run_ok(kc, f"%gpu_login {email}")
        old = sandbox.sign_in_code(email)
        codes.append(old)
        sandbox.advance(601)
        run = await execute(kc, f"%gpu_login {email} --code {old}")
        assert not run.ok and "has expired (a code lasts 10 minutes)" in run.text
        outputs.append(run.text)

        # Signed in again from a script's line, then out.
        await run_ok(kc, f"%gpu_login {email}")
        fresh = sandbox.sign_in_code(email)
        codes.append(fresh)
        run = await run_ok(kc, f"%gpu_login {email} --code {fresh}")
        assert f"Signed in to {sandbox.url} as {email}" in run.text
        second_sid = read_credentials(credentials)["sid"]
        run = await run_ok(kc, "%gpu_logout")
        assert "Signed out of" in run.text and f"{credentials} was deleted" in run.text
        assert not _exists(credentials)
        with sandbox.client(second_sid) as http:
            assert http.get("/v1/auth/me").status_code == 401
        outputs.append(run.text)
        manager = gpuoutlet_app(server).manager
        assert manager.settings.sid is None
        _no_secret("\n".join(outputs), [sid, second_sid, *codes])
        _no_secret("\n".join(rest.bodies), [sid, second_sid])
    finally:
        kc.stop_channels()
        await kernels.shutdown_kernel(kernel_id, now=True)


def test_terminal_ipython_prompts_for_the_code_without_echo_or_history(
    sandbox: Any, account: Any, ssh_keypair: Any, tmp_path: Path, credentials: Path
) -> None:
    """A kernel renting by itself (no server) signs in (and out) the same way, into the same
    file."""
    ipython_dir = tmp_path / "ipython"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("GPUOUTLET_") and k != "JPY_PARENT_PID"
    }
    env.update(
        GPUOUTLET_API_URL=sandbox.url,
        GPUOUTLET_CREDENTIALS_FILE=str(credentials),
        IPYTHONDIR=str(ipython_dir),
        JUPYTER_DATA_DIR=str(tmp_path / "data"),
        TERM="dumb",
    )
    shell = pexpect.spawn(
        sys.executable,
        ["-m", "IPython", "--no-banner", "--simple-prompt", "--colors=NoColor"],
        env=env,
        encoding="utf-8",
        timeout=60,
    )
    transcript: list[str] = []
    try:
        prompt = re.compile(r"In \[\d+\]: ")
        shell.expect(prompt)
        for line in (
            "%load_ext gpuoutlet_jupyter",
            f"%config NotebookSession.ssh_dir = {str(tmp_path / 'ssh')!r}",
            f"%config NotebookSession.identity_file = {str(ssh_keypair.private_key)!r}",
        ):
            shell.sendline(line)
            shell.expect(prompt)
        shell.sendline(f"%gpu_login {account.email}")
        shell.expect("not shown, not kept\\): ")
        transcript.append(shell.before)
        assert f"emailed a 6-digit sign-in code to {account.email}" in shell.before
        code = sandbox.sign_in_code(account.email)
        shell.sendline(code)
        shell.expect(prompt)
        transcript.append(shell.before)
        assert f"Signed in to {sandbox.url} as {account.email}" in shell.before
        shell.sendline("%gpu_status")
        shell.expect(prompt)
        transcript.append(shell.before)
        assert "this kernel (in-process" in shell.before
        assert "signed in as" in shell.before and account.email in shell.before
        saved = read_credentials(credentials)
        assert saved["api_url"] == sandbox.url
        assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
        # Signing out from the kernel: gpuoutlet is told, the file goes.
        shell.sendline("%gpu_logout")
        shell.expect(prompt)
        transcript.append(shell.before)
        assert "Signed out of" in shell.before and "was deleted" in shell.before
        shell.sendline("exit")
        shell.expect(pexpect.EOF)
    finally:
        shell.close(force=True)
    assert not _exists(credentials)
    with sandbox.client(saved["sid"]) as http:
        assert http.get("/v1/auth/me").status_code == 401
    _no_secret("\n".join(transcript), [code, saved["sid"]])
    # The code is in no line of the history.
    history = sqlite3.connect(ipython_dir / "profile_default" / "history.sqlite")
    try:
        lines = [row[0] for row in history.execute("SELECT source_raw FROM history")]
    finally:
        history.close()
    assert any("%gpu_login" in line for line in lines)
    _no_secret("\n".join(lines), [code])
