"""`gpuoutlet-sandbox serve`: run the sandbox API and its pods until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import ipaddress
import json
import logging
import math
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .settings import DEFAULT_EMAIL, REQUESTS_PER_HOUR, REQUESTS_PER_MINUTE, SandboxSettings

if TYPE_CHECKING:
    import uvicorn

    from .runtime import Credentials

logger = logging.getLogger("gpuoutlet_jupyter.sandbox")

_PUBLIC_KEY_PREFIXES = ("ssh-", "ecdsa-", "sk-")
_SLOW_SHUTDOWN_SECONDS = 6.0
#: What `pip install 'gpuoutlet-jupyter[sandbox]'` brings (the plain install does not).
_SANDBOX_MODULES = ("fastapi", "uvicorn", "asyncssh")


def missing_extra() -> str | None:
    """The first module of the sandbox extra that is not installed, if any (found without
    importing, so `--help` stays quick)."""
    for name in _SANDBOX_MODULES:
        try:
            if importlib.util.find_spec(name) is None:
                return name
        except (ImportError, ValueError):  # ValueError: blocked with sys.modules[name] = None
            return name
    return None


def default_data_dir(environ: dict[str, str] | None = None) -> Path:
    """`$XDG_DATA_HOME/gpuoutlet-sandbox`, else `~/.local/share/gpuoutlet-sandbox`."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "gpuoutlet-sandbox"


def _provision_range(text: str) -> tuple[float, float]:
    low, sep, high = text.partition("-")
    try:
        bounds = (float(low), float(high if sep else low))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected MIN-MAX seconds, e.g. 20-60, not {text!r}"
        ) from None
    if not all(math.isfinite(b) and b >= 0 for b in bounds) or bounds[0] > bounds[1]:
        raise argparse.ArgumentTypeError(f"expected 0 <= MIN <= MAX, not {text!r}")
    return bounds


def _non_negative(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, not {text!r}")
    return value


def _positive(text: str) -> float:
    value = _non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError("expected a number > 0")
    return value


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("expected an integer >= 1")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, not {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gpuoutlet-sandbox",
        description="A local implementation of the gpuoutlet rentals API, with SSH pods.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the sandbox API until SIGTERM or Ctrl-C")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    serve.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    serve.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where accounts, money and rentals persist (default $XDG_DATA_HOME/gpuoutlet-sandbox)",
    )
    serve.add_argument(
        "--balance-cents",
        type=_count,
        default=100_00,
        help="starting balance of the default account; only on the first start of a data dir",
    )
    serve.add_argument(
        "--email",
        default=DEFAULT_EMAIL,
        help=f"email of the default account ({DEFAULT_EMAIL}); only on the first start",
    )
    serve.add_argument(
        "--signed-out",
        action="store_true",
        help="open no session for the default account: clients sign in with its email (the "
        "code appears in this log and at GET /sandbox/mailbox)",
    )
    serve.add_argument(
        "--new-user-balance-cents",
        type=_count,
        default=0,
        help="balance of each account that signing in creates (0, as on the real service)",
    )
    serve.add_argument(
        "--requests-per-minute",
        type=_count,
        default=REQUESTS_PER_MINUTE,
        help=f"requests per session per minute, as the vendor allows ({REQUESTS_PER_MINUTE}); "
        "0: no limit",
    )
    serve.add_argument(
        "--requests-per-hour",
        type=_count,
        default=REQUESTS_PER_HOUR,
        help=f"requests per session per hour ({REQUESTS_PER_HOUR}); 0: no limit",
    )
    serve.add_argument(
        "--time-scale",
        type=_non_negative,
        default=1.0,
        help="sandbox seconds per real second (3600: an hour per second; 0: frozen, "
        "only POST /sandbox/clock/advance moves it)",
    )
    serve.add_argument(
        "--provision-seconds",
        type=_provision_range,
        default=(20.0, 60.0),
        metavar="MIN-MAX",
        help="sandbox seconds a pod takes to boot, uniformly in MIN-MAX (20-60)",
    )
    serve.add_argument(
        "--worker-interval",
        type=_positive,
        default=2.0,
        metavar="S",
        help="sandbox seconds between polls of the provider (boots, finished stops); metering "
        "runs every second, or this often when it is shorter (2)",
    )
    serve.add_argument(
        "--authorized-key",
        type=Path,
        default=None,
        metavar="PATH",
        help="public key (or private key with a .pub next to it) registered as the default "
        "account's SSH key; default: your SSH key, as the gpuoutlet client picks it",
    )
    serve.add_argument(
        "--capacity-factor",
        type=_at_least_one,
        default=1,
        help="multiply every listing's stock of machines (benchmarks)",
    )
    serve.add_argument("--seed", type=int, default=None, help="seed the provider's randomness")
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    serve.add_argument(
        "--print-json",
        action="store_true",
        help="print one JSON line (url, sid, adminToken, accountId, email, dataDir, pid) once "
        "listening",
    )
    return parser


def _read_authorized_key(path: Path) -> str:
    """The key lines of a public key or authorized_keys file; for a private key, its public key."""
    text = path.read_text(encoding="utf-8")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    keys = [line for line in lines if line.startswith(_PUBLIC_KEY_PREFIXES)]
    if keys:
        return "\n".join(keys) + "\n"
    from ..ssh import public_key_for

    return public_key_for(path) + "\n"


def _client_key() -> str | None:
    """The public key the gpuoutlet client will log in with (generated if the user has none)."""
    from ..ssh import public_key_for, resolve_identity

    try:
        return public_key_for(resolve_identity(Path.home() / ".ssh")) + "\n"
    except Exception as exc:
        logger.warning(
            "no SSH key for the default account (%s); pods will refuse logins until "
            "--authorized-key is given",
            exc,
        )
        return None


def settings_from_args(args: argparse.Namespace) -> SandboxSettings:
    data_dir: Path = (args.data_dir or default_data_dir()).expanduser().resolve()
    if args.authorized_key is not None:
        try:
            keys: str | None = _read_authorized_key(args.authorized_key.expanduser())
        except Exception as exc:
            raise ValueError(f"--authorized-key {args.authorized_key}: {exc}") from exc
    elif not (data_dir / "sandbox.sqlite3").exists():
        keys = _client_key()
    else:
        keys = None  # the default account keeps the key it was created with
    return SandboxSettings(
        data_dir=data_dir,
        host=args.host,
        port=args.port,
        balance_cents=args.balance_cents,
        new_user_balance_cents=args.new_user_balance_cents,
        default_email=args.email,
        signed_out=args.signed_out,
        time_scale=args.time_scale,
        provision_seconds=args.provision_seconds,
        worker_interval=args.worker_interval,
        authorized_keys=keys,
        capacity_factor=args.capacity_factor,
        requests_per_minute=args.requests_per_minute,
        requests_per_hour=args.requests_per_hour,
        access_log=args.access_log,
        seed=args.seed,
    )


def _bind(host: str, port: int) -> socket.socket:
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        family = socket.AF_INET
    # proto=IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are
    # TCP, and without it every keep-alive response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.set_inheritable(False)
    return sock


def _url(host: str, port: int) -> str:
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _server(config: uvicorn.Config) -> tuple[uvicorn.Server, asyncio.Event]:
    """uvicorn without its signal capture (it re-raises SIGTERM after shutdown, which would
    end the process by the signal instead of our clean exit), and an event set once listening."""
    import uvicorn

    listening = asyncio.Event()

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                listening.set()

    return Server(config), listening


def _dropper(server: uvicorn.Server) -> Callable[[tuple[str, int]], bool]:
    """Close a client's connection with no answer at all (the dropCreateAnswerCount fault):
    uvicorn keeps its connections' protocols, each with its transport and client address."""

    def drop(client: tuple[str, int]) -> bool:
        for protocol in list(server.server_state.connections):
            if tuple(getattr(protocol, "client", None) or ()) == tuple(client):
                protocol.transport.abort()
                return True
        return False

    return drop


def _log_pending_tasks() -> None:
    """A shutdown that takes this long is a bug: say where every task is waiting."""
    for task in asyncio.all_tasks():
        frames = task.get_stack(limit=8)
        where = " <- ".join(f"{f.f_code.co_name}:{f.f_lineno}" for f in reversed(frames))
        logger.warning("still shutting down; task %s waits in %s", task.get_name(), where)


def _announce(url: str, settings: SandboxSettings, credentials: Credentials, as_json: bool) -> None:
    if as_json:
        line = {
            "url": url,
            "sid": credentials.sid,
            "adminToken": credentials.admin_token,
            "accountId": credentials.account_id,
            "email": credentials.email,
            "dataDir": str(settings.data_dir),
            "pid": os.getpid(),
        }
        print(json.dumps(line), flush=True)
        return
    if credentials.sid is None:
        how = (
            f"Sign in as {credentials.email}: the sandbox sends no mail, so the code appears in\n"
            f"this log and at {url}/sandbox/mailbox. Point Jupyter at it:\n"
            f"  GPUOUTLET_API_URL={url} jupyter lab\n"
        )
    else:
        how = (
            "Point Jupyter at it (or sign in: the code appears in this log and at\n"
            f"{url}/sandbox/mailbox):\n"
            f"  GPUOUTLET_API_URL={url} GPUOUTLET_SID={credentials.sid} jupyter lab\n"
        )
    print(
        f"gpuoutlet sandbox listening on {url}\n"
        f"  data dir: {settings.data_dir} (accounts, money and rentals persist here)\n"
        f"  account:  {credentials.account_id} ({credentials.email})\n"
        "\n" + how + "\n"
        f"Test controls under {url}/sandbox/ take the header\n"
        f"  Authorization: Bearer {credentials.admin_token}\n"
        f"API document: {url}/openapi.json. Stop with Ctrl-C.",
        flush=True,
    )


async def serve(settings: SandboxSettings, *, print_json: bool) -> None:
    # Imported here so `--help` and argument errors answer at once.
    import uvicorn

    from .app import create_app
    from .errors import ApiError
    from .runtime import Sandbox

    sock = _bind(settings.host, settings.port)
    try:
        sandbox = await Sandbox.open(settings)
    except ApiError as exc:
        sock.close()
        raise ValueError(f"--authorized-key: {exc.message}") from None
    try:
        config = uvicorn.Config(
            create_app(sandbox),
            lifespan="on",
            log_config=None,
            access_log=settings.access_log,
            server_header=False,
            timeout_graceful_shutdown=3,
        )
        server, listening = _server(config)
        sandbox.drop_connection = _dropper(server)
        loop = asyncio.get_running_loop()

        def request_exit() -> None:
            if server.should_exit:
                server.force_exit = True
            else:
                loop.call_later(_SLOW_SHUTDOWN_SECONDS, _log_pending_tasks)
            server.should_exit = True

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, request_exit)
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        ready = asyncio.create_task(listening.wait())
        await asyncio.wait({serving, ready}, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if server.started:
            port = sock.getsockname()[1]
            _announce(_url(settings.host, port), settings, sandbox.credentials, print_json)
            logger.info(
                "listening on %s (data dir %s)", _url(settings.host, port), settings.data_dir
            )
        await serving
    finally:
        await sandbox.close()
        sock.close()


def main(argv: Sequence[str] | None = None) -> int:
    missing = missing_extra()
    if missing is not None:
        print(
            f"gpuoutlet-sandbox needs the sandbox extra ({missing} is not installed): "
            "pip install 'gpuoutlet-jupyter[sandbox]'",
            file=sys.stderr,
        )
        return 1
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # asyncssh logs every connection at INFO; keep the sandbox's own story readable.
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    try:
        settings = settings_from_args(args)
    except (OSError, ValueError) as exc:
        print(f"gpuoutlet-sandbox: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(settings, print_json=args.print_json))
    except ValueError as exc:
        print(f"gpuoutlet-sandbox: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"gpuoutlet-sandbox: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
