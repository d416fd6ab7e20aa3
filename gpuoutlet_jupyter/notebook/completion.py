"""Tab completion for the magics' fixed choices: ``--template`` ids, ``--gpus`` counts, ``%gpu_keys``.

A Matcher API v2 matcher registered on the shell's completer at ``%load_ext``; it answers only
inside a ``%gpu_*`` line and needs no request (the choices are the vendor's documented ones).
"""

from __future__ import annotations

import re
import shlex
from typing import Any

SUBCOMMANDS: dict[str, tuple[str, ...]] = {"%gpu_keys": ("list", "add")}


def _words(text: str) -> list[str]:
    try:
        words = shlex.split(text)
    except ValueError:
        words = text.split()
    if text.endswith(" "):
        words.append("")
    return words


def choices() -> dict[str, tuple[str, ...]]:
    """What follows each option (imported at the first Tab, not at %load_ext)."""
    from ..api.models import GPU_COUNTS
    from ..api.templates import TEMPLATE_IDS

    return {"--template": TEMPLATE_IDS, "--gpus": tuple(map(str, GPU_COUNTS))}


def candidates(text_until_cursor: str) -> list[str] | None:
    """What may come at the cursor of a ``%gpu_*`` line; None when this matcher has no say."""
    line = text_until_cursor.lstrip()
    if not line.startswith(("%gpu_", "gpu_")):
        return None
    # `--template=py` completes like `--template py`.
    words = _words(re.sub(r"(--[a-z-]+)=", r"\1 ", line))
    if len(words) < 2:
        return None
    magic = words[0] if words[0].startswith("%") else f"%{words[0]}"
    current, previous = words[-1], words[-2]
    options = choices()
    if previous in options:
        return [c for c in options[previous] if c.startswith(current)]
    if len(words) == 2 and magic in SUBCOMMANDS:
        return [c for c in SUBCOMMANDS[magic] if c.startswith(current)]
    return None


def gpu_matcher(context: Any) -> dict[str, Any]:
    """The IPython matcher (API v2): the choices, and nothing else when there are some."""
    from IPython.core.completer import SimpleCompletion

    found = candidates(context.text_until_cursor)
    completions = [SimpleCompletion(text, type="param") for text in found or []]
    return {"completions": completions, "suppress": bool(completions)}


gpu_matcher.matcher_api_version = 2  # type: ignore[attr-defined]
gpu_matcher.matcher_identifier = "gpuoutlet_jupyter.gpu_matcher"  # type: ignore[attr-defined]


def register(shell: Any) -> None:
    """Add the matcher to the shell's completer (once)."""
    completer = getattr(shell, "Completer", None)
    if completer is not None and gpu_matcher not in completer.custom_matchers:
        completer.custom_matchers.append(gpu_matcher)


def unregister(shell: Any) -> None:
    completer = getattr(shell, "Completer", None)
    if completer is not None and gpu_matcher in completer.custom_matchers:
        completer.custom_matchers.remove(gpu_matcher)
