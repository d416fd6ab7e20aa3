"""Validation of every value that ends up in an ssh_config file.

Host and port come from the network (the rentals API), so they are typed ``object`` and checked
strictly: anything that is not exactly what is allowed is rejected, never repaired.
"""

from __future__ import annotations

import ipaddress
import os
import re
import unicodedata
from pathlib import Path

from .errors import InvalidSSHValue

ALIAS_PREFIX = "gpuoutlet-"
MAX_RENTAL_ID_LENGTH = 96
MAX_ALIAS_LENGTH = 128
MAX_HOSTNAME_LENGTH = 253
MAX_USER_LENGTH = 32
MAX_SERVER_ALIVE_INTERVAL = 86_400

_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*", re.ASCII)
_LABEL_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?", re.ASCII)
_USER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*", re.ASCII)
# Characters that never need quoting in a path written into ssh_config.
_PLAIN_PATH_RE = re.compile(r"[A-Za-z0-9/._+,:@-]+", re.ASCII)
# inet_aton() (used by getaddrinfo) reads "127.1", "0x7f.1" or "017" as IPv4 addresses.
_NUMERIC_LABEL_RE = re.compile(r"[0-9]+|0[xX][0-9A-Fa-f]*", re.ASCII)

_ID_ALLOWED = (
    "a letter or digit followed by letters, digits, '.', '_' or '-' (ASCII only), "
    "at most {n} characters"
)


def _check_id(field: str, value: object, max_length: int) -> str:
    allowed = _ID_ALLOWED.format(n=max_length)
    if type(value) is not str:
        raise InvalidSSHValue(field, value, f"a string: {allowed}")
    if len(value) > max_length or _ID_RE.fullmatch(value) is None:
        raise InvalidSSHValue(field, value, allowed)
    return value


def validate_rental_id(value: object) -> str:
    """Return ``value`` if it is a safe rental id (it becomes part of the alias and file names)."""
    return _check_id("rental_id", value, MAX_RENTAL_ID_LENGTH)


def validate_alias(value: str) -> str:
    """Return ``value`` if it is a safe ``Host`` alias (``[A-Za-z0-9][A-Za-z0-9._-]*``)."""
    return _check_id("alias", value, MAX_ALIAS_LENGTH)


def alias_for(rental_id: str) -> str:
    """The SSH alias of a rental: ``gpuoutlet-<rental id>``."""
    return validate_alias(ALIAS_PREFIX + validate_rental_id(rental_id))


def validate_host(value: object) -> str:
    """Return a safe ``HostName``: an IP literal or a strict DNS name.

    IP literals are returned in their canonical form. IPv6 zone ids (``fe80::1%eth0``), the
    unspecified and multicast addresses are rejected. DNS names must be ASCII LDH labels
    (1-63 chars, no leading or trailing ``-``), at most 253 chars, without a trailing dot and
    without a numeric last label (``127.1`` is an address to the resolver, not a name).
    """
    allowed = (
        "an IPv4/IPv6 address or a DNS name made of ASCII letters, digits and '-' "
        f"in dot-separated labels of 1-63 characters, at most {MAX_HOSTNAME_LENGTH} characters"
    )
    if type(value) is not str:
        raise InvalidSSHValue("host", value, f"a string: {allowed}")
    if not value or len(value) > MAX_HOSTNAME_LENGTH or not value.isascii():
        raise InvalidSSHValue("host", value, allowed)
    if ":" in value or value.replace(".", "").isdigit():
        # Looks like an IP literal: it must be one, exactly.
        if "%" in value:
            raise InvalidSSHValue("host", value, f"{allowed} (no IPv6 zone id)")
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            raise InvalidSSHValue("host", value, allowed) from None
        if address.is_unspecified or address.is_multicast:
            raise InvalidSSHValue("host", value, f"{allowed} (not unspecified or multicast)")
        return str(address)
    labels = value.split(".")
    if not all(_LABEL_RE.fullmatch(label) for label in labels):
        raise InvalidSSHValue("host", value, allowed)
    if _NUMERIC_LABEL_RE.fullmatch(labels[-1]):
        raise InvalidSSHValue("host", value, f"{allowed} (the last label must not be numeric)")
    return value


def validate_port(value: object) -> int:
    """Return ``value`` if it is an ``int`` (not a bool, str or float) in 1-65535."""
    if type(value) is not int or not 1 <= value <= 65535:
        raise InvalidSSHValue("port", value, "an integer from 1 to 65535 (not a string or bool)")
    return value


def validate_user(value: object) -> str:
    """Return ``value`` if it is a plain POSIX-style user name."""
    allowed = (
        "a user name: a letter or '_' followed by letters, digits, '.', '_' or '-', "
        f"at most {MAX_USER_LENGTH} characters"
    )
    if type(value) is not str or len(value) > MAX_USER_LENGTH or not _USER_RE.fullmatch(value):
        raise InvalidSSHValue("user", value, allowed)
    return value


def validate_server_alive_interval(value: object) -> int:
    """Return ``value`` if it is an ``int`` number of seconds (0 disables keep-alives)."""
    if type(value) is not int or not 0 <= value <= MAX_SERVER_ALIVE_INTERVAL:
        raise InvalidSSHValue(
            "server_alive_interval",
            value,
            f"an integer number of seconds from 0 to {MAX_SERVER_ALIVE_INTERVAL}",
        )
    return value


def _unsafe_path_reason(text: str) -> str | None:
    for char in text:
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Cs"):
            return "control, format or line-separator characters (newlines, NUL, tab, ...)"
        if char in "\"'\\":
            return "quotes or backslashes"
    if "${" in text:
        return "'${' (ssh would expand it as an environment variable)"
    return None


def format_config_path(path: Path | str, field: str, *, percent_tokens: bool) -> str:
    """Return ``path`` as an ssh_config argument that ssh reads back as exactly that path.

    The path must be absolute (so a leading ``~`` is never misread) and free of control
    characters, quotes, backslashes and ``${``. ``%`` is doubled where ssh expands ``%`` tokens
    (``percent_tokens``); the result is double-quoted when it holds anything but plain characters.
    """
    text = os.fspath(path)
    if not isinstance(text, str) or not os.path.isabs(text):
        raise InvalidSSHValue(field, path, "an absolute path")
    reason = _unsafe_path_reason(text)
    if reason is not None:
        raise InvalidSSHValue(field, path, f"a path without {reason}")
    if percent_tokens:
        text = text.replace("%", "%%")
    if _PLAIN_PATH_RE.fullmatch(text):
        return text
    return f'"{text}"'


def format_include_pattern(directory: Path | str, pattern: str, field: str) -> str:
    """Return the ``Include`` argument for ``pattern`` (a glob such as ``*.conf``) in ``directory``.

    ``Include`` expands ``~`` but no ``%`` tokens; the directory part is checked like
    :func:`format_config_path` and its glob metacharacters are backslash-escaped so glob(3)
    reads them literally.
    """
    text = os.fspath(directory)
    if not isinstance(text, str) or not os.path.isabs(text):
        raise InvalidSSHValue(field, directory, "an absolute path")
    reason = _unsafe_path_reason(text)
    if reason is not None:
        raise InvalidSSHValue(field, directory, f"a path without {reason}")
    escaped = re.sub(r"([*?\[])", r"\\\1", text.rstrip("/"))
    argument = f"{escaped}/{pattern}"
    if _PLAIN_PATH_RE.fullmatch(escaped):
        return argument
    return f'"{argument}"'
