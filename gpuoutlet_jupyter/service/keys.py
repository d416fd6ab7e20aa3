"""The SSH key check before a create: pods let in only the keys the account had when they launched."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..api import ConfigurationError, DuplicateKeyError, SSHKey
from ..api.errors import KeyNotOnAccountError
from ..ssh import LocalKey, SSHConfigWriter, SSHKeyError, local_key
from .upstream import Upstream

log = logging.getLogger(__name__)


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


class AccountKeys:
    """The SSH entries' key against the account's keys: checked before a create, added on ask."""

    def __init__(self, upstream: Upstream, ssh: SSHConfigWriter | None) -> None:
        self._upstream = upstream
        self._ssh = ssh

    async def check(self, *, fresh: bool = False) -> KeyCheck:
        """The SSH entries' key against the account's keys (fetched anew with ``fresh``)."""
        keys = await self._upstream.ssh_keys(fresh=fresh)
        ssh = self._ssh
        if ssh is None:
            return KeyCheck(None, tuple(keys), "SSH entries are turned off on this server.")
        try:
            local = await asyncio.to_thread(lambda: local_key(ssh.identity()))
        except (SSHKeyError, OSError) as exc:
            return KeyCheck(None, tuple(keys), f"The SSH key could not be read: {exc}")
        return KeyCheck(local, tuple(keys))

    async def require(self) -> None:
        """Refuse a create whose pod would not let the SSH entry's key in."""
        if self._ssh is None:
            return  # no SSH entry will be written: no key to check
        # Fresh, one request per create: a key deleted in the dashboard a moment ago counts.
        (await self.check(fresh=True)).require()

    async def add_local(self, name: str | None = None) -> tuple[SSHKey, bool]:
        """Post the SSH entries' public key to the account; (the key, whether it was there)."""
        check = await self.check(fresh=True)
        if check.local is None:
            raise ConfigurationError(check.problem or "No SSH key to add.")
        existing = find(check.account, check.local.fingerprint)
        if existing is not None:
            return existing, True
        try:
            key = await self._upstream.add_ssh_key(
                name or default_key_name(check.local), check.local.public_key
            )
        except DuplicateKeyError:
            # Added meanwhile (the dashboard, another process): it is there, which is the point.
            found = find(await self._upstream.ssh_keys(fresh=True), check.local.fingerprint)
            if found is None:
                raise
            return found, True
        log.info("added the SSH key %s to the account as %r", key.fingerprint, key.name)
        return key, False
