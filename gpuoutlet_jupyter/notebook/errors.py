"""Errors of the notebook layer, in the same hierarchy as the client's, and how a refusal is worded."""

from __future__ import annotations

from ..api import GpuOutletError, TransportError
from ..api.errors import clause


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


def explain_problems(problems: list[tuple[str, str]], names: dict[str, str]) -> str:
    """Validation problems with the names the user typed or clicked (``--gpus`` or ``GPUs``,
    not ``gpuCount``): the magics' and the panel's wording of one refusal."""
    parts = []
    for field, problem in problems:
        name = names.get(field, field)
        if field == "name" and "at most" in problem:
            problem = "is longer than the 64 characters allowed; shorten it (e.g. alice/exp-42)"
        else:
            # pydantic's "Input should be greater than 0" reads as "--auto-stop should be ...".
            for prefix in ("Input ", "String ", "Value "):
                problem = problem.removeprefix(prefix)
        parts.append(f"{name} {clause(problem)}")
    return "; ".join(parts)
