"""The name every create carries: the user's, or ``<user>/<notebook or "jupyter">-<4 characters>``.

gpuoutlet has no idempotency key; a create whose answer is lost is found again by its name
(pending.py), so every create has one. The vendor's teams guide asks for a person's prefix
(``alice/exp-42``): one login is shared by a team, so the prefix says whose rental it is.
"""

from __future__ import annotations

import getpass
import re
import secrets
from pathlib import PurePosixPath, PureWindowsPath

from ..api.models import MAX_NAME_LENGTH

_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no 0/o, 1/l: read aloud or typed back
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: Characters of the random tail.
SUFFIX = 4


def local_user() -> str:
    """Who runs this process, for the name's prefix (``user`` when it cannot be told)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "user"


def _slug(text: str, limit: int) -> str:
    return _UNSAFE.sub("-", text).strip("-._")[:limit].strip("-._")


def notebook_stem(notebook: str | None) -> str | None:
    """``analysis/Fine tune.ipynb`` → ``Fine tune`` (None: none given)."""
    if not notebook or not notebook.strip():
        return None
    path = notebook.strip()
    name = (PureWindowsPath(path) if "\\" in path else PurePosixPath(path)).name
    return name[: -len(".ipynb")] if name.endswith(".ipynb") else name or None


def auto_name(user: str, notebook: str | None = None, *, suffix: str | None = None) -> str:
    """``alice/fine-tune-x7k2``: the user, the notebook's name (or ``jupyter``), 4 random
    characters; at most the API's 64 characters."""
    tail = suffix or "".join(secrets.choice(_ALPHABET) for _ in range(SUFFIX))
    who = _slug(user, 24) or "user"
    room = MAX_NAME_LENGTH - len(who) - len(tail) - 2
    what = _slug(notebook_stem(notebook) or "", room) or "jupyter"
    return f"{who}/{what}-{tail}"
