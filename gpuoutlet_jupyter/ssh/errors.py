"""Errors raised by the SSH config layer (one hierarchy under :class:`SSHConfigError`)."""

from __future__ import annotations

_MAX_SHOWN = 80


def _shown(value: object) -> str:
    """``repr`` of a (possibly hostile, possibly huge) value, bounded for an error message."""
    text = repr(value)
    if len(text) > _MAX_SHOWN:
        return f"{text[:_MAX_SHOWN]}... ({len(text)} chars)"
    return text


class SSHConfigError(Exception):
    """Base class: the SSH step of a rental could not be completed."""


class InvalidSSHValue(SSHConfigError, ValueError):
    """A value was rejected before anything was written.

    ``field`` names what was rejected (``host``, ``port``, ``rental_id``, ...), ``value`` is the
    rejected value as given and ``allowed`` says what would have been accepted.
    """

    def __init__(self, field: str, value: object, allowed: str) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"invalid SSH {field} {_shown(value)}: {allowed}")


class SSHKeyError(SSHConfigError):
    """No usable identity: ssh-keygen is missing or failed, or a public key cannot be read."""


class SSHLockTimeout(SSHConfigError):
    """Another process held the SSH config lock for too long."""
