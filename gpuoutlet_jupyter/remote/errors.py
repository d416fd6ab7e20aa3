"""Errors of the remote layer: one hierarchy under :class:`RemoteError`, messages that say what to do."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .connection import CommandResult
    from .sync import SyncResult

_MAX_STDERR = 600


def stderr_tail(data: bytes | str, limit: int = _MAX_STDERR) -> str:
    """The end of a command's stderr, decoded and bounded, for an error message."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = text.strip()
    if len(text) > limit:
        text = "..." + text[-limit:]
    return text


class RemoteError(Exception):
    """Base class: something between this machine and a rental's pod went wrong."""


class ControlPathError(RemoteError, ValueError):
    """The folder for the shared connection's control socket is unusable (too long, not ours)."""


class RemoteConnectionError(RemoteError):
    """The shared SSH connection of a rental could not be used."""


class ConnectFailed(RemoteConnectionError):
    """ssh could not open the shared connection (refused, unreachable, key rejected, ...)."""

    def __init__(self, message: str, *, alias: str, stderr: str = "") -> None:
        self.alias = alias
        self.stderr = stderr
        super().__init__(message)


class ConnectionLost(RemoteConnectionError):
    """The shared connection died while a command was using it (network, pod stopped)."""


class ConnectionClosed(RemoteConnectionError):
    """The shared connection was closed for good: the rental has stopped."""


class CommandTimeout(RemoteError, TimeoutError):
    """A remote command did not finish in time; it was ended."""

    def __init__(self, command: str, timeout: float, stdout: bytes, stderr: bytes) -> None:
        self.command = command
        self.timeout = timeout
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(
            f"the command {command!r} did not finish within {timeout:g} s on the pod and was "
            "stopped; give it a longer timeout if it is expected to take that long"
        )


class CommandFailed(RemoteError):
    """A remote command exited with a non-zero status where success was required."""

    def __init__(self, result: CommandResult, what: str | None = None) -> None:
        self.result = result
        detail = stderr_tail(result.stderr) or stderr_tail(result.stdout) or "no output"
        super().__init__(
            f"{what or repr(result.command)} failed on the pod with exit status "
            f"{result.exit_status}: {detail}"
        )


class SyncError(RemoteError):
    """A sync between a local folder and a pod's folder could not be done (or finished)."""

    #: What was done before the failure, when anything was (files already complete are kept).
    result: SyncResult | None = None


class LocalFolderError(SyncError):
    """The local folder is missing, not a folder, or cannot be written."""


class RemoteFolderError(SyncError):
    """The pod's folder is missing (for a download) or cannot be created."""


class RemoteToolMissing(SyncError):
    """A tool the sync needs is not on the pod (``tar``, GNU ``find``)."""

    def __init__(self, tool: str, message: str) -> None:
        self.tool = tool
        super().__init__(message)


class TransferFailed(SyncError):
    """rsync or the tar stream failed part-way; ``result`` says what did arrive."""

    def __init__(self, message: str, result: SyncResult | None = None) -> None:
        self.result = result
        super().__init__(message)


class TelemetryError(RemoteError):
    """GPU telemetry could not be read from the pod."""


class NoNvidiaSmi(TelemetryError):
    """The pod has no ``nvidia-smi`` (exit status 127): no GPU telemetry from this pod."""


class TelemetryParseError(TelemetryError, ValueError):
    """``nvidia-smi`` printed something that is not its CSV format."""


class ForwardError(RemoteError):
    """A port forward could not be opened or cancelled."""


class PortsError(RemoteError):
    """The pod's listening ports could not be read."""
