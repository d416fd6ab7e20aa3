"""Start what the browser tests run against, start it over when a test asks, and stop it all.

Run by Playwright's ``webServer`` (see playwright.config.js) with the port it picked (a free
one: bound to port 0 first, never a fixed port):

    python start_servers.py --port 40123

1. a sandbox of the rentals API (``gpuoutlet_jupyter.sandbox.testing.start_sandbox``) with a
   fast clock: pods boot in 1-2 s, the worker runs every 0.2 s, the wallet holds $20, and the
   account has the server's SSH key;
2. JupyterLab on 127.0.0.1:<port> configured by galata's ``configure_jupyter_server`` (no
   token, no XSRF), the gpuoutlet extension pointed at the sandbox through GPUOUTLET_API_URL
   and GPUOUTLET_SID, with a temporary SSH folder, state folder, data and settings folders,
   and the labextension from this checkout's build (``jlpm build``), not an installed copy;
   the idle auto-stop warns 12 s before a stop and looks at the kernels every 0.5 s.

A test may restart JupyterLab alone (``{"labOnly": true}`` in ``.run/reset.json``, then SIGUSR1):
it stops as a Jupyter stops (its remote kernels stay on their pods, detached) and starts again on
the same folders and sandbox, as after a restart of the Jupyter server.

Some tests change what cannot be changed back (a session that expired, a wallet topped up for
130 rentals) or need an account without the server's key, or a server that starts signed out.
They ask for a fresh start: write ``.run/reset.json`` (``{"keyOnAccount": false}`` for an
account without the key, ``{"signedOut": true}`` for a JupyterLab with no session: it signs in
from the sidebar, into ``<tmp>/credentials``) and send this process SIGUSR1. It stops JupyterLab and the sandbox, starts both again from empty folders (on
the same port), and writes ``.run/servers.json`` with the next ``generation``; the test waits
for that (tests/helpers.ts: ``resetServers``).

On SIGTERM or SIGINT it stops JupyterLab (which shuts its kernels down), then the sandbox,
then removes the temporary folder (kept with GPUOUTLET_KEEP_TMP=1).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any

import jupyterlab.galata

from gpuoutlet_jupyter.sandbox.testing import SandboxProcess, make_keypair, start_sandbox

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
BUILD = REPO / "gpuoutlet_jupyter" / "labextension"
#: What the tests read: the sandbox's URL and admin token, the temporary folder, the generation.
RUN_INFO = HERE / ".run" / "servers.json"
#: What a test asks of a fresh start.
RESET_REQUEST = HERE / ".run" / "reset.json"
#: The folders a fresh start empties (the notebooks' root and the workspaces stay).
STATE_DIRS = ("ssh", "state", "data", "runtime", "config", "settings")

CONFIG = """\
from jupyterlab.galata import configure_jupyter_server

configure_jupyter_server(c)
c.ServerApp.ip = "127.0.0.1"
c.ServerApp.port = {port}
c.ServerApp.port_retries = 0
c.ServerApp.allow_root = True  # CI containers run as root
c.ServerApp.root_dir = {root!r}
c.LabApp.workspaces_dir = {workspaces!r}
# galata's helper extension, then this checkout's build (first found wins over the installed one)
c.LabServerApp.extra_labextensions_path = [{galata!r}, {labextensions!r}]
c.GpuOutletApp.ssh_dir = {ssh_dir!r}
c.GpuOutletApp.state_dir = {state_dir!r}
c.GpuOutletApp.identity_file = {identity!r}
c.GpuOutletApp.poll_interval = 0.2
c.GpuOutletApp.running_poll_interval = 1.0
c.GpuOutletApp.reconcile_interval = 5.0
# Idle auto-stop in seconds, not minutes: the warning 12 s before the stop, checked twice a second
# (off unless a rental asks for it: the default idle_stop_minutes stays 0).
c.GpuOutletApp.idle_warning_minutes = 0.2
c.GpuOutletApp.idle_check_interval = 0.5
# Saves before a stop land in the run's folder, never in the home of whoever runs the tests.
c.GpuOutletApp.saves_dir = {saves_dir!r}
# GPU telemetry every second while a card is expanded (5 s for real).
c.GpuOutletApp.telemetry_interval = 1.0
# Forwarded pod ports open through jupyter-server-proxy at {{base_url}}proxy/<port>/.
c.ServerApp.jpserver_extensions.update({{"jupyter_server_proxy": True}})
"""


class Servers:
    """The sandbox and JupyterLab of one generation, in one temporary folder."""

    def __init__(self, tmp: Path, port: int) -> None:
        self.tmp = tmp
        self.port = port
        self.dirs = {
            name: tmp / name for name in ("root", *STATE_DIRS, "workspaces", "labextensions")
        }
        for path in self.dirs.values():
            path.mkdir(mode=0o700, exist_ok=True)
        link = self.dirs["labextensions"] / "gpuoutlet-jupyter"
        if not link.exists():
            link.symlink_to(BUILD, target_is_directory=True)
        self.keys = make_keypair(tmp / "keys")
        self.config = tmp / "jupyter_server_config.py"
        self.config.write_text(
            CONFIG.format(
                port=port,
                root=str(self.dirs["root"]),
                workspaces=str(self.dirs["workspaces"]),
                galata=str(Path(jupyterlab.galata.__file__).parent),
                labextensions=str(self.dirs["labextensions"]),
                ssh_dir=str(self.dirs["ssh"]),
                state_dir=str(self.dirs["state"]),
                identity=str(self.keys.private_key),
                saves_dir=str(tmp / "saves"),
            ),
            encoding="utf-8",
        )
        self.generation = 0
        self.sandbox: SandboxProcess | None = None
        self.lab: subprocess.Popen[bytes] | None = None
        self.env: dict[str, str] = {}
        self.key_on_account = True

    @property
    def credentials(self) -> Path:
        """Where a sign-in from the sidebar keeps the session (emptied at each fresh start)."""
        return self.tmp / "credentials"

    def start(self, *, key_on_account: bool = True, signed_out: bool = False) -> None:
        """A sandbox (a new data folder each generation), then JupyterLab pointed at it."""
        self.generation += 1
        self.sandbox = start_sandbox(
            self.tmp / f"sandbox-{self.generation}",
            balance_cents=20_00,
            provision_seconds=(1.0, 2.0),
            worker_interval=0.2,
            # None: the account gets a throwaway key, not the one the server's SSH entries use.
            authorized_key=self.keys.public_key_path if key_on_account else None,
        )
        env = {k: v for k, v in os.environ.items() if k != "GPUOUTLET_SID"}
        if not signed_out:
            env["GPUOUTLET_SID"] = self.sandbox.sid
        self.credentials.unlink(missing_ok=True)
        env.update(
            GPUOUTLET_API_URL=self.sandbox.url,
            GPUOUTLET_CREDENTIALS_FILE=str(self.credentials),
            JUPYTER_DATA_DIR=str(self.dirs["data"]),
            JUPYTER_RUNTIME_DIR=str(self.dirs["runtime"]),
            JUPYTER_CONFIG_DIR=str(self.dirs["config"]),
            JUPYTERLAB_SETTINGS_DIR=str(self.dirs["settings"]),
            JUPYTERLAB_WORKSPACES_DIR=str(self.dirs["workspaces"]),
        )
        self.env, self.key_on_account, self.signed_out = env, key_on_account, signed_out
        self._write_info(key_on_account, signed_out)
        print(
            f"generation {self.generation}: sandbox {self.sandbox.url} (pid {self.sandbox.pid}), "
            f"temporary folder {self.tmp}",
            flush=True,
        )
        self._start_lab()

    def _start_lab(self) -> None:
        self.lab = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", f"--config={self.config}"],
            cwd=self.dirs["root"],
            env=self.env,
            stdin=subprocess.DEVNULL,
        )
        print(f"JupyterLab pid {self.lab.pid} on http://127.0.0.1:{self.port}/lab", flush=True)

    def restart_lab(self) -> None:
        """JupyterLab alone, stopped as a Jupyter stops and started again on the same folders."""
        self._stop_lab()
        self.generation += 1
        self._write_info(self.key_on_account, self.signed_out)
        self._start_lab()

    def _write_info(self, key_on_account: bool, signed_out: bool) -> None:
        assert self.sandbox is not None
        info: dict[str, Any] = {
            "sandboxUrl": self.sandbox.url,
            "adminToken": self.sandbox.admin_token,
            "accountId": self.sandbox.account_id,
            # The throwaway sandbox session, so a test can rent "elsewhere" (straight
            # through the sandbox's API, as another machine would).
            "sid": self.sandbox.sid,
            "email": self.sandbox.email,
            "tmp": str(self.tmp),
            "port": self.port,
            "pid": os.getpid(),
            # The pods' SSH servers live in the sandbox's process (SIGSTOP holds a reconnect).
            "sandboxPid": self.sandbox.pid,
            "generation": self.generation,
            "keyOnAccount": key_on_account,
            "signedOut": signed_out,
            # Where a sign-in from the sidebar keeps the session (to check it, never to show it).
            "credentialsFile": str(self.credentials),
            "publicKeyFile": str(self.keys.public_key_path),
            "savesDir": str(self.tmp / "saves"),
        }
        RUN_INFO.parent.mkdir(exist_ok=True)
        RUN_INFO.touch(mode=0o600)
        RUN_INFO.chmod(0o600)
        # Through a temporary file: a test polling for the next generation never reads half.
        part = RUN_INFO.with_suffix(".part")
        part.write_text(json.dumps(info), encoding="utf-8")
        part.chmod(0o600)
        part.replace(RUN_INFO)

    def running(self) -> bool:
        return (
            self.lab is not None
            and self.lab.poll() is None
            and self.sandbox is not None
            and self.sandbox.proc.poll() is None
        )

    def stop(self) -> None:
        """JupyterLab first (it shuts its kernels down), then the sandbox."""
        self._stop_lab()
        if self.sandbox is not None:
            self.sandbox.terminate()
        self.sandbox = None

    def _stop_lab(self) -> None:
        if self.lab is not None and self.lab.poll() is None:
            self.lab.send_signal(signal.SIGTERM)
            try:
                self.lab.wait(20)
            except subprocess.TimeoutExpired:
                self.lab.kill()
                self.lab.wait()
        self.lab = None

    def reset(self, *, key_on_account: bool, signed_out: bool = False) -> None:
        """Stop both, empty the server's folders, start both again."""
        self.stop()
        for name in STATE_DIRS:
            shutil.rmtree(self.dirs[name], ignore_errors=True)
            self.dirs[name].mkdir(mode=0o700)
        self.start(key_on_account=key_on_account, signed_out=signed_out)


def read_reset_request() -> dict[str, Any]:
    try:
        request = json.loads(RESET_REQUEST.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    finally:
        RESET_REQUEST.unlink(missing_ok=True)
    return request if isinstance(request, dict) else {}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="JupyterLab's port")
    args = parser.parse_args()

    if not (BUILD / "package.json").exists():
        print(
            f"No labextension build in {BUILD}: run `jlpm build` in labextension/ first.",
            file=sys.stderr,
        )
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="gpuoutlet-galata-"))
    keep = os.environ.get("GPUOUTLET_KEEP_TMP") == "1"
    stopping = False
    reset_asked = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    def reset(signum: int, frame: FrameType | None) -> None:
        nonlocal reset_asked
        reset_asked = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGUSR1, reset)
    RESET_REQUEST.unlink(missing_ok=True)
    servers = Servers(tmp, args.port)
    try:
        servers.start()
        while not stopping:
            if reset_asked:
                reset_asked = False
                request = read_reset_request()
                if request.get("labOnly"):
                    print("a restart of JupyterLab alone asked for", flush=True)
                    servers.restart_lab()
                else:
                    print(f"fresh start asked for: {request}", flush=True)
                    servers.reset(
                        key_on_account=bool(request.get("keyOnAccount", True)),
                        signed_out=bool(request.get("signedOut", False)),
                    )
            if not servers.running():
                break
            time.sleep(0.2)
        if not stopping:
            if servers.lab is not None and servers.lab.poll() is not None:
                print(
                    f"JupyterLab exited on its own (status {servers.lab.returncode})",
                    file=sys.stderr,
                )
            if servers.sandbox is not None and servers.sandbox.proc.poll() is not None:
                print(
                    f"The sandbox exited on its own; its log:\n{servers.sandbox.log()[-4000:]}",
                    file=sys.stderr,
                )
        return 0 if stopping else 1
    finally:
        servers.stop()
        RUN_INFO.unlink(missing_ok=True)
        RESET_REQUEST.unlink(missing_ok=True)
        if keep:
            print(f"kept {tmp}", flush=True)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
