"""The SSH config writer: one validated file per rental plus one ``Include`` line."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from .errors import SSHConfigError
from .fsutil import atomic_write, create_empty, fsync_dir, locked, make_dir, unlink
from .include import ensure_include, split_arguments
from .keys import MANAGED_DIR_NAME, find_user_identity, generated_identity_path, resolve_identity
from .validate import (
    alias_for,
    format_config_path,
    format_include_pattern,
    validate_host,
    validate_port,
    validate_rental_id,
    validate_server_alive_interval,
    validate_user,
)

ENTRY_SUFFIX = ".conf"
KNOWN_HOSTS_SUFFIX = ".known_hosts"
DEFAULT_USER = "root"
DEFAULT_SERVER_ALIVE_INTERVAL = 30
_TILDE_INCLUDE = f"~/.ssh/{MANAGED_DIR_NAME}/*{ENTRY_SUFFIX}"


@dataclass(frozen=True)
class SSHEntry:
    """What :meth:`SSHConfigWriter.write` wrote for one rental."""

    rental_id: str
    alias: str  #: ``gpuoutlet-<rental id>``
    host: str  #: validated HostName (IP literals in canonical form)
    port: int
    user: str
    entry_file: Path  #: ``<managed dir>/<rental id>.conf``
    known_hosts_file: Path  #: ``<managed dir>/<rental id>.known_hosts``
    #: The file to pass to ``ssh -F`` so the alias resolves: the ssh config that includes the
    #: managed folder, or ``entry_file`` itself when that config could not be edited.
    config_file: Path
    identity_file: Path
    #: What the user types: ``ssh gpuoutlet-<id>`` when the alias is in the config OpenSSH
    #: reads by default, else ``ssh -F <config_file> gpuoutlet-<id>``.
    command: str
    #: Set when the ssh config could not be edited: says which line to add, and where.
    include_warning: str | None = None


def _passwd_ssh_dir() -> Path | None:
    """``<home from the password database>/.ssh``: where OpenSSH looks, whatever ``$HOME`` says."""
    try:
        import pwd  # POSIX only

        return Path(pwd.getpwuid(os.getuid()).pw_dir) / ".ssh"
    except (ImportError, KeyError):
        return None


class SSHConfigWriter:
    """Writes, removes and lists the SSH aliases of rentals.

    ``ssh_dir`` defaults to ``~/.ssh`` (following ``$HOME``); the entries live in its
    ``gpuoutlet`` folder and its ``config`` gets the ``Include`` line. Safe to use from many
    processes and threads at once: every change happens under a file lock in the managed folder.
    """

    def __init__(
        self,
        ssh_dir: Path | str | None = None,
        *,
        user: str = DEFAULT_USER,
        identity_file: Path | str | None = None,
        server_alive_interval: int = DEFAULT_SERVER_ALIVE_INTERVAL,
    ) -> None:
        base = Path(os.path.expanduser("~")) / ".ssh" if ssh_dir is None else Path(ssh_dir)
        self._ssh_dir = Path(os.path.abspath(base))
        self._managed_dir = self._ssh_dir / MANAGED_DIR_NAME
        self._config_file = self._ssh_dir / "config"
        self._user = validate_user(user)
        self._server_alive_interval = validate_server_alive_interval(server_alive_interval)
        self._identity: Path | None = None
        if identity_file is not None:
            self._identity = Path(os.path.abspath(identity_file))
            format_config_path(self._identity, "identity_file", percent_tokens=True)
        format_config_path(self._managed_dir, "ssh_dir", percent_tokens=True)

        absolute_pattern = format_include_pattern(self._managed_dir, f"*{ENTRY_SUFFIX}", "ssh_dir")
        accepted = {*split_arguments(absolute_pattern)}
        default_dir = _passwd_ssh_dir()
        self._is_default = default_dir is not None and os.path.realpath(
            default_dir
        ) == os.path.realpath(self._ssh_dir)
        if self._is_default:
            # ssh expands "~" in an Include with the password-database home, which is ours here.
            self._include_line = f"Include {_TILDE_INCLUDE}"
            accepted.add(_TILDE_INCLUDE)
        else:
            self._include_line = f"Include {absolute_pattern}"
        self._accepted_includes = frozenset(accepted)

    @property
    def ssh_dir(self) -> Path:
        return self._ssh_dir

    def identity(self) -> Path:
        """The private key the entries use: the configured one, else the user's, else the
        extension's own (generated once, when first needed)."""
        return self._identity or resolve_identity(self._ssh_dir)

    @property
    def managed_dir(self) -> Path:
        """The 0700 folder holding one ``.conf`` and one ``.known_hosts`` per rental."""
        return self._managed_dir

    @property
    def config_file(self) -> Path:
        """The ssh config that gets the ``Include`` line (``<ssh_dir>/config``)."""
        return self._config_file

    @property
    def include_line(self) -> str:
        """The exact line added to :attr:`config_file`."""
        return self._include_line

    @property
    def is_default_config(self) -> bool:
        """Whether :attr:`config_file` is the one a plain ``ssh`` reads."""
        return self._is_default

    def entry_file(self, rental_id: str) -> Path:
        return self._managed_dir / (validate_rental_id(rental_id) + ENTRY_SUFFIX)

    def known_hosts_file(self, rental_id: str) -> Path:
        return self._managed_dir / (validate_rental_id(rental_id) + KNOWN_HOSTS_SUFFIX)

    def write(self, rental_id: str, host: object, port: object) -> SSHEntry:
        """Write (or rewrite) the alias of a running rental and make sure it is included.

        Every value is validated first; on :class:`InvalidSSHValue` nothing at all is written.
        ``host`` and ``port`` are typed ``object`` because they come from the network.
        """
        rental_id = validate_rental_id(rental_id)
        alias = alias_for(rental_id)
        hostname = validate_host(host)
        port_number = validate_port(port)
        entry_file = self.entry_file(rental_id)
        known_hosts = self.known_hosts_file(rental_id)
        identity = (
            self._identity
            or find_user_identity(self._ssh_dir)
            or generated_identity_path(self._ssh_dir)
        )
        text = self._render(rental_id, alias, hostname, port_number, identity, known_hosts)

        self._make_dirs()
        if self._identity is None:
            resolved = resolve_identity(self._ssh_dir)
            if resolved != identity:
                identity = resolved
                text = self._render(rental_id, alias, hostname, port_number, identity, known_hosts)
        with locked(self._managed_dir):
            create_empty(known_hosts)
            atomic_write(entry_file, text.encode("utf-8"))
            warning = ensure_include(self._config_file, self._include_line, self._accepted_includes)

        config_file = self._config_file if warning is None else entry_file
        if warning is None and self._is_default:
            command = f"ssh {alias}"
        else:
            command = f"ssh -F {shlex.quote(os.fspath(config_file))} {alias}"
        return SSHEntry(
            rental_id=rental_id,
            alias=alias,
            host=hostname,
            port=port_number,
            user=self._user,
            entry_file=entry_file,
            known_hosts_file=known_hosts,
            config_file=config_file,
            identity_file=identity,
            command=command,
            include_warning=warning,
        )

    def remove(self, rental_id: str) -> None:
        """Delete a rental's ``.conf`` and ``.known_hosts`` (stopped or failed). Idempotent."""
        rental_id = validate_rental_id(rental_id)
        if not self._managed_dir.is_dir():
            return
        with locked(self._managed_dir):
            removed = unlink(self.entry_file(rental_id))
            removed = unlink(self.known_hosts_file(rental_id)) or removed
        if removed:
            fsync_dir(self._managed_dir)

    def entries(self) -> list[str]:
        """The rental ids that have an entry, sorted."""
        try:
            names = os.listdir(self._managed_dir)
        except (FileNotFoundError, NotADirectoryError):
            return []
        ids = []
        for name in names:
            rental_id = name[: -len(ENTRY_SUFFIX)]
            if name.endswith(ENTRY_SUFFIX) and not name.startswith(".") and rental_id:
                try:
                    ids.append(validate_rental_id(rental_id))
                except SSHConfigError:
                    continue
        return sorted(ids)

    def ensure_include(self) -> str | None:
        """Add the ``Include`` line to :attr:`config_file` if missing.

        Returns ``None`` when the line is there, else a warning naming the line to add (the
        config is read-only, or otherwise could not be edited; it is left untouched).
        """
        self._make_dirs()
        with locked(self._managed_dir):
            return ensure_include(self._config_file, self._include_line, self._accepted_includes)

    def _make_dirs(self) -> None:
        make_dir(self._ssh_dir, enforce_private=False)
        make_dir(self._managed_dir, enforce_private=True)

    def _render(
        self,
        rental_id: str,
        alias: str,
        host: str,
        port: int,
        identity: Path,
        known_hosts: Path,
    ) -> str:
        lines = [
            f"# Managed by gpuoutlet-jupyter: the SSH alias of rental {rental_id}.",
            "# Rewritten while the rental runs, deleted when it stops: do not edit.",
            f"Host {alias}",
            f"    HostName {host}",
            f"    Port {port}",
            f"    User {self._user}",
            f"    IdentityFile {format_config_path(identity, 'identity_file', percent_tokens=True)}",
            "    IdentitiesOnly yes",
            "    StrictHostKeyChecking accept-new",
            "    UserKnownHostsFile "
            + format_config_path(known_hosts, "known_hosts_file", percent_tokens=True),
            f"    ServerAliveInterval {self._server_alive_interval}",
        ]
        if any("\n" in line or "\r" in line for line in lines):  # unreachable: belt and braces
            raise SSHConfigError("refusing to write a multi-line value")
        return "\n".join(lines) + "\n"
