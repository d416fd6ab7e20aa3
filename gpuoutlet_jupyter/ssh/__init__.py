"""SSH config writer: one Include line, one validated file per rental.

``SSHConfigWriter(ssh_dir).write(rental_id, host, port)`` writes
``<ssh_dir>/gpuoutlet/<rental id>.conf`` (alias ``gpuoutlet-<rental id>``) and makes sure
``<ssh_dir>/config`` includes that folder; ``remove(rental_id)`` deletes the entry again.
Everything that reaches a file is validated first. Imports only the stdlib and filelock.
"""

from .errors import InvalidSSHValue, SSHConfigError, SSHKeyError, SSHLockTimeout
from .keys import (
    LocalKey,
    find_user_identity,
    fingerprint,
    generated_identity_path,
    local_key,
    public_key_for,
    resolve_identity,
)
from .validate import (
    ALIAS_PREFIX,
    alias_for,
    validate_alias,
    validate_host,
    validate_port,
    validate_rental_id,
    validate_server_alive_interval,
    validate_user,
)
from .writer import SSHConfigWriter, SSHEntry

__all__ = [
    "ALIAS_PREFIX",
    "InvalidSSHValue",
    "LocalKey",
    "SSHConfigError",
    "SSHConfigWriter",
    "SSHEntry",
    "SSHKeyError",
    "SSHLockTimeout",
    "alias_for",
    "find_user_identity",
    "fingerprint",
    "generated_identity_path",
    "local_key",
    "public_key_for",
    "resolve_identity",
    "validate_alias",
    "validate_host",
    "validate_port",
    "validate_rental_id",
    "validate_server_alive_interval",
    "validate_user",
]
