"""Start what the browser tests run against, and stop it all (by pid) when told to.

Run by Playwright's ``webServer`` (see playwright.config.js) with the port it picked (a free
one: bound to port 0 first, never a fixed port):

    python start_servers.py --port 40123

1. a sandbox of the rentals API (``gpuoutlet_jupyter.sandbox.testing.start_sandbox``) with a
   fast clock: pods boot in 1-2 s, the worker runs every 0.2 s, the wallet holds $20;
2. JupyterLab on 127.0.0.1:<port> configured by galata's ``configure_jupyter_server`` (no
   token, no XSRF), the gpuoutlet extension pointed at the sandbox through GPUOUTLET_API_URL
   and GPUOUTLET_SID, with a temporary SSH folder, state folder, data and settings folders,
   and the labextension from this checkout's build (``jlpm build``), not an installed copy;
   the idle auto-stop warns 12 s before a stop and looks at the kernels every 0.5 s.

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

import jupyterlab.galata

from gpuoutlet_jupyter.sandbox.testing import make_keypair, start_sandbox

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
BUILD = REPO / "gpuoutlet_jupyter" / "labextension"
#: What the tests read: the sandbox's URL and admin token, the temporary folder.
RUN_INFO = HERE / ".run" / "servers.json"

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
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="JupyterLab's port")
    args = parser.parse_args()

    if not (BUILD / "package.json").exists():
        print(f"No labextension build in {BUILD}: run `jlpm build` in labextension/ first.", file=sys.stderr)
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="gpuoutlet-galata-"))
    keep = os.environ.get("GPUOUTLET_KEEP_TMP") == "1"
    dirs = {name: tmp / name for name in ("root", "ssh", "state", "data", "runtime", "config", "settings", "workspaces", "labextensions")}
    for path in dirs.values():
        path.mkdir(mode=0o700)
    (dirs["labextensions"] / "gpuoutlet-jupyter").symlink_to(BUILD, target_is_directory=True)

    keys = make_keypair(tmp / "keys")
    sandbox = start_sandbox(
        tmp / "sandbox",
        balance_cents=20_00,
        provision_seconds=(1.0, 2.0),
        worker_interval=0.2,
        authorized_key=keys.public_key_path,
    )
    lab: subprocess.Popen[bytes] | None = None
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        config = tmp / "jupyter_server_config.py"
        config.write_text(
            CONFIG.format(
                port=args.port,
                root=str(dirs["root"]),
                workspaces=str(dirs["workspaces"]),
                galata=str(Path(jupyterlab.galata.__file__).parent),
                labextensions=str(dirs["labextensions"]),
                ssh_dir=str(dirs["ssh"]),
                state_dir=str(dirs["state"]),
                identity=str(keys.private_key),
            ),
            encoding="utf-8",
        )
        env = dict(os.environ)
        env.update(
            GPUOUTLET_API_URL=sandbox.url,
            GPUOUTLET_SID=sandbox.sid,
            GPUOUTLET_CREDENTIALS_FILE=str(tmp / "no-credentials"),
            JUPYTER_DATA_DIR=str(dirs["data"]),
            JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
            JUPYTER_CONFIG_DIR=str(dirs["config"]),
            JUPYTERLAB_SETTINGS_DIR=str(dirs["settings"]),
            JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]),
        )
        RUN_INFO.parent.mkdir(exist_ok=True)
        RUN_INFO.touch(mode=0o600)
        RUN_INFO.chmod(0o600)
        RUN_INFO.write_text(
            json.dumps(
                {
                    "sandboxUrl": sandbox.url,
                    "adminToken": sandbox.admin_token,
                    "accountId": sandbox.account_id,
                    # The throwaway sandbox session, so a test can rent "elsewhere" (straight
                    # through the sandbox's API, as another machine would).
                    "sid": sandbox.sid,
                    "tmp": str(tmp),
                    "port": args.port,
                }
            ),
            encoding="utf-8",
        )
        print(f"sandbox {sandbox.url} (pid {sandbox.pid}), temporary folder {tmp}", flush=True)
        lab = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", f"--config={config}"],
            cwd=dirs["root"],
            env=env,
            stdin=subprocess.DEVNULL,
        )
        print(f"JupyterLab pid {lab.pid} on http://127.0.0.1:{args.port}/lab", flush=True)
        while not stopping and lab.poll() is None and sandbox.proc.poll() is None:
            time.sleep(0.2)
        if lab.poll() is not None and not stopping:
            print(f"JupyterLab exited on its own (status {lab.returncode})", file=sys.stderr)
        if sandbox.proc.poll() is not None and not stopping:
            print(f"The sandbox exited on its own; its log:\n{sandbox.log()[-4000:]}", file=sys.stderr)
        return 0 if stopping else 1
    finally:
        if lab is not None and lab.poll() is None:
            lab.send_signal(signal.SIGTERM)  # the server shuts its kernels down on the way out
            try:
                lab.wait(20)
            except subprocess.TimeoutExpired:
                lab.kill()
                lab.wait()
        sandbox.terminate()
        RUN_INFO.unlink(missing_ok=True)
        if keep:
            print(f"kept {tmp}", flush=True)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
