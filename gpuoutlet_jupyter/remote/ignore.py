"""``.gpuoutletignore``: which files a sync leaves out, in gitignore syntax.

The rules are git's (``gitignore(5)``): ``#`` comments, ``!`` re-includes, a trailing ``/``
matches folders only, a ``/`` at the start or in the middle anchors the pattern to the folder of
the file that holds it (else it matches at any depth), ``*`` and ``?`` never match ``/``, ``**``
matches across folders (``**/x``, ``x/**``, ``a/**/b``), ``[...]`` classes, ``\\`` escapes, and
the last matching rule wins. As in git, a file inside an excluded folder cannot be re-included
(the walk never enters that folder), and an ignore file in a subfolder adds rules for that
subfolder, ranking above its parents'.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

IGNORE_FILE = ".gpuoutletignore"
#: Left out unless a rule re-includes them (``!.git``).
DEFAULT_EXCLUDES: tuple[str, ...] = (
    ".git",
    "__pycache__",
    ".venv",
    "node_modules",
    ".ipynb_checkpoints",
)
#: What our own transfers leave behind while they run (rsync's partial folder, tar's temp
#: files): never a user's file, never synced, whatever the rules say.
PARTIAL_DIR = ".gpuoutlet-partial"
TEMP_MARK = ".gpuoutlet-part"


def is_internal(name: str) -> bool:
    """Whether a file name is one of our in-flight transfer artefacts."""
    return name == PARTIAL_DIR or (name.startswith(".") and name.endswith(TEMP_MARK))


@dataclass(frozen=True)
class IgnoreRule:
    """One parsed line of an ignore file."""

    pattern: str  #: the line as written (for messages)
    base: str  #: the folder (relative, ``""`` for the top) whose ignore file holds it
    negate: bool
    dir_only: bool
    regex: re.Pattern[str]

    def matches(self, path: str, is_dir: bool) -> bool:
        """Whether this rule matches ``path`` (relative to the synced folder, ``/``-separated)."""
        if self.dir_only and not is_dir:
            return False
        if self.base:
            prefix = self.base + "/"
            if not path.startswith(prefix):
                return False
            path = path[len(prefix) :]
        return self.regex.fullmatch(path) is not None


def _translate_class(pattern: str, i: int) -> tuple[str, int] | None:
    """``[...]`` starting at ``pattern[i]`` as a regex class and the index after it."""
    j = i + 1
    negate = False
    if j < len(pattern) and pattern[j] in "!^":
        negate = True
        j += 1
    body: list[str] = []
    first = True
    while j < len(pattern):
        char = pattern[j]
        if char == "]" and not first:
            inner = "".join(body)
            return ("[^/" if negate else "[") + inner + "]", j + 1
        if char == "\\" and j + 1 < len(pattern):
            body.append(re.escape(pattern[j + 1]))
            j += 2
        else:
            # "-" keeps its range meaning; everything else is literal inside the class.
            body.append(char if char == "-" else re.escape(char))
            j += 1
        first = False
    return None  # no closing "]": git reads the "[" literally


def _translate(glob: str) -> str:
    """A gitignore glob (no leading ``/``, no trailing ``/``) as a regex matching a whole path."""
    out: list[str] = []
    i, n = 0, len(glob)
    while i < n:
        char = glob[i]
        if char == "*":
            j = i
            while j < n and glob[j] == "*":
                j += 1
            stars = j - i
            at_start = i == 0 or glob[i - 1] == "/"
            at_end = j == n or glob[j] == "/"
            if stars >= 2 and at_start and at_end:
                if j == n:  # "x/**" (or a lone "**"): everything inside
                    out.append(".*")
                    i = j
                else:  # "**/x" or "a/**/b": zero or more folders
                    out.append("(?:.*/)?")
                    i = j + 1
                continue
            out.append("[^/]*")  # other runs of stars are one star
            i = j
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[":
            translated = _translate_class(glob, i)
            if translated is None:
                out.append(re.escape(char))
                i += 1
            else:
                out.append(translated[0])
                i = translated[1]
        elif char == "\\" and i + 1 < n:
            out.append(re.escape(glob[i + 1]))
            i += 2
        else:
            out.append(re.escape(char))
            i += 1
    return "".join(out)


def _strip_trailing_spaces(line: str) -> str:
    """Trailing spaces go unless backslash-escaped (``foo\\ `` keeps one)."""
    end = len(line)
    while end > 0 and line[end - 1] == " ":
        backslashes = 0
        k = end - 2
        while k >= 0 and line[k] == "\\":
            backslashes += 1
            k -= 1
        if backslashes % 2 == 1:
            break
        end -= 1
    return line[:end]


def parse_rule(line: str, base: str = "") -> IgnoreRule | None:
    """One ignore-file line as a rule; ``None`` for blanks and comments."""
    text = _strip_trailing_spaces(line.rstrip("\r\n"))
    if not text or text.startswith("#"):
        return None
    negate = False
    if text.startswith("!"):
        negate = True
        text = text[1:]
    elif text.startswith(("\\!", "\\#")):
        text = text[1:]
    dir_only = text.endswith("/") and not text.endswith("\\/")
    if dir_only:
        text = text.rstrip("/")
    if not text:
        return None
    anchored = "/" in text
    text = text.lstrip("/")
    if not text:
        return None
    regex = _translate(text)
    if not anchored:
        regex = "(?:.*/)?" + regex
    return IgnoreRule(line.strip(), base, negate, dir_only, re.compile(regex, re.DOTALL))


@dataclass(frozen=True)
class IgnoreRules:
    """An ordered set of rules; the last one that matches a path decides."""

    rules: tuple[IgnoreRule, ...] = ()

    @classmethod
    def defaults(cls, extra: Iterable[str] = (), *, use_defaults: bool = True) -> IgnoreRules:
        """:data:`DEFAULT_EXCLUDES` (unless ``use_defaults`` is false), then ``extra`` patterns."""
        lines = [*(DEFAULT_EXCLUDES if use_defaults else ()), *extra]
        return cls().with_lines(lines)

    def with_lines(self, lines: Iterable[str], base: str = "") -> IgnoreRules:
        """These rules plus ``lines`` (gitignore syntax) from an ignore file in folder ``base``."""
        added = [rule for line in lines if (rule := parse_rule(line, base)) is not None]
        return IgnoreRules((*self.rules, *added)) if added else self

    def with_file(self, text: str, base: str = "") -> IgnoreRules:
        """These rules plus the text of an ignore file found in folder ``base``."""
        return self.with_lines(text.splitlines(), base)

    def then(self, other: IgnoreRules) -> IgnoreRules:
        """These rules followed by (ranked below) ``other``'s."""
        return IgnoreRules((*self.rules, *other.rules))

    @property
    def has_negation(self) -> bool:
        return any(rule.negate for rule in self.rules)

    def ignored(self, path: str, is_dir: bool) -> bool:
        """Whether ``path`` (relative, ``/``-separated, no leading ``./``) is left out."""
        for rule in reversed(self.rules):
            if rule.matches(path, is_dir):
                return not rule.negate
        return False


def plain_names(patterns: Sequence[str]) -> tuple[str, ...]:
    """The patterns that are plain folder-or-file names (no glob, no slash, no negation)."""
    names = []
    for pattern in patterns:
        text = pattern.strip().rstrip("/")
        if text and not any(c in text for c in "*?[]\\/!#"):
            names.append(text)
    return tuple(names)
