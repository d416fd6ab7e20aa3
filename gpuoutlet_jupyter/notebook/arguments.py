"""The magics' arguments: IPython's ``magic_arguments``, typed, and ``-h``/``--help`` as in a CLI."""

from __future__ import annotations

import argparse
import copy
import shlex
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from IPython.core import magic as _magic
from IPython.core import magic_arguments as _ma

F = TypeVar("F", bound=Callable[..., Any])


# IPython's magic_arguments has no type hints: typed wrappers keep the magics checked.
def magic_arguments() -> Callable[[F], F]:
    """``IPython.core.magic_arguments.magic_arguments``, typed."""
    return cast("Callable[[F], F]", _ma.magic_arguments())  # type: ignore[no-untyped-call]


def argument(*args: Any, **kwargs: Any) -> Callable[[F], F]:
    """``IPython.core.magic_arguments.argument``, typed."""
    return cast("Callable[[F], F]", _ma.argument(*args, **kwargs))  # type: ignore[no-untyped-call]


def line_magic(func: F) -> F:
    """``IPython.core.magic.line_magic`` used bare, typed (IPython types it as a decorator factory)."""
    return cast("F", _magic.line_magic(func))


def split_line(line: str) -> list[str]:
    """The words of a magic's line as a POSIX shell splits them: ``--name "my exp 1"`` gives
    ``my exp 1``, quotes and all taken off, as ``'it'"'"'s'`` gives ``it's``.

    IPython's own ``arg_split`` (what ``magic_arguments`` uses) keeps the quotes in the word;
    ``shlex`` does what every CLI user expects. Raises ValueError on an unbalanced quote.
    """
    return shlex.split(line, comments=False, posix=True)


def parse_argstring(magic: Callable[..., Any], line: str) -> Any:
    """The magic's arguments from its line, split as a shell does (``split_line``)."""
    return magic.parser.parse_args(split_line(line))  # type: ignore[attr-defined]


class HelpRequested(Exception):
    """``-h``/``--help`` was given: ``text`` is the help to show, and nothing else is done."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class _CLIHelpFormatter(_ma.MagicHelpFormatter):
    """IPython's formatter (dedented descriptions), with a CLI's ``usage:`` line instead of the
    reST code block the magic's docstring starts with."""

    def add_usage(
        self, usage: Any, actions: Any, groups: Any, prefix: str | None = "usage: %"
    ) -> None:
        argparse.HelpFormatter.add_usage(self, usage, actions, groups, prefix)


class _ShowHelp(argparse.Action):
    """``-h``/``--help`` as in every CLI: the usage and every option. argparse's own help
    action would print and then exit the process (SystemExit); this one hands the text back."""

    def __init__(
        self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any
    ) -> None:
        kwargs.update(nargs=0, default=argparse.SUPPRESS)
        super().__init__(option_strings, dest, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        shown = copy.copy(parser)
        shown.formatter_class = _CLIHelpFormatter
        raise HelpRequested(shown.format_help())


def help_option() -> Callable[[F], F]:
    """The ``-h``/``--help`` option every magic has."""
    return argument("-h", "--help", action=_ShowHelp, help="Show this help; nothing else is done.")
