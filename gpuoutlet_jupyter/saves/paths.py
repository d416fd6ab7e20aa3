"""The pod's folders a rental saves, checked; and where on this machine each one is saved to."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from ..api import RequestValidationError

#: The most save paths one rental may have.
MAX_SAVE_PATHS = 16
#: In a rental's save folder: the id of the rental it belongs to.
MARKER_FILE = ".gpuoutlet-rental"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def check_save_paths(paths: Iterable[object], *, field: str = "savePaths") -> tuple[str, ...]:
    """The pod's folders to save, each checked and written the one way (``~/x``, ``/x``).

    A relative path is the rental user's home's (``outputs`` is ``~/outputs``); ``~user`` is
    refused (another user's home); duplicates are dropped. Raises RequestValidationError.
    """
    found: list[str] = []
    problems: list[tuple[str, str]] = []
    for value in paths:
        if not isinstance(value, str) or not value.strip():
            problems.append((field, f"each path must be a folder on the pod, not {value!r}"))
            continue
        text = value.strip()
        if any(c in text for c in "\0\n\r") or len(text) > 1024:
            problems.append((field, f"{text[:40]!r} holds a newline or NUL, or is too long"))
            continue
        if text.startswith("~") and text != "~" and not text.startswith("~/"):
            problems.append(
                (field, f"{text!r} names another user's home: use ~/path or an absolute path")
            )
            continue
        if not text.startswith(("~", "/")):
            text = "~/" + text
        if len(text) > 1 and text.endswith("/"):
            text = text.rstrip("/") or "/"
        if text not in found:
            found.append(text)
    if len(found) > MAX_SAVE_PATHS:
        problems.append((field, f"at most {MAX_SAVE_PATHS} folders (got {len(found)})"))
    if problems:
        raise RequestValidationError(problems)
    return tuple(found)


def folder_labels(paths: Iterable[str]) -> dict[str, str]:
    """The subfolder of a rental's save folder that each save path goes to: its last name
    (``~/work`` → ``work``), or its whole path when two end alike (``data-out``)."""
    paths = list(paths)

    def last(path: str) -> str:
        name = path.rstrip("/").rsplit("/", 1)[-1]
        return {"~": "home", "": "root"}.get(name, name)

    labels = {path: _slug(last(path)) for path in paths}
    clashing = {label for label in labels.values() if list(labels.values()).count(label) > 1}
    for path in paths:
        if labels[path] in clashing:
            labels[path] = _slug(path.replace("~", "home").strip("/").replace("/", "-")) or "root"
    return labels


def _slug(text: str) -> str:
    return _UNSAFE.sub("-", text).strip("-.") or "folder"


def save_folder(saves_dir: Path, rental_id: str, name: str | None) -> Path:
    """``<saves_dir>/<rental name or id>``, made if missing and marked with the rental's id.

    A folder of that name that belongs to another rental (two rentals of one name) is left to
    it: this one saves to ``<name>-<id>`` instead.
    """
    base = _slug(name.strip()) if name and name.strip() else rental_id
    for candidate in (base, f"{base}-{rental_id}"):
        folder = saves_dir / candidate
        marker = folder / MARKER_FILE
        try:
            owner = marker.read_text("utf-8").strip()
        except FileNotFoundError:
            owner = None
        if owner not in (None, rental_id):
            continue
        if owner is None and folder.exists() and any(folder.iterdir()):
            continue  # someone's own folder of that name: not ours to fill
        folder.mkdir(parents=True, exist_ok=True)
        if owner is None:
            marker.write_text(rental_id + "\n", "utf-8")
        return folder
    folder = saves_dir / f"{base}-{rental_id}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def shown_path(path: Path) -> str:
    """A local path as a person writes it (``~/gpuoutlet-saves/x`` under the home)."""
    home = os.path.expanduser("~")
    text = os.fspath(path)
    return "~" + text[len(home) :] if text == home or text.startswith(home + os.sep) else text
