"""Reaching a rental's pod besides its kernels: one shared SSH connection, sync, telemetry, ports.

::

    manager = RemoteManager()                          # one per host process
    remote = await manager.rental(SSHTarget.from_entry(entry))
    result = await remote.sync_down("~/gpuoutlet-saves/exp-42", "~/work", max_bytes=20e9)
    with remote.telemetry.subscribe(on_event): ...     # samples every 5 s while subscribed
    forward = await remote.forwards.open(7860)         # http://127.0.0.1:<port>/
    await manager.close_rental(rental_id)              # the rental stopped: all of it ends

Imports only the stdlib and :mod:`gpuoutlet_jupyter.ssh` (no tornado, no jupyter_server).
"""

from .connection import (
    CommandResult,
    Hold,
    RemoteProcess,
    SharedConnection,
    SSHTarget,
)
from .controlpath import MAX_CONTROL_DIR, check_control_dir_length, default_control_dir
from .errors import (
    CommandFailed,
    CommandTimeout,
    ConnectFailed,
    ConnectionClosed,
    ConnectionLost,
    ControlPathError,
    ForwardError,
    LocalFolderError,
    NoNvidiaSmi,
    PortsError,
    RemoteConnectionError,
    RemoteError,
    RemoteFolderError,
    RemoteToolMissing,
    SyncError,
    TelemetryError,
    TelemetryParseError,
    TransferFailed,
)
from .forward import PortForward, PortForwarder, free_local_port
from .ignore import DEFAULT_EXCLUDES, IGNORE_FILE, IgnoreRules
from .listing import FileEntry
from .manager import RemoteManager, RentalRemote
from .plan import Skipped
from .ports import TEMPLATE_PORTS, KnownPort, ListeningPort, known_ports, listening_ports
from .progress import SyncProgress
from .sync import DEFAULT_REMOTE_DIR, SyncResult, sync_down, sync_up
from .telemetry import (
    GPUSample,
    Subscription,
    TelemetryEvent,
    TelemetryHistory,
    TelemetryMonitor,
    TelemetrySnapshot,
    TelemetryWatch,
    parse_csv,
    sample,
)

__all__ = [
    "DEFAULT_EXCLUDES",
    "DEFAULT_REMOTE_DIR",
    "IGNORE_FILE",
    "MAX_CONTROL_DIR",
    "TEMPLATE_PORTS",
    "CommandFailed",
    "CommandResult",
    "CommandTimeout",
    "ConnectFailed",
    "ConnectionClosed",
    "ConnectionLost",
    "ControlPathError",
    "FileEntry",
    "ForwardError",
    "GPUSample",
    "Hold",
    "IgnoreRules",
    "KnownPort",
    "ListeningPort",
    "LocalFolderError",
    "NoNvidiaSmi",
    "PortForward",
    "PortForwarder",
    "PortsError",
    "RemoteConnectionError",
    "RemoteError",
    "RemoteFolderError",
    "RemoteManager",
    "RemoteProcess",
    "RemoteToolMissing",
    "RentalRemote",
    "SSHTarget",
    "SharedConnection",
    "Skipped",
    "Subscription",
    "SyncError",
    "SyncProgress",
    "SyncResult",
    "TelemetryError",
    "TelemetryEvent",
    "TelemetryHistory",
    "TelemetryMonitor",
    "TelemetryParseError",
    "TelemetrySnapshot",
    "TelemetryWatch",
    "TransferFailed",
    "check_control_dir_length",
    "default_control_dir",
    "free_local_port",
    "known_ports",
    "listening_ports",
    "parse_csv",
    "sample",
    "sync_down",
    "sync_up",
]
