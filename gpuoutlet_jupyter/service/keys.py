"""The SSH key check before a create: pods let in only the keys the account had when they launched."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..api import SSHKey
from ..api.errors import KeyNotOnAccountError
from ..ssh import LocalKey


@dataclass(frozen=True)
class KeyCheck:
    """The local identity (or why there is none to check) against the account's keys."""

    local: LocalKey | None
    account: tuple[SSHKey, ...]
    #: Why the local key could not be read (None when it was).
    problem: str | None = None

    @property
    def on_account(self) -> bool:
        return self.local is not None and any(
            k.fingerprint == self.local.fingerprint for k in self.account
        )

    def require(self) -> None:
        """Refuse, with what to do, when the SSH entry's key is not on the account."""
        if self.local is not None and not self.on_account:
            raise KeyNotOnAccountError(
                fingerprint=self.local.fingerprint,
                identity=str(self.local.identity),
                public_key_file=str(self.local.public_key_file),
            )

    def to_json(self) -> dict[str, Any]:
        """The REST keys view: the account's keys (the local one marked) and the local key."""
        local_fp = self.local.fingerprint if self.local else None
        return {
            "keys": [{**k.to_json(), "local": k.fingerprint == local_fp} for k in self.account],
            "local": None
            if self.local is None
            else {
                "identityFile": str(self.local.identity),
                "publicKeyFile": str(self.local.public_key_file),
                "fingerprint": self.local.fingerprint,
                "algorithm": self.local.algorithm,
                "comment": self.local.comment,
                "onAccount": self.on_account,
            },
            "localProblem": self.problem,
        }


def default_key_name(local: LocalKey) -> str:
    """``gpuoutlet-jupyter@<host>`` (the key's comment when it has one), at most 64 characters."""
    name = local.comment.strip() or f"gpuoutlet-jupyter@{socket.gethostname()}"
    return name[:64]


def find(keys: Sequence[SSHKey], fingerprint: str) -> SSHKey | None:
    """The account's key with that fingerprint."""
    return next((k for k in keys if k.fingerprint == fingerprint), None)
