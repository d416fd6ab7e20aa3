"""The SSH config writer against real files, proven with the real ``ssh -G``."""

from __future__ import annotations

import errno
import os
import re
import shlex
import shutil
import socket
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpuoutlet_jupyter.ssh import SSHConfigWriter, SSHEntry
from gpuoutlet_jupyter.ssh import writer as writer_module

SSH = shutil.which("ssh")
needs_ssh = pytest.mark.skipif(SSH is None, reason="needs the OpenSSH client")

USER_CONFIG = (
    b"# my own config\r\n"
    b"Include ~/.ssh/work/*.conf\r\n"
    b"ServerAliveInterval 5\r\n"
    b"User toplevel\r\n"
    b"\r\n"
    b"Host *\r\n"
    b"    User nobody\r\n"
    b"    Port 2200\r\n"
    b"    IdentityFile /nonexistent/user_key\r\n"
    b"    StrictHostKeyChecking yes\r\n"
    b"    UserKnownHostsFile /nonexistent/known_hosts\r\n"
    b"    ServerAliveInterval 99\r\n"
    b"\r\n"
    b"# a Match block\r\n"
    b"Match host *.corp user alice\r\n"
    b"    ForwardAgent no\r\n"
    b"\r\n"
    b"Host last\r\n"
    b"    HostName last.example.com\r\n"
    b"    ProxyCommand nc %h %p"
)


def ssh_g(config: Path, alias: str) -> dict[str, list[str]]:
    """What OpenSSH makes of ``alias`` with ``-F config``: option -> values."""
    assert SSH is not None
    result = subprocess.run(
        [SSH, "-G", "-F", os.fspath(config), alias],
        capture_output=True,
        text=True,
        check=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    options: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition(" ")
        options.setdefault(key, []).append(value)
    return options


def assert_ssh_reads(entry: SSHEntry, *, interval: str = "30") -> None:
    options = ssh_g(entry.config_file, entry.alias)
    assert options["hostname"] == [entry.host]
    assert options["port"] == [str(entry.port)]
    assert options["user"] == [entry.user]
    # ssh -G prints IdentityFile before %-expansion (a literal % is written %%)...
    assert options["identityfile"][0] == os.fspath(entry.identity_file).replace("%", "%%")
    assert options["identitiesonly"] == ["yes"]
    assert options["stricthostkeychecking"] == ["accept-new"]
    # ... and UserKnownHostsFile after it.
    assert options["userknownhostsfile"] == [os.fspath(entry.known_hosts_file)]
    assert options["serveraliveinterval"] == [interval]
    assert "proxycommand" not in options
    assert "localcommand" not in options
    assert options.get("permitlocalcommand", ["no"]) == ["no"]


def temp_files(root: Path) -> list[Path]:
    """Dot files that are neither the lock nor the .ssh folder: temp files left behind."""
    return [p for p in root.rglob(".*") if p.name not in (".lock", ".ssh")]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture
def ssh_dir(tmp_path: Path) -> Path:
    path = tmp_path / "home" / ".ssh"
    path.mkdir(parents=True, mode=0o700)
    (path / "id_ed25519").write_text("not a real key\n")
    return path


@pytest.fixture
def umask_zero() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


# --- the user's own config ------------------------------------------------------------------


@needs_ssh
def test_user_config_is_kept_byte_for_byte(ssh_dir: Path) -> None:
    config = ssh_dir / "config"
    config.write_bytes(USER_CONFIG)
    writer = SSHConfigWriter(ssh_dir)
    entry = writer.write("r1", "10.1.2.3", 2222)

    data = config.read_bytes()
    added = writer.include_line.encode() + b"\r\n"  # in the file's own line ending
    assert data == added + USER_CONFIG
    lines = data.split(b"\r\n")
    first_block = next(i for i, line in enumerate(lines) if line.startswith((b"Host", b"Match")))
    assert [i for i, line in enumerate(lines) if line.startswith(b"Include /")] == [0]
    assert first_block > 0
    assert entry.include_warning is None
    assert entry.config_file == config
    # The entry wins over the user's top-level options and `Host *` block.
    assert_ssh_reads(entry)
    # ... and the user's own hosts still read the user's settings.
    last = ssh_g(config, "last")
    assert last["hostname"] == ["last.example.com"]
    assert last["user"] == ["toplevel"]
    assert last["proxycommand"] == ["nc %h %p"]

    writer.write("r1", "10.1.2.3", 2222)
    writer.write("r2", "10.1.2.4", 22)
    assert writer.ensure_include() is None
    assert SSHConfigWriter(ssh_dir).ensure_include() is None
    assert config.read_bytes() == added + USER_CONFIG


def test_lf_config_without_trailing_newline(ssh_dir: Path) -> None:
    original = b"Host a\n    HostName a.example.com\n\nHost b\n    Port 2"
    (ssh_dir / "config").write_bytes(original)
    writer = SSHConfigWriter(ssh_dir)
    writer.write("r1", "10.0.0.1", 22)
    writer.write("r1", "10.0.0.1", 22)
    assert (ssh_dir / "config").read_bytes() == writer.include_line.encode() + b"\n" + original


@pytest.mark.parametrize("original", [b"", b"\n", b"# only a comment", b"Host x"])
def test_tiny_configs(ssh_dir: Path, original: bytes) -> None:
    (ssh_dir / "config").write_bytes(original)
    writer = SSHConfigWriter(ssh_dir)
    writer.ensure_include()
    writer.ensure_include()
    assert (ssh_dir / "config").read_bytes() == writer.include_line.encode() + b"\n" + original


def test_include_added_by_hand_is_not_added_again(ssh_dir: Path) -> None:
    writer = SSHConfigWriter(ssh_dir)
    original = (
        f"Host a\n  HostName a\n\n# gpuoutlet\n  include   {writer.include_line.split(' ', 1)[1]}"
        "  # added by hand\nHost b\n"
    ).encode()
    (ssh_dir / "config").write_bytes(original)
    assert writer.write("r1", "10.0.0.1", 22).include_warning is None
    assert (ssh_dir / "config").read_bytes() == original


def test_commented_out_include_does_not_count(ssh_dir: Path) -> None:
    writer = SSHConfigWriter(ssh_dir)
    original = f"# {writer.include_line}\nHost a\n".encode()
    (ssh_dir / "config").write_bytes(original)
    writer.ensure_include()
    assert (ssh_dir / "config").read_bytes() == writer.include_line.encode() + b"\n" + original


@needs_ssh
def test_missing_config_and_ssh_dir_are_created(tmp_path: Path, umask_zero: None) -> None:
    key = tmp_path / "keys" / "id_ed25519"
    (tmp_path / "home").mkdir()
    ssh_dir = tmp_path / "home" / ".ssh"
    writer = SSHConfigWriter(ssh_dir, identity_file=key)
    entry = writer.write("r1", "gpu-7.example.com", 40022)
    assert mode(ssh_dir) == 0o700
    assert mode(ssh_dir / "config") == 0o600
    assert (ssh_dir / "config").read_text() == writer.include_line + "\n"
    assert entry.identity_file == key
    assert_ssh_reads(entry)


@needs_ssh
def test_symlinked_config_is_followed(ssh_dir: Path, tmp_path: Path) -> None:
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    target = dotfiles / "ssh_config"
    target.write_bytes(b"Host *\n    User nobody\n")
    target.chmod(0o644)
    link = ssh_dir / "config"
    link.symlink_to(Path("..", "..", "dotfiles", "ssh_config"))

    writer = SSHConfigWriter(ssh_dir)
    entry = writer.write("r1", "10.0.0.9", 22)
    assert link.is_symlink()
    assert os.readlink(link) == os.path.join("..", "..", "dotfiles", "ssh_config")
    assert target.read_bytes() == writer.include_line.encode() + b"\nHost *\n    User nobody\n"
    assert mode(target) == 0o644  # the user's choice is kept
    assert entry.config_file == link
    assert_ssh_reads(entry)
    assert temp_files(tmp_path) == []


@needs_ssh
def test_read_only_config_is_left_alone_and_reported(ssh_dir: Path) -> None:
    config = ssh_dir / "config"
    config.write_bytes(USER_CONFIG)
    config.chmod(0o400)
    writer = SSHConfigWriter(ssh_dir)
    entry = writer.write("r1", "10.0.0.1", 2222)

    assert config.read_bytes() == USER_CONFIG
    assert mode(config) == 0o400
    assert entry.include_warning is not None
    assert writer.include_line in entry.include_warning.splitlines()[1]
    assert os.fspath(config) in entry.include_warning
    assert "before its first Host or Match line" in entry.include_warning
    assert writer.ensure_include() == entry.include_warning
    # The alias still works through its own file.
    assert entry.config_file == entry.entry_file
    assert entry.command == f"ssh -F {shlex.quote(os.fspath(entry.entry_file))} gpuoutlet-r1"
    assert_ssh_reads(entry)
    assert temp_files(ssh_dir) == []


def test_read_only_symlink_target_is_left_alone(ssh_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "store" / "ssh_config"
    target.parent.mkdir()
    target.write_bytes(b"Host *\n")
    target.chmod(0o444)
    (ssh_dir / "config").symlink_to(target)
    warning = SSHConfigWriter(ssh_dir).ensure_include()
    assert warning is not None
    assert "read-only" in warning
    assert target.read_bytes() == b"Host *\n"
    assert (ssh_dir / "config").is_symlink()


def test_dangling_symlink_is_reported_not_created(ssh_dir: Path, tmp_path: Path) -> None:
    (ssh_dir / "config").symlink_to(tmp_path / "nowhere" / "config")
    warning = SSHConfigWriter(ssh_dir).ensure_include()
    assert warning is not None
    assert not (tmp_path / "nowhere").exists()


def test_unwritable_config_reports_the_line(ssh_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A replace that fails (read-only file system) leaves no temp file and reports the line."""
    config = ssh_dir / "config"
    config.write_bytes(b"Host *\n")
    real_replace = os.replace

    def replace(src: str, dst: str | os.PathLike[str]) -> None:
        if Path(dst) == config:
            raise OSError(errno.EROFS, "Read-only file system", os.fspath(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    writer = SSHConfigWriter(ssh_dir)
    entry = writer.write("r1", "10.0.0.1", 22)
    assert entry.include_warning is not None
    assert "not writable" in entry.include_warning
    assert writer.include_line in entry.include_warning
    assert config.read_bytes() == b"Host *\n"
    assert temp_files(ssh_dir) == []
    assert entry.config_file == entry.entry_file


# --- entries ----------------------------------------------------------------------------------


@needs_ssh
def test_entry_file_and_ssh_g(ssh_dir: Path) -> None:
    writer = SSHConfigWriter(ssh_dir, user="ubuntu", server_alive_interval=15)
    entry = writer.write("r-42", "2001:DB8::7", 30022)
    assert entry.alias == "gpuoutlet-r-42"
    assert entry.host == "2001:db8::7"
    assert entry.entry_file == ssh_dir / "gpuoutlet" / "r-42.conf"
    assert entry.known_hosts_file == ssh_dir / "gpuoutlet" / "r-42.known_hosts"
    assert entry.identity_file == ssh_dir / "id_ed25519"
    assert entry.config_file == ssh_dir / "config"
    assert entry.command == f"ssh -F {shlex.quote(os.fspath(ssh_dir / 'config'))} gpuoutlet-r-42"
    assert writer.include_line == f"Include {ssh_dir}/gpuoutlet/*.conf"
    assert_ssh_reads(entry, interval="15")
    text = entry.entry_file.read_text()
    assert text.count("\nHost ") == 1
    for forbidden in ("ProxyCommand", "LocalCommand", "ProxyJump", "Match", "Include"):
        assert forbidden not in text
    assert "/dev/null" not in text
    assert writer.entries() == ["r-42"]


@needs_ssh
def test_awkward_home_path(tmp_path: Path) -> None:
    """Spaces, %, # and glob characters in the home path survive into what ssh reads."""
    ssh_dir = tmp_path / "my home [1] 100% #x" / ".ssh"
    ssh_dir.mkdir(parents=True)
    (ssh_dir / "id_rsa").write_text("not a real key\n")
    # A decoy that an unescaped "[1]" in the Include pattern would match instead.
    (tmp_path / "my home 1 100% #x" / ".ssh" / "gpuoutlet").mkdir(parents=True)
    writer = SSHConfigWriter(ssh_dir)
    entry = writer.write("r1", "10.0.0.1", 22)
    assert entry.identity_file == ssh_dir / "id_rsa"
    assert '"' in writer.include_line
    assert_ssh_reads(entry)
    assert entry.command.startswith("ssh -F '")
    writer.write("r2", "10.0.0.2", 22)  # the quoted, escaped Include is recognised: added once
    assert (ssh_dir / "config").read_text() == writer.include_line + "\n"


def test_config_that_is_a_directory_is_reported(ssh_dir: Path) -> None:
    (ssh_dir / "config").mkdir()
    writer = SSHConfigWriter(ssh_dir)
    entry = writer.write("r1", "10.0.0.1", 22)
    assert entry.include_warning is not None
    assert "not a regular file" in entry.include_warning
    assert entry.config_file == entry.entry_file


@needs_ssh
def test_ssh_uses_the_identity_file_as_written(tmp_path: Path) -> None:
    """Beyond -G: a real ssh connection attempt loads the key from the path written (% and all)."""
    assert SSH is not None
    ssh_dir = tmp_path / "h%h o" / ".ssh"
    ssh_dir.parent.mkdir()
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        try:
            connection, _ = server.accept()
            with connection:
                connection.sendall(b"SSH-2.0-not-really\r\n")
                connection.recv(256)
        except OSError:  # the test failed before ssh connected and closed the socket
            return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        entry = SSHConfigWriter(ssh_dir).write("r1", "127.0.0.1", port)  # generates a key
        result = subprocess.run(
            [SSH, "-v", "-F", os.fspath(entry.config_file), "-o", "BatchMode=yes", entry.alias],
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
            timeout=60,
        )
    finally:
        server.close()
    thread.join(timeout=60)
    loaded = re.search(
        rf"identity file {re.escape(os.fspath(entry.identity_file))} type (-?\d+)", result.stderr
    )
    assert loaded is not None, result.stderr
    assert loaded.group(1) != "-1"  # -1 would mean no key at that path


def test_rewrite_keeps_known_hosts_and_updates_the_entry(ssh_dir: Path) -> None:
    writer = SSHConfigWriter(ssh_dir)
    entry = writer.write("r1", "10.0.0.1", 22)
    assert entry.known_hosts_file.read_bytes() == b""
    entry.known_hosts_file.write_text("[10.0.0.1]:22 ssh-ed25519 AAAA\n")
    again = writer.write("r1", "10.0.0.2", 2200)
    assert "HostName 10.0.0.2\n" in again.entry_file.read_text()
    assert "Port 2200\n" in again.entry_file.read_text()
    assert again.known_hosts_file.read_text() == "[10.0.0.1]:22 ssh-ed25519 AAAA\n"


def test_remove_is_idempotent(ssh_dir: Path) -> None:
    writer = SSHConfigWriter(ssh_dir)
    writer.write("r1", "10.0.0.1", 22)
    writer.write("r2", "10.0.0.2", 22)
    config_before = (ssh_dir / "config").read_bytes()
    writer.remove("r1")
    writer.remove("r1")
    writer.remove("never-written")
    assert writer.entries() == ["r2"]
    assert not (ssh_dir / "gpuoutlet" / "r1.conf").exists()
    assert not (ssh_dir / "gpuoutlet" / "r1.known_hosts").exists()
    assert (ssh_dir / "config").read_bytes() == config_before
    assert (ssh_dir / "id_ed25519").exists()


def test_remove_without_managed_dir_creates_nothing(tmp_path: Path) -> None:
    SSHConfigWriter(tmp_path / ".ssh").remove("r1")
    assert list(tmp_path.iterdir()) == []
    assert SSHConfigWriter(tmp_path / ".ssh").entries() == []


def test_entries_ignore_strays(ssh_dir: Path) -> None:
    writer = SSHConfigWriter(ssh_dir)
    writer.write("b", "10.0.0.1", 22)
    writer.write("a", "10.0.0.2", 22)
    for stray in [".x.conf.123.tmp", "c.conf.bak", ".conf", "-x.conf", "d.known_hosts"]:
        (writer.managed_dir / stray).write_text("")
    assert writer.entries() == ["a", "b"]


def test_ssh_g_sees_no_entry_after_remove(ssh_dir: Path) -> None:
    writer = SSHConfigWriter(ssh_dir)
    writer.write("r1", "10.0.0.1", 22)
    writer.remove("r1")
    if SSH is not None:
        assert ssh_g(writer.config_file, "gpuoutlet-r1")["hostname"] == ["gpuoutlet-r1"]


# --- permissions and temp files ---------------------------------------------------------------


def test_permissions_with_a_permissive_umask(tmp_path: Path, umask_zero: None) -> None:
    ssh_dir = tmp_path / ".ssh"
    writer = SSHConfigWriter(ssh_dir, identity_file=tmp_path / "key")
    entry = writer.write("r1", "10.0.0.1", 22)
    assert mode(ssh_dir) == 0o700
    assert mode(writer.managed_dir) == 0o700
    assert mode(entry.entry_file) == 0o600
    assert mode(entry.known_hosts_file) == 0o600
    assert mode(writer.config_file) == 0o600
    for path in writer.managed_dir.iterdir():
        assert mode(path) & 0o077 == 0, path


def test_managed_dir_is_made_private_but_the_users_dir_is_not_touched(
    tmp_path: Path, umask_zero: None
) -> None:
    ssh_dir = tmp_path / ".ssh"
    (ssh_dir / "gpuoutlet").mkdir(parents=True)
    ssh_dir.chmod(0o755)
    (ssh_dir / "gpuoutlet").chmod(0o777)
    (ssh_dir / "config").write_text("Host *\n")
    (ssh_dir / "config").chmod(0o640)
    SSHConfigWriter(ssh_dir, identity_file=tmp_path / "key").write("r1", "10.0.0.1", 22)
    assert mode(ssh_dir) == 0o755
    assert mode(ssh_dir / "gpuoutlet") == 0o700
    assert mode(ssh_dir / "config") == 0o640


def test_no_temp_files_after_success_or_failure(
    ssh_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (ssh_dir / "config").write_bytes(b"Host *\n")
    writer = SSHConfigWriter(ssh_dir)
    writer.write("r1", "10.0.0.1", 22)
    writer.remove("r1")
    writer.write("r2", "10.0.0.2", 22)
    assert temp_files(ssh_dir) == []

    real_replace = os.replace

    def failing_replace(src: str, dst: str | os.PathLike[str]) -> None:
        if Path(dst).name == "r3.conf":
            raise OSError(errno.ENOSPC, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="No space"):
        writer.write("r3", "10.0.0.3", 22)
    assert temp_files(ssh_dir) == []
    assert not (writer.managed_dir / "r3.conf").exists()
    assert writer.entries() == ["r2"]


# --- which config ssh reads by default ----------------------------------------------------------


def test_default_config_uses_tilde_and_a_plain_command(
    ssh_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "_passwd_ssh_dir", lambda: ssh_dir)
    writer = SSHConfigWriter(ssh_dir)
    assert writer.is_default_config
    assert writer.include_line == "Include ~/.ssh/gpuoutlet/*.conf"
    entry = writer.write("r1", "10.0.0.1", 22)
    assert entry.command == "ssh gpuoutlet-r1"
    assert entry.config_file == ssh_dir / "config"
    assert (ssh_dir / "config").read_text() == "Include ~/.ssh/gpuoutlet/*.conf\n"


def test_default_config_accepts_an_absolute_include_already_there(
    ssh_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "_passwd_ssh_dir", lambda: ssh_dir)
    original = f"Include {ssh_dir}/gpuoutlet/*.conf\n".encode()
    (ssh_dir / "config").write_bytes(original)
    SSHConfigWriter(ssh_dir).ensure_include()
    assert (ssh_dir / "config").read_bytes() == original


def test_home_from_the_password_database_decides(tmp_path: Path) -> None:
    """A temp $HOME is not where ssh looks: absolute Include, and commands that pass -F."""
    import pwd

    real = Path(pwd.getpwuid(os.getuid()).pw_dir) / ".ssh"
    assert SSHConfigWriter(real).include_line == "Include ~/.ssh/gpuoutlet/*.conf"  # writes nothing
    writer = SSHConfigWriter(tmp_path / ".ssh")
    assert not writer.is_default_config
    assert writer.include_line == f"Include {tmp_path}/.ssh/gpuoutlet/*.conf"


def test_default_ssh_dir_follows_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", os.fspath(tmp_path))
    writer = SSHConfigWriter()
    assert writer.config_file == tmp_path / ".ssh" / "config"
    assert writer.managed_dir == tmp_path / ".ssh" / "gpuoutlet"
