"""Units of the notebook layer: the kernel's settings, finding the server, the REST backend's
error mapping, the backend choice, progress lines and views. No kernel, no sandbox."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers.notebook import free_port, rental_json

from gpuoutlet_jupyter import api
from gpuoutlet_jupyter.notebook.connect import BackendChoice, BackendConfig, open_backend
from gpuoutlet_jupyter.notebook.discovery import ServerLocation, find_server, read_runtime_file
from gpuoutlet_jupyter.notebook.errors import (
    ExtensionMissingError,
    NoServerError,
    ServerRefusedError,
    ServerUnreachableError,
    explain_problems,
)
from gpuoutlet_jupyter.notebook.magics import FLAG_NAMES, GpuMagics
from gpuoutlet_jupyter.notebook.progress import StreamProgress, progress_line
from gpuoutlet_jupyter.notebook.rest import ServerBackend, error_from_reply
from gpuoutlet_jupyter.notebook.settings import KernelSettings
from gpuoutlet_jupyter.notebook.views import FamiliesTable, RentalInfo, RentalsTable
from gpuoutlet_jupyter.service.options import ServiceConfig

ROOT = Path(__file__).resolve().parent.parent


def _config(tmp_path: Path, backend: BackendChoice = "auto") -> BackendConfig:
    return BackendConfig(service=ServiceConfig(state_dir=tmp_path / "state"), backend=backend)


# -- importing and loading stays light ---------------------------------------------------


HEAVY = ("httpx", "pydantic", "ipywidgets", "tornado", "jupyter_server", "gpuoutlet_jupyter.api")


def test_load_ext_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance()\n"
        "ip.run_line_magic('load_ext', 'gpuoutlet_jupyter')\n"
        "assert ip.find_line_magic('gpu_rent') is not None\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr


def test_help_text_matches_the_api_rules() -> None:
    doc = GpuMagics.gpu_rent.__doc__
    assert doc is not None
    counts = ", ".join(map(str, api.GPU_COUNTS[:-1])) + f" or {api.GPU_COUNTS[-1]}"
    assert counts in doc
    assert f"at most {api.MAX_NAME_LENGTH} characters" in doc
    assert api.DEFAULT_TEMPLATE in doc


# -- the kernel's settings and finding the server ----------------------------------------


def test_kernel_settings_from_env() -> None:
    settings = KernelSettings.from_env(
        {
            "GPUOUTLET_SERVER_URL": " http://127.0.0.1:8888/base/ ",
            "GPUOUTLET_SERVER_TOKEN": "kernel-token-value",
            "JPY_PARENT_PID": "123",
        }
    )
    assert settings.server_url == "http://127.0.0.1:8888/base/"
    assert settings.parent_pid == 123
    assert "kernel-token-value" not in repr(settings)
    empty = KernelSettings.from_env({"GPUOUTLET_SERVER_URL": "", "JPY_PARENT_PID": "x"})
    assert empty == KernelSettings()


def test_find_server_prefers_the_environment(tmp_path: Path) -> None:
    (tmp_path / "jpserver-7.json").write_text(json.dumps({"url": "http://other/", "token": "t"}))
    location = find_server(
        KernelSettings(server_url="http://a:1/x", server_token="k", parent_pid=7), tmp_path
    )
    assert location is not None
    assert (location.url, location.token, location.published) == ("http://a:1/x/", "k", True)
    assert "GPUOUTLET_SERVER_URL" in location.source


def test_find_server_through_the_runtime_file(tmp_path: Path) -> None:
    info = {"url": "http://localhost:8888/lab/", "token": "server-token", "sock": "", "pid": 7}
    (tmp_path / "jpserver-7.json").write_text(json.dumps(info))
    location = find_server(KernelSettings(parent_pid=7), tmp_path)
    assert location is not None
    assert (location.url, location.token, location.published) == (
        "http://localhost:8888/lab/",
        "server-token",
        False,
    )
    assert str(tmp_path / "jpserver-7.json") in location.source
    assert "server-token" not in repr(location)
    # Another parent (nbclient, VS Code...), or none: no server.
    assert find_server(KernelSettings(parent_pid=8), tmp_path) is None
    assert find_server(KernelSettings(), tmp_path) is None


def test_runtime_file_of_a_unix_socket_server(tmp_path: Path) -> None:
    path = tmp_path / "jpserver-9.json"
    path.write_text(
        json.dumps({"url": "http+unix://%2Ftmp%2Fs/", "sock": "/tmp/s", "base_url": "/b/"})
    )
    location = read_runtime_file(path)
    assert location is not None and (location.url, location.socket) == (
        "http://localhost/b/",
        "/tmp/s",
    )
    path.write_text("not json")
    assert read_runtime_file(path) is None


# -- the REST backend ----------------------------------------------------------------------


def _backend(handler: Any, *, published: bool = True) -> ServerBackend:
    location = ServerLocation(
        url="http://server.test/base/", token="tok", source="a test", published=published
    )
    return ServerBackend(location, transport=httpx.MockTransport(handler))


def test_rest_backend_calls_and_long_polls() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/rentals") and request.method == "POST":
            return httpx.Response(200, json=rental_json())
        return httpx.Response(200, json=rental_json(version=4))

    backend = _backend(handler)
    backend.rental("rent_01TESTTESTTESTTESTTESTTEST", since=3, wait=2.5)
    backend.create({"familyId": "rtx-4090"})
    assert seen[0].url.path == "/base/gpuoutlet/api/rentals/rent_01TESTTESTTESTTESTTESTTEST"
    assert dict(seen[0].url.params) == {"since": "3", "wait": "2.5"}
    assert seen[0].headers["Authorization"] == "token tok"
    assert "Idempotency-Key" not in seen[1].headers
    assert json.loads(seen[1].content) == {"familyId": "rtx-4090"}
    with pytest.raises(api.RequestValidationError):
        backend.rental("../etc/passwd")  # never put into a URL


def test_a_create_is_sent_once_whatever_the_answer() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(503, json={"error": {"code": "starting", "message": "wait"}})

    with pytest.raises(api.ServerError):
        _backend(handler).create({"familyId": "rtx-4090"})
    # The rentals API has no idempotency key: a second send could rent a second pod.
    assert len(sent) == 1


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (
            400,
            {
                "code": "validation_error",
                "message": "m",
                "problems": [{"field": "gpuCount", "problem": "bad"}],
            },
            api.RequestValidationError,
        ),
        (
            403,
            {
                "code": "insufficient_balance",
                "message": "m",
                "neededCents": 65,
                "availableCents": 50,
                "upstreamMessage": "u",
            },
            api.InsufficientBalanceError,
        ),
        (
            403,
            {
                "code": "insufficient_balance",
                "message": "refused here",
                "neededCents": 65,
                "availableCents": 50,
            },
            api.InsufficientBalanceError,
        ),
        (400, {"code": "unknown_family", "message": "m", "familyId": "x"}, api.UnknownFamilyError),
        (
            409,
            {"code": "key_not_on_account", "message": "m", "fingerprint": "SHA256:x"},
            api.KeyNotOnAccountError,
        ),
        (409, {"code": "spending_cap", "message": "m", "capCentsPerHour": 5}, api.SpendingCapError),
        (
            400,
            {
                "code": "validation_failed",
                "message": "m",
                "upstreamCode": "validation_failed",
                "problems": [{"field": "name", "problem": "too long"}],
            },
            api.ValidationFailedError,
        ),
        (
            401,
            {
                "code": "unauthorized",
                "message": "expired",
                "upstreamCode": "unauthorized",
                "upstreamMessage": "Not signed in",
            },
            api.UnauthorizedError,
        ),
        (503, {"code": "not_configured", "message": "set GPUOUTLET_SID"}, api.ConfigurationError),
        (
            502,
            {"code": "upstream_unreachable", "message": "m", "apiUrl": "https://x"},
            api.TransportError,
        ),
        (
            502,
            {"code": "upstream_malformed", "message": "m", "upstreamStatus": 200},
            api.MalformedResponseError,
        ),
        (
            404,
            {
                "code": "rental_not_found",
                "message": "no such rental",
                "upstreamCode": "rental_not_found",
            },
            api.RentalNotFoundError,
        ),
        (
            400,
            {
                "code": "model_unavailable",
                "message": "m",
                "upstreamCode": "model_unavailable",
                "alternatives": ["a"],
            },
            api.ModelUnavailableError,
        ),
        (
            409,
            {"code": "brand_new", "message": "m", "upstreamCode": "brand_new"},
            api.ConflictError,
        ),
        (
            429,
            {
                "code": "rate_limited",
                "message": "m",
                "retryAfterSeconds": 3,
                "upstreamCode": "rate_limited",
                "upstreamMessage": "u",
            },
            api.RateLimitedError,
        ),
        (
            401,
            {
                "code": "oauth_state_mismatch",
                "message": "expired",
                "upstreamCode": "oauth_state_mismatch",
            },
            api.AuthenticationError,
        ),
        (403, {"code": "forbidden", "message": "no"}, ServerRefusedError),
        (500, {"code": "internal_error", "message": "m"}, api.ServerError),
        (
            502,
            {
                "code": "internal_error",
                "message": "m",
                "upstreamCode": "internal_error",
                "upstreamStatus": 503,
            },
            api.ServerError,
        ),
    ],
)
def test_error_replies_map_onto_the_client_hierarchy(
    status: int, error: dict[str, Any], expected: type[Exception]
) -> None:
    exc = error_from_reply(status, error, server_url="http://s/")
    assert type(exc) is expected
    if not isinstance(exc, (api.RequestValidationError, ServerRefusedError)):
        assert str(exc) == error["message"]  # the server's words, as the user reads them
    if isinstance(exc, api.InsufficientBalanceError):
        assert (exc.needed_cents, exc.available_cents) == (65, 50)
    if isinstance(exc, api.RateLimitedError):
        assert exc.retry_after == 3
    if isinstance(exc, api.ModelUnavailableError):
        assert exc.alternatives == ["a"]
    if isinstance(exc, api.ValidationFailedError):
        assert exc.fields == [("name", "too long")]


def test_errors_from_jupyter_itself() -> None:
    refused = _backend(lambda r: httpx.Response(403, text="<html>Forbidden</html>"))
    with pytest.raises(ServerRefusedError, match="kernel token"):
        refused.wallet()
    missing = _backend(lambda r: httpx.Response(404, text="<html>404</html>"), published=False)
    with pytest.raises(
        ExtensionMissingError, match="jupyter server extension enable gpuoutlet_jupyter"
    ):
        missing.status()


def test_an_unreachable_server_says_which_url_and_what_to_do(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    with pytest.raises(ServerUnreachableError) as info:
        open_backend(_config(tmp_path), KernelSettings(server_url=url, server_token="t"))
    message = str(info.value)
    assert url in message and "GPUOUTLET_SERVER_URL" in message
    assert "%config NotebookSession.backend = 'in-process'" in message


# -- choosing the backend ------------------------------------------------------------------


@pytest.fixture
def no_api_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GPUOUTLET_SID", raising=False)
    monkeypatch.delenv("GPUOUTLET_API_URL", raising=False)
    monkeypatch.setenv("GPUOUTLET_CREDENTIALS_FILE", str(tmp_path / "none"))


@pytest.mark.usefixtures("no_api_settings")
def test_no_server_and_no_session(tmp_path: Path) -> None:
    with pytest.raises(NoServerError, match="backend = 'auto'"):
        open_backend(_config(tmp_path, backend="server"), KernelSettings())
    # In-process, not signed in: the backend exists (to sign in), and says how.
    backend = open_backend(_config(tmp_path), KernelSettings())
    try:
        assert backend.kind == "in-process"
        with pytest.raises(api.ConfigurationError) as info:
            backend.wallet()
        status = backend.status()
    finally:
        backend.close()
    message = str(info.value)
    assert "not started by a Jupyter server with the gpuoutlet extension" in message
    assert "%gpu_login you@example.com" in message and "GPUOUTLET_SID" in message
    assert status["configured"] is False and status["sessionState"] == "signed_out"


class _NotFound(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(404)
        self.end_headers()
        self.wfile.write(b"<html>not found</html>")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def plain_jupyter(tmp_path: Path) -> Iterator[Path]:
    """A 'Jupyter server' without the extension, and its runtime file (for JPY_PARENT_PID 7)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    info = {"url": f"http://127.0.0.1:{httpd.server_address[1]}/", "token": "t", "pid": 7}
    (tmp_path / "jpserver-7.json").write_text(json.dumps(info))
    try:
        yield tmp_path
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.mark.usefixtures("no_api_settings")
def test_a_server_without_the_extension_falls_back_to_in_process(
    plain_jupyter: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(plain_jupyter))
    # Auto: in-process, which here has no session: its message says so.
    backend = open_backend(_config(tmp_path), KernelSettings(parent_pid=7))
    try:
        assert backend.kind == "in-process"
        with pytest.raises(api.ConfigurationError, match="%gpu_login"):
            backend.families()
    finally:
        backend.close()
    with pytest.raises(ExtensionMissingError):
        open_backend(_config(tmp_path, backend="server"), KernelSettings(parent_pid=7))


# -- progress and views --------------------------------------------------------------------


def test_progress_line_has_what_the_widget_has() -> None:
    line = progress_line(RentalInfo(rental_json(upstreamError="API 503, retrying")))
    for part in (
        "rent_01TEST",
        "provisioning",
        "left of ~0:45",
        "$0.65/h, $0.65 reserved",
        "last poll failed, retrying: API 503",
    ):
        assert part in line
    running = RentalInfo(
        rental_json(
            status="running",
            host="10.0.0.5",
            port=2222,
            ssh={"alias": "gpuoutlet-x", "command": "ssh gpuoutlet-x"},
            kernel="gpuoutlet-x",
        )
    )
    line = progress_line(running)
    assert "10.0.0.5:2222" in line and "ssh gpuoutlet-x" in line and "kernel gpuoutlet-x" in line


def test_stream_progress_is_one_line_rewritten() -> None:
    stream = io.StringIO()
    view = StreamProgress(stream)
    view.update(RentalInfo(rental_json(polls=1)))
    view.update(RentalInfo(rental_json(polls=2)))
    view.finish(RentalInfo(rental_json(status="failed", error="no host")))
    text = stream.getvalue()
    assert text.count("\r") == 3 and text.count("\n") == 1 and text.endswith("\n")


def test_views_escape_html_and_have_plain_text() -> None:
    rental = RentalInfo(rental_json(name="<script>alert(1)</script>"))
    assert "<script>" not in rental._repr_html_()
    assert "&lt;script&gt;" in rental._repr_html_()
    assert repr(rental).startswith("RentalInfo('rent_01TEST")
    assert "$0.65 reserved for the first hour" in rental.to_text()
    table = RentalsTable([rental])
    assert "<script>" not in table._repr_html_() and "rent_01TEST" in table.to_text()
    families = FamiliesTable(
        [
            {
                "id": "x<y",
                "models": ["RTX_4090"],
                "vramGb": 24,
                "minPricePerGpuHourCents": 63,
                "regionCodes": ["US", "DE"],
                "providers": ["vast"],
                "offers": [{"gpuCount": 2, "pricePerHourCents": 125}],
            }
        ]
    )
    assert "x&lt;y" in families._repr_html_()
    assert "$0.63" in families.to_text() and "2× $1.25" in families.to_text()
    assert "US, DE" in families.to_text() and "24 GB" in families.to_text()


def test_problems_use_the_flags_people_typed() -> None:
    text = explain_problems([("gpuCount", "must be one of 1, 2, 4, 8 (got 3)")], FLAG_NAMES)
    assert text == "--gpus must be one of 1, 2, 4, 8 (got 3)"


def test_the_panel_and_magics_are_reachable_from_the_package() -> None:
    code = (
        "import sys, gpuoutlet_jupyter\n"
        "assert 'ipywidgets' not in sys.modules\n"
        "print(gpuoutlet_jupyter.Panel.__name__, 'ipywidgets' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=True,
    )
    assert out.stdout.split() == ["Panel", "True"]


# -- tab completion --------------------------------------------------------------------------


def test_template_and_gpu_counts_complete_in_a_real_shell() -> None:
    code = (
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance()\n"
        "ip.run_line_magic('load_ext', 'gpuoutlet_jupyter')\n"
        "for line in ['%gpu_rent rtx-4090 --template ', '%gpu_rent rtx-4090 --template py',\n"
        "             '%gpu_rent rtx-4090 --gpus ', '%gpu_keys a', '%gpu_rent x --template=ol']:\n"
        "    print(ip.complete('', line, len(line))[1])\n"
        "ip.run_line_magic('unload_ext', 'gpuoutlet_jupyter')\n"
        "print(ip.complete('', '%gpu_keys a', 11)[1])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    lines = out.stdout.strip().splitlines()
    assert lines[:5] == [
        "['a1111', 'ollama', 'pytorch', 'text-gen-webui', 'ubuntu-24-04', 'vllm']",
        "['pytorch']",
        "['1', '2', '4', '8']",
        "['add']",
        "['ollama']",
    ], out.stderr
    assert "add" not in lines[5]  # unloaded: the matcher is gone


def test_completion_stays_out_of_other_lines() -> None:
    from gpuoutlet_jupyter.notebook.completion import candidates

    assert candidates("x = 1 --template ") is None
    assert candidates("%gpu_rent rtx-4090 ") is None  # a family: no fixed list to offer
    found = candidates('%gpu_rent "unbalanced --template ')
    assert found is not None and sorted(found) == [
        "a1111", "ollama", "pytorch", "text-gen-webui", "ubuntu-24-04", "vllm",
    ]  # fmt: skip
