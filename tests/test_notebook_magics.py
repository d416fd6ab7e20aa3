"""The magics in an IPython shell: parsing, help, %config, every error path, Ctrl-C while waiting.

A scripted fake backend stands in for the server (the kernel tests use real ones), and one test
uses the in-process service against the sandbox for the insufficient-balance message.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.notebook import ID, RUNNING, SITE, WALLET, FakeBackend, free_port, rental_json
from IPython.core.error import StdinNotImplementedError
from IPython.testing import globalipapp
from traitlets import Bool, Enum, Float, Integer
from traitlets.config import Config

from gpuoutlet_jupyter import api
from gpuoutlet_jupyter.api.models import STOP_NOTICE
from gpuoutlet_jupyter.notebook.magics import GpuMagicError, GpuMagics
from gpuoutlet_jupyter.notebook.session import NotebookSession
from gpuoutlet_jupyter.notebook.views import RentalInfo, RentalsTable


@pytest.fixture
def ip() -> Iterator[Any]:
    globalipapp.start_ipython()  # once per process; later calls do nothing
    shell = globalipapp.get_ipython()
    shell.run_line_magic("load_ext", "gpuoutlet_jupyter")
    try:
        yield shell
    finally:
        shell.run_line_magic("unload_ext", "gpuoutlet_jupyter")
        # %config writes into the shell's own config too: the next test starts clean.
        shell.config.pop("NotebookSession", None)
        shell.config.pop("GpuOutletMagics", None)


@pytest.fixture
def fake(ip: Any, monkeypatch: pytest.MonkeyPatch) -> FakeBackend:
    backend = FakeBackend()
    session = NotebookSession.current()
    monkeypatch.setattr(session, "open_backend", lambda config: backend)
    ip.run_line_magic("config", "NotebookSession.progress = 'text'")
    monkeypatch.setenv("COLUMNS", "300")  # the text line is cut to the terminal's width
    session.core._sleep = lambda _seconds: None  # transient-error backoff, instantly
    return backend


Run = Callable[[str], tuple[Any, str]]


@pytest.fixture
def run(ip: Any, capsys: pytest.CaptureFixture[str]) -> Run:
    """Run a cell; return (its value or its exception, everything printed)."""

    def go(cell: str) -> tuple[Any, str]:
        capsys.readouterr()
        result = ip.run_cell(cell)
        captured = capsys.readouterr()
        printed = captured.out + captured.err
        return (result.error_in_exec or result.result), printed

    return go


# -- loading, help, %config ----------------------------------------------------------------

MAGICS = [
    "gpu_rent",
    "gpu_status",
    "gpu_rentals",
    "gpu_wait",
    "gpu_stop",
    "gpu_keep",
    "gpu_families",
    "gpu_templates",
    "gpu_wallet",
    "gpu_keys",
    "gpu_panel",
]


def test_every_magic_is_registered_with_argparse_help(ip: Any, run: Run) -> None:
    for name in MAGICS:
        doc = ip.find_line_magic(name).__doc__
        assert doc.lstrip().startswith("::") and f"%{name}" in doc, name
    _, printed = run("%gpu_rent?")
    for option in (
        "--gpus N",
        "--template ID",
        "--region R",
        "--name NAME",
        "--auto-stop HOURS",
        "--idle-stop MINUTES",
        "--no-wait",
        "FAMILY",
    ):
        assert option in printed
    _, printed = run("%gpu_stop?")
    assert "--all" in printed and "--yes" in printed
    _, printed = run("%gpu_keep?")
    assert "ID" in printed and "--idle-stop MINUTES" in printed


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_flags_show_the_help_as_a_cli_does(fake: FakeBackend, run: Run, flag: str) -> None:
    for name in MAGICS:
        value, printed = run(f"%{name} {flag}")
        assert value is None, (name, value, printed)
        assert printed.startswith(f"usage: %{name} [-h]"), (name, printed)
        assert "-h, --help" in printed and "Traceback" not in printed
    # Anywhere on the line, as argparse does, and nothing is sent.
    value, printed = run(f"%gpu_rent rtx-4090 --gpus 2 {flag}")
    assert value is None and "--idle-stop MINUTES" in printed and "FAMILY" in printed
    assert not fake.created and not fake.stopped


@pytest.mark.parametrize(
    "cell", ['%gpu_rent "rtx-4090', "%gpu_rent rtx-4090 --name 'my run", '%gpu_stop "rent_1']
)
def test_an_unbalanced_quote_is_one_paragraph(fake: FakeBackend, run: Run, cell: str) -> None:
    value, printed = run(cell)
    assert isinstance(value, GpuMagicError), (value, printed)
    assert "Traceback" not in printed and "\n" not in printed.strip()
    assert "quote" in printed and "Nothing was done" in printed
    assert not fake.created and not fake.stopped


def test_unload_removes_the_magics(ip: Any) -> None:
    ip.run_line_magic("unload_ext", "gpuoutlet_jupyter")
    assert ip.find_line_magic("gpu_rent") is None
    assert not [c for c in ip.configurables if isinstance(c, (GpuMagics, NotebookSession))]
    assert not NotebookSession.initialized()  # a reload starts a fresh session
    ip.run_line_magic("load_ext", "gpuoutlet_jupyter")
    assert ip.find_line_magic("gpu_rent") is not None
    assert NotebookSession.current() in ip.configurables


def test_config_works(ip: Any, fake: FakeBackend, run: Run) -> None:
    session = NotebookSession.current()
    _, printed = run("%config NotebookSession")
    assert "NotebookSession.backend" in printed and "NotebookSession.poll_interval" in printed
    run("%config NotebookSession.wait_seconds = 1.5")
    assert session.core.options.wait_seconds == 1.5
    run("%gpu_wallet")
    assert session.core.connected
    # How progress shows is read at each magic: the backend stays.
    run("%config NotebookSession.progress = 'text'")
    assert session.core.connected and not fake.closed
    # A setting of the backend takes effect at the next magic: the current one is closed.
    run("%config NotebookSession.poll_interval = 0.5")
    assert fake.closed and not session.core.connected
    run("%config NotebookSession.backend = 'nowhere'")  # refused by the trait (IPython logs it)
    assert session.backend == "auto"


def test_settings_made_under_the_former_name_still_apply(
    ip: Any, fake: FakeBackend, run: Run
) -> None:
    """`GpuOutletMagics` held the settings before NotebookSession: what users wrote stays good."""
    session = NotebookSession.current()
    run("%config GpuOutletMagics.wait_seconds = 2.5")
    run("%config GpuOutletMagics.max_hourly_spend_cents = 300")
    assert session.wait_seconds == 2.5
    assert session.backend_config().service.options.max_hourly_spend_cents == 300
    # In a configuration file (ipython_config.py) too; where it sets both, the current name wins.
    both = Config()
    both.GpuOutletMagics.backend = "in-process"
    both.GpuOutletMagics.wait_seconds = 3.0
    both.NotebookSession.wait_seconds = 4.0
    configured = NotebookSession(config=both)
    assert (configured.backend, configured.wait_seconds) == ("in-process", 4.0)


def _another(trait: Any, value: Any) -> Any:
    """A valid value of ``trait`` other than ``value``."""
    if isinstance(trait, Enum):
        return next(v for v in trait.values if v != value)
    if isinstance(trait, Bool):
        return not value
    if isinstance(trait, (Float, Integer)):
        return value + 1
    return "/tmp/gpuoutlet-elsewhere"  # the text settings are paths, a user name, a program


@pytest.mark.parametrize("section", ["NotebookSession", "GpuOutletMagics"])
def test_every_setting_can_be_made_with_config(
    ip: Any, fake: FakeBackend, run: Run, section: str
) -> None:
    session = NotebookSession.current()
    traits = session.traits(config=True)
    assert {"backend", "poll_interval", "ssh_dir", "max_hourly_spend_cents"} <= set(traits)
    for name, trait in sorted(traits.items()):
        wanted = _another(trait, getattr(session, name))
        _, printed = run(f"%config {section}.{name} = {wanted!r}")
        assert getattr(session, name) == wanted, (name, printed)
        value, printed = run(f"%config NotebookSession.{name}")
        assert value == wanted, (name, printed)


# -- bad input: one paragraph, no traceback, nothing sent ----------------------------------


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("%gpu_rent rtx-4090 --gpus 3", "--gpus must be one of 1, 2, 4, 8 (got 3)"),
        ("%gpu_rent rtx-4090 --gpus two", "argument --gpus: invalid int value: 'two'"),
        (
            f"%gpu_rent rtx-4090 --name {'x' * 65}",
            "--name is longer than the 64 characters allowed",
        ),
        ("%gpu_rent rtx-4090 --colour red", "unrecognized arguments: --colour red"),
        ("%gpu_rent", "the following arguments are required: FAMILY"),
        ("%gpu_rent rtx-4090 --auto-stop -1", "--auto-stop should be greater than 0"),
        (
            "%gpu_rent rtx-4080",
            "There is no GPU family 'rtx-4080' in gpuoutlet's catalog. Did you mean rtx-4090?",
        ),
        (
            "%gpu_rent rtx-4090 --template pytroch",
            "--template must be one of ubuntu-24-04, pytorch",
        ),
        ("%gpu_keys remove", "argument action: invalid choice: 'remove'"),
        ("%gpu_status ../../etc", "the rental ID '../../etc' is not a rental id"),
        ("%gpu_stop", "give one rental ID"),
        (f"%gpu_stop {ID} --all", "not both"),
        ("%gpu_wait", "the following arguments are required: ID"),
        ("%gpu_rentals extra", "unrecognized arguments: extra"),
    ],
)
def test_bad_input_gets_one_paragraph(
    fake: FakeBackend, run: Run, cell: str, expected: str
) -> None:
    value, printed = run(cell)
    assert isinstance(value, GpuMagicError), (value, printed)
    assert expected in printed, printed
    assert "Traceback" not in printed and "\n" not in printed.strip()
    assert "`%" in printed or "%gpu_" in printed  # it says what to do next
    assert not fake.created


def test_a_short_wallet_names_the_hour_the_wallet_and_where_to_top_up(
    fake: FakeBackend, run: Run
) -> None:
    from gpuoutlet_jupyter.api import Balance, Preview, RentalRequest
    from gpuoutlet_jupyter.service.money import check_balance
    from gpuoutlet_jupyter.service.record import QuoteInfo

    # The service's own refusal, made from the quote and the balance (as the server makes it).
    quote = QuoteInfo.from_preview(
        Preview(price_per_hour_cents=280, estimated_provision_seconds=45)
    )
    poor = Balance(available_cents=50, reserved_cents=0, total_cents=50)
    with pytest.raises(api.InsufficientBalanceError) as refused:
        check_balance(quote, poor, RentalRequest.build(family_id="h100-80gb"), SITE)
    fake.create_error = refused.value
    value, printed = run("%gpu_rent h100-80gb")
    assert isinstance(value, GpuMagicError)
    assert "$2.80 for this one" in printed and "the wallet has $0.50 available" in printed
    assert f"Top up the wallet on {SITE}" in printed
    assert "Nothing was sent and nothing was charged" in printed
    assert "sign in" not in printed.lower()


def test_no_capacity_names_what_is_available(fake: FakeBackend, run: Run) -> None:
    error = api.ModelUnavailableError(
        "No provider has that GPU family, count and region free right now.",
        status_code=400,
        code="model_unavailable",
        api_message="No provider available for this config",
    )
    fake.create_error = error.with_alternatives(["rtx-4090 ×1 in US-East"])
    _, printed = run("%gpu_rent rtx-4090 --region JP")
    assert printed.startswith("%gpu_rent: No provider has that GPU family")
    assert "Available now: rtx-4090 ×1 in US-East." in printed


def test_an_expired_session_says_how_to_sign_in_again(fake: FakeBackend, run: Run) -> None:
    fake.create_error = api.UnauthorizedError(
        "Your gpuoutlet session has expired or was signed out, so nothing could be done "
        "(gpuoutlet said: “Not signed in”). Sign in again: copy the new `sid` cookie.",
        status_code=401,
        code="unauthorized",
        api_message="Not signed in",
    )
    value, printed = run("%gpu_rent rtx-4090")
    assert isinstance(value, GpuMagicError)
    assert "session has expired" in printed and "sid" in printed and "Not signed in" in printed


def test_a_key_missing_from_the_account_is_refused_with_what_to_do(
    fake: FakeBackend, run: Run
) -> None:
    fake.create_error = api.KeyNotOnAccountError(
        fingerprint="SHA256:mine", identity="/home/me/.ssh/id_ed25519", public_key_file="x.pub"
    )
    value, printed = run("%gpu_rent rtx-4090")
    assert isinstance(value, GpuMagicError)
    assert "SHA256:mine" in printed and "%gpu_keys add" in printed and not fake.created


# -- renting, following, Ctrl-C --------------------------------------------------------------


def test_rent_follows_to_running_and_returns_the_rental(
    ip: Any, fake: FakeBackend, run: Run
) -> None:
    fake.states = [
        rental_json(version=2, polls=1),
        api.ServerError(
            "The Jupyter server answered 502.", status_code=502, code="x", api_message="x"
        ),
        rental_json(version=4, polls=2, upstreamError="API 503, retrying"),
        RUNNING,
    ]
    value, printed = run(
        "r = %gpu_rent rtx-4090 --gpus 2 --region EU --name alice/exp-42 --auto-stop 1.5 --template pytorch\nr"
    )
    assert isinstance(value, RentalInfo) and value.status == "running"
    (body,) = fake.created
    assert body == {
        "familyId": "rtx-4090",
        "gpuCount": 2,
        "templateId": "pytorch",
        "region": "EU",
        "name": "alice/exp-42",
        "autoStopAfterHours": 1.5,
    }
    # The confirmation line, from gpuoutlet's quote; progress in time against its estimate.
    assert f"{ID}: rtx-4090 ×1 (pytorch) at $0.65/h from vast, US-East" in printed
    assert "gpuoutlet expects it running in about 0:45" in printed
    assert "left of ~0:45" in printed and "API 503, retrying" in printed
    assert "Lost contact, retrying (1 of 5)" in printed
    for label, shown in (
        ("host", "10.1.2.3"),
        ("port", "2222"),
        ("ssh", f"ssh gpuoutlet-{ID}"),
        ("price", "$0.65/h"),
        ("template", "ubuntu-24-04"),
        ("kernel", f"gpuoutlet-{ID.lower()}"),
    ):
        assert re.search(rf"\n  {label} +{re.escape(shown)}", printed), (label, printed)
    assert ip.user_ns["r"] is value


def test_ctrl_c_stops_the_waiting_not_the_rental(fake: FakeBackend, run: Run) -> None:
    fake.states = [rental_json(version=2, polls=1), KeyboardInterrupt()]
    value, printed = run("r = %gpu_rent rtx-4090\nr")
    assert isinstance(value, RentalInfo) and value.status == "provisioning" and value.polls == 1
    assert "Stopped waiting for" in printed and "The rental goes on" in printed
    assert f"%gpu_wait {ID}" in printed and f"%gpu_stop {ID}" in printed
    assert not fake.stopped
    # Picking it up again.
    fake.states = [RUNNING]
    value, printed = run(f"%gpu_wait {ID}")
    assert isinstance(value, RentalInfo) and value.is_running


def test_a_failed_rental_is_an_error_with_its_reason(fake: FakeBackend, run: Run) -> None:
    fake.states = [rental_json(status="failed", error="the provider lost the machine", version=5)]
    value, printed = run("%gpu_rent rtx-4090")
    assert isinstance(value, GpuMagicError)
    assert "failed to provision: the provider lost the machine" in printed
    assert "%gpu_families" in printed


def test_no_wait_returns_at_once(fake: FakeBackend, run: Run) -> None:
    value, printed = run("%gpu_rent rtx-4090 --no-wait")
    assert isinstance(value, RentalInfo) and value.status == "provisioning"
    assert f"%gpu_wait {ID} follows it" in printed


def test_following_gives_up_after_repeated_failures(fake: FakeBackend, run: Run) -> None:
    down = ServerUnreachable = api.TransportError("Cannot reach it.", url="http://s/")
    fake.states = [down] * 6
    value, printed = run("%gpu_rent rtx-4090")
    assert isinstance(value, GpuMagicError)
    assert "Stopped waiting for" in printed and "The rental goes on" in printed
    assert f"%gpu_stop {ID}" in printed
    del ServerUnreachable


# -- the other magics ------------------------------------------------------------------------


def test_reading_magics(fake: FakeBackend, run: Run) -> None:
    value, printed = run("%gpu_families")
    assert "rtx-4090" in printed and "80 GB" in printed and "1× $2.80" in printed
    value, printed = run("%gpu_templates")
    assert "pytorch" in printed and "11434" in printed and "ubuntu-24-04 (default)" in printed
    value, printed = run("%gpu_wallet")
    assert "$12.34 available, $0.65 reserved" in printed and "$12.99 in all" in printed
    value, printed = run("%gpu_rentals")
    assert isinstance(value, RentalsTable) and "No rentals" in printed
    fake.listed = [RUNNING]
    value, printed = run("%gpu_rentals")
    assert ID in printed and f"ssh gpuoutlet-{ID}" in printed
    value, printed = run("%gpu_status")
    assert "a fake server" in printed and "1 active, 1 tracked" in printed
    assert "signed in as" in printed and "you@example.com" in printed
    assert "session ends" in printed and "2026-07-07 08:14 UTC" in printed
    assert "about 2.0 days" in printed  # under three days: the warning
    value, printed = run(f"%gpu_status {ID}")
    assert isinstance(value, RentalInfo) and value.id == ID


def test_rentals_warn_when_the_wallet_lasts_under_an_hour(fake: FakeBackend, run: Run) -> None:
    fake.listed = [RUNNING]
    fake.wallet_reply = {
        **WALLET,
        "totalCents": 40,
        "burnCentsPerHour": 65,
        "hoursLeft": 0.62,
        "activeRentals": 1,
        "warnings": [
            {
                "code": "wallet_under_an_hour",
                "message": "At the current burn ($0.65/h) the wallet's $0.40 lasts about 37 "
                "minutes. When it reaches $0 gpuoutlet stops every pod.",
            },
            {"code": "open_invoices", "message": "You owe $100.00 on 1 open invoice."},
        ],
    }
    _, printed = run("%gpu_rentals")
    assert "lasts about 37 minutes" in printed and "stops every pod" in printed
    assert "⚠ You owe $100.00" in printed
    _, printed = run("%gpu_wallet")
    assert "⚠ At the current burn" in printed


def test_keys_list_mark_and_add(fake: FakeBackend, run: Run) -> None:
    local = {
        "identityFile": "/home/me/.ssh/id_ed25519",
        "publicKeyFile": "/home/me/.ssh/id_ed25519.pub",
        "fingerprint": "SHA256:mine",
        "algorithm": "ssh-ed25519",
        "comment": "me@laptop",
        "onAccount": False,
    }
    other = {
        "id": "key_0",
        "name": "old",
        "fingerprint": "SHA256:other",
        "algorithm": "ssh-rsa",
        "createdAt": "2026-06-07T08:14:22Z",
        "local": False,
    }
    fake.keys_reply = {"keys": [other], "local": local, "localProblem": None}
    _, printed = run("%gpu_keys")
    assert "SHA256:other" in printed and "is NOT on your account" in printed
    assert "%gpu_keys add" in printed
    _, printed = run("%gpu_keys add --name laptop")
    assert fake.added == ["laptop"] and "Added." in printed
    assert "→" in printed and "new pods let it in" in printed
    value, printed = run("%gpu_keys --name x")
    assert isinstance(value, GpuMagicError) and "goes with add" in printed


def test_stop_says_it_is_permanent_then_what_it_cost(fake: FakeBackend, run: Run) -> None:
    fake.states = [
        rental_json(
            status="stopped",
            version=11,
            stoppedAt="2026-06-07T09:14:22Z",
            costCents=47,
            totalChargedCents=47,
            stop={
                "finalChargedCents": 47,
                "refundedCents": 0,
                "requestedAt": None,
                "alreadyStopped": False,
            },
        )
    ]
    value, printed = run(f"%gpu_stop {ID}")
    assert fake.stopped == [ID]
    assert isinstance(value, RentalInfo) and value.status == "stopped"
    assert printed.index("permanent") < printed.index("it cost $0.47 in all")
    assert "destroys the pod and wipes its disk" in printed


def test_stopping_twice_is_done_not_an_error(fake: FakeBackend, run: Run) -> None:
    fake.already_stopped = True
    value, printed = run(f"%gpu_stop {ID}")
    assert isinstance(value, RentalInfo) and value.status == "stopped"
    assert "was already stopped: nothing more to do" in printed
    assert "Error" not in printed and "No capacity" not in printed


def test_stop_all_asks_first(fake: FakeBackend, run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    second = ID.replace("TEST", "SECO", 1)
    fake.listed = [RUNNING, rental_json(id=second), rental_json(id="rent_01DONE", status="stopped")]
    questions: list[str] = []

    def answer(reply: str) -> Callable[[str], str]:
        def ask(question: str) -> str:
            questions.append(question)
            return reply

        return ask

    monkeypatch.setattr("builtins.input", answer("n"))
    value, printed = run("%gpu_stop --all")
    assert "Nothing was stopped." in printed and not fake.stopped
    assert questions == [
        f"Stop 2 rental(s), $1.30/h in all: {ID} (unit), {second} (unit)? {STOP_NOTICE} [y/N] "
    ]

    def no_stdin(question: str) -> str:
        raise StdinNotImplementedError("no stdin here")

    monkeypatch.setattr("builtins.input", no_stdin)
    value, printed = run("%gpu_stop --all")
    assert isinstance(value, GpuMagicError) and "%gpu_stop --all --yes" in printed
    assert not fake.stopped

    monkeypatch.setattr("builtins.input", answer("y"))
    value, printed = run("%gpu_stop --all --no-wait")
    assert fake.stopped == [ID, second]
    fake.stopped.clear()
    fake.states = [
        rental_json(status="stopped", version=12),
        rental_json(id=second, status="stopped", version=12),
    ]
    value, printed = run("%gpu_stop --all --yes")
    assert fake.stopped == [ID, second] and "Stopped 2 rental(s)" in printed


# -- the in-process service, against the sandbox ----------------------------------------------


@pytest.fixture
def in_process(
    ip: Any, sandbox: Any, ssh_keypair: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Any:
    account = sandbox.create_account(balance_cents=50, authorized_keys=ssh_keypair.public_key)
    for name in ("GPUOUTLET_SERVER_URL", "GPUOUTLET_SERVER_TOKEN", "JPY_PARENT_PID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GPUOUTLET_API_URL", sandbox.url)
    monkeypatch.setenv("GPUOUTLET_SID", account.sid)
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    ip.run_line_magic("config", f"NotebookSession.ssh_dir = {str(tmp_path / 'ssh')!r}")
    # The key on the account: the one the SSH entries use.
    ip.run_line_magic("config", f"NotebookSession.identity_file = {str(ssh_keypair.private_key)!r}")
    ip.run_line_magic("config", "NotebookSession.reconcile_interval = 0")
    return account


def test_in_process_insufficient_balance(in_process: Any, sandbox: Any, run: Run) -> None:
    value, printed = run("%gpu_rent rtx-4090")
    assert isinstance(value, GpuMagicError), printed
    assert "Not enough balance for 1× rtx-4090" in printed
    assert "$0.65 for this one, and the wallet has $0.50 available" in printed
    assert f"Top up the wallet on {sandbox.url}" in printed
    assert in_process.sid not in printed
    value, printed = run("%gpu_status")
    assert "this kernel (in-process" in printed and in_process.sid not in printed
    assert "signed in as" in printed


def test_the_panel_needs_a_widget_frontend(fake: FakeBackend, run: Run) -> None:
    value, printed = run("%gpu_panel")
    assert isinstance(value, GpuMagicError) and "%gpu_rentals" in printed


def test_an_unreachable_server_says_which_url_and_how_to_configure(
    ip: Any, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{free_port()}/"  # nothing listens there
    monkeypatch.setenv("GPUOUTLET_SERVER_URL", url)
    monkeypatch.setenv("GPUOUTLET_SERVER_TOKEN", "a-kernel-token-for-the-test")
    value, printed = run("%gpu_wallet")
    assert isinstance(value, GpuMagicError), printed
    assert printed.startswith(f"%gpu_wallet: The Jupyter server at {url} is not reachable")
    assert "restart this kernel" in printed
    assert "%config NotebookSession.backend = 'in-process'" in printed
    assert "a-kernel-token-for-the-test" not in printed


@pytest.fixture
def funded_in_process(in_process: Any, sandbox: Any, ssh_keypair: Any, monkeypatch: Any) -> Any:
    """`in_process` on an account that can pay for a rental."""
    account = sandbox.create_account(balance_cents=100_00, authorized_keys=ssh_keypair.public_key)
    monkeypatch.setenv("GPUOUTLET_SID", account.sid)
    yield account
    sandbox.set_faults({})


def test_a_garbled_families_list_does_not_block_renting(
    funded_in_process: Any, sandbox: Any, run: Run
) -> None:
    """The family pre-check is a convenience: a garbled list is treated like a missing one."""
    value, printed = run("%gpu_wallet")
    assert not isinstance(value, Exception), printed  # the service is up (its start is done)
    # Every try of the families call (the client retries 4 times) gets a garbled body.
    sandbox.set_faults({"malformedCount": 4})
    value, printed = run("%gpu_rent rtx-4090 --no-wait")
    assert not isinstance(value, Exception), printed
    assert value.status == "provisioning"
    with sandbox.client(funded_in_process.sid) as http:
        listed = http.get("/v1/rentals").json()["rentals"]
    assert [r["id"] for r in listed] == [value.id]
    value, printed = run(f"%gpu_stop {value.id} --no-wait")
    assert not isinstance(value, Exception), printed


# -- arguments as a shell splits them; what %gpu_keep says (issue 15) --------------------------


def test_arguments_are_split_as_a_shell_splits_them(fake: FakeBackend, run: Run) -> None:
    value, printed = run('%gpu_rent rtx-4090 --name "my exp 1" --no-wait')
    assert not isinstance(value, Exception), printed
    assert fake.created[-1]["name"] == "my exp 1"  # no quotes kept in the name
    value, printed = run("%gpu_rent rtx-4090 --name 'it'\"'\"'s' --no-wait")
    assert fake.created[-1]["name"] == "it's", printed
    # Family and template ids in any case: sent as gpuoutlet spells them.
    value, printed = run("%gpu_rent RTX-4090 --template PyTorch --no-wait")
    assert not isinstance(value, Exception), printed
    assert (fake.created[-1]["familyId"], fake.created[-1]["templateId"]) == (
        "rtx-4090",
        "pytorch",
    )
    # An unbalanced quote: said, nothing sent.
    count = len(fake.created)
    value, printed = run('%gpu_rent rtx-4090 --name "my exp 1')
    assert isinstance(value, GpuMagicError)
    assert "unbalanced quote" in printed and len(fake.created) == count


def test_keep_says_what_it_did(fake: FakeBackend, run: Run) -> None:
    value, printed = run(f"%gpu_keep {ID}")
    assert isinstance(value, RentalInfo) and fake.kept == [(ID, None)]
    assert f"{ID} has no idle stop" in printed and f"%gpu_keep {ID} --idle-stop" in printed
    fake.idle_reply = {
        "minutes": 30.0,
        "warnMinutes": 5.0,
        "lastActiveAt": "2026-06-07T08:14:22Z",
        "stopAt": "2026-06-07T08:44:22Z",
        "secondsLeft": 1800.0,
        "warning": False,
        "decidedHere": True,
        "kernels": 1,
        "busyKernels": 0,
    }
    value, printed = run(f"%gpu_keep {ID}")
    assert f"Kept {ID}: the idle timer starts again" in printed
    assert re.search(r"after 30 min with nothing running on it; (30:00|29:5\d) left", printed)
    fake.idle_reply = None
    value, printed = run(f"%gpu_keep {ID} --idle-stop 0")
    assert fake.kept[-1] == (ID, 0.0) and "no longer stopped for being idle" in printed


def test_a_name_with_spaces_reaches_the_api_and_the_kernel_name(
    funded_in_process: Any, sandbox: Any, run: Run, tmp_path: Path
) -> None:
    value, printed = run('r = %gpu_rent RTX-4090 --name "my exp 1"\nr')
    assert isinstance(value, RentalInfo), printed
    try:
        with sandbox.client(funded_in_process.sid) as http:
            listed = http.get(f"/v1/rentals/{value.id}").json()
        assert (listed["name"], listed["familyId"]) == ("my exp 1", "rtx-4090")
        assert value.kernel_display_name == "Python 3 · rtx-4090 ×1 · my exp 1"
        spec = tmp_path / "data" / "kernels" / str(value.kernel) / "kernel.json"
        assert '"display_name": "Python 3 · rtx-4090 ×1 · my exp 1"' in spec.read_text("utf-8")
    finally:
        run(f"%gpu_stop {value.id} --no-wait")


# -- saying when what is shown is old (issue 15) -----------------------------------------------


def test_with_the_api_unreachable_the_list_says_how_old_it_is_and_why(
    ip: Any, run: Run, ssh_keypair: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sandbox of this test's own, stopped under a running rental: the API is unreachable."""
    from gpuoutlet_jupyter.sandbox.testing import start_sandbox

    sandbox = start_sandbox(
        tmp_path / "sandbox",
        provision_seconds=(0.3, 0.6),
        worker_interval=0.2,
        authorized_key=ssh_keypair.public_key_path,
    )
    for name in ("GPUOUTLET_SERVER_URL", "GPUOUTLET_SERVER_TOKEN", "JPY_PARENT_PID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GPUOUTLET_API_URL", sandbox.url)
    monkeypatch.setenv("GPUOUTLET_SID", sandbox.sid)
    monkeypatch.setenv("GPUOUTLET_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    for setting in (
        f"NotebookSession.ssh_dir = {str(tmp_path / 'ssh')!r}",
        f"NotebookSession.identity_file = {str(ssh_keypair.private_key)!r}",
        "NotebookSession.reconcile_interval = 0",
        "NotebookSession.running_poll_interval = 0.2",
        "NotebookSession.progress = 'text'",
    ):
        ip.run_line_magic("config", setting)
    try:
        value, printed = run("r = %gpu_rent rtx-4090 --name stale\nr")
        assert isinstance(value, RentalInfo) and value.status == "running", printed
        value, printed = run("%gpu_status")
        assert re.search(r"configured\s+yes", printed) and "⚠" not in printed, printed
        value, printed = run("%gpu_rentals")
        assert "Not up to date" not in printed, printed
    finally:
        sandbox.terminate()  # the API is gone (and its pods with it)

    def answer(cell: str) -> str:
        # The watcher's next poll fails (it polls a running rental every 0.2 s here).
        deadline = time.monotonic() + 30
        while True:
            _value, printed = run(cell)
            if "⚠" in printed or time.monotonic() > deadline:
                return printed
            time.sleep(0.2)

    printed = answer("%gpu_rentals")
    # The old row is still there (it may still cost money), said to be old, with why.
    assert "stale" in printed and "running" in printed
    assert "⚠ Not up to date: the rentals API has not answered since" in printed, printed
    assert f"Could not reach the rentals API at {sandbox.url}" in printed
    assert "What is listed is what it said last (the oldest" in printed
    printed = answer("%gpu_status")
    assert not re.search(r"configured\s+yes\n", printed), printed
    assert re.search(
        r"configured\s+(yes, but the rentals API is not answering now|a session is set, but it does not work now)",
        printed,
    )
    assert re.search(r"⚠ rentals API\s+not answering since", printed)
    assert sandbox.sid not in printed


def test_a_wrong_sid_is_not_configured_yes(in_process: Any, run: Run, monkeypatch: Any) -> None:
    monkeypatch.setenv("GPUOUTLET_SID", "a-session-that-does-not-exist-0123456789")
    value, printed = run("%gpu_status")
    assert not isinstance(value, Exception), printed
    assert not re.search(r"configured\s+yes", printed), printed
    assert "a session is set, but it does not work now" in printed
    assert re.search(r"signed in\s+no \(the session has ended\): %gpu_login", printed), printed
    assert "a-session-that-does-not-exist" not in printed
