"""Errors of the notebook layer's backends, in the same hierarchy as the client's."""

from __future__ import annotations

from ..api import GpuOutletError, TransportError


class ServerUnreachableError(TransportError):
    """The Jupyter server this kernel was told about does not answer."""


class ServerRefusedError(GpuOutletError):
    """The Jupyter server refused this kernel's credentials (401/403)."""


class ExtensionMissingError(GpuOutletError):
    """The Jupyter server answers, but does not serve the gpuoutlet extension's API."""


class NoServerError(GpuOutletError):
    """``backend = 'server'`` was asked for, and no Jupyter server was found."""


class NotebookError(GpuOutletError):
    """A problem the notebook layer found or rephrased; the message says what to do."""


class NotReadyError(NotebookError):
    """The rental failed, or was stopped, before it became ready."""
