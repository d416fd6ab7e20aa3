"""Validation of everything that reaches an ssh_config file, and the hostile-value corpus.

Every hostile value must raise InvalidSSHValue naming its field and leave every file under the
temp home byte-identical (contents, modes, links, and which files exist at all).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from gpuoutlet_jupyter.ssh import (
    InvalidSSHValue,
    SSHConfigError,
    SSHConfigWriter,
    alias_for,
    validate_alias,
    validate_host,
    validate_port,
    validate_rental_id,
    validate_server_alive_interval,
    validate_user,
)
from gpuoutlet_jupyter.ssh.validate import format_config_path, format_include_pattern

Snapshot = dict[str, tuple[object, ...]]


def snapshot(root: Path) -> Snapshot:
    """Every path under ``root`` with its kind, mode and bytes (or link target)."""
    result: Snapshot = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            st = path.lstat()
            key = os.fspath(path.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                result[key] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                result[key] = ("dir", stat.S_IMODE(st.st_mode))
            else:
                result[key] = ("file", stat.S_IMODE(st.st_mode), path.read_bytes())
    return result


INJECTIONS = [
    "evil\nProxyCommand sh -c 'touch /tmp/pwned'",
    "evil\r\nProxyCommand nc %h %p",
    "evil\rLocalCommand id",
    "evil\n    LocalCommand touch /tmp/pwned\n    PermitLocalCommand yes",
    "evil\nInclude /tmp/evil.conf",
    'evil\nMatch exec "touch /tmp/pwned"',
    "evil\x0bProxyCommand id",
    "evil\x0cProxyCommand id",
    "evil\u2028ProxyCommand id",
    "evil\x85ProxyCommand id",
]

HOSTILE_HOSTS: list[object] = [
    *INJECTIONS,
    "-oProxyCommand=id",
    "-example.com",
    "example-.com",
    "%h",
    "host%d.example.com",
    "%%",
    '"example.com"',
    "'example.com'",
    "exa mple.com",
    " 10.0.0.1",
    "10.0.0.1 ",
    "10.0.0.1\n",
    "exa\tmple.com",
    "exa\x00mple.com",
    "example.com#comment",
    "example.com,evil.com",
    "host=evil",
    "${HOME}",
    "example．com",  # fullwidth full stop
    "ехample.com",  # Cyrillic е and х
    "exam\u200bple.com",  # zero-width space
    "１０.0.0.1",  # fullwidth digits
    "gpu‐1.example.com",  # U+2010 hyphen
    "exa_mple.com",
    "",
    ".",
    "example..com",
    "example.com.",
    "a" * 64 + ".com",
    ".".join(["a" * 60] * 5),
    "x" * 10_000,
    "fe80::1%eth0",
    "fe80::1%25eth0",
    "[::1]",
    "127.1",
    "0x7f000001",
    "1.2.3.999",
    "0.0.0.0",
    "::",
    "224.0.0.1",
    None,
    1234,
    b"example.com",
    ["example.com"],
]

HOSTILE_PORTS: list[object] = [
    0,
    65536,
    -1,
    2**70,
    "22",
    "22 ",
    "22\n",
    " 22",
    "22\nProxyCommand id",
    True,
    False,
    22.0,
    22.5,
    None,
    b"22",
]

HOSTILE_RENTAL_IDS: list[object] = [
    *INJECTIONS,
    "",
    ".",
    "..",
    "../../config",
    "a/b",
    ".hidden",
    "-oProxyCommand=id",
    "_r1",
    "r 1",
    "r1*",
    "r?",
    "!r1",
    "r%h",
    "r#1",
    "r1\x00",
    "r１",  # fullwidth digit
    "rе",  # Cyrillic е
    "r" * 97,
    None,
    123,
]

CASES = (
    [("host", value) for value in HOSTILE_HOSTS]
    + [("port", value) for value in HOSTILE_PORTS]
    + [("rental_id", value) for value in HOSTILE_RENTAL_IDS]
)


def test_the_corpus_is_big_enough() -> None:
    assert len(CASES) >= 30


def _write(writer: SSHConfigWriter, field: str, value: object) -> None:
    args: dict[str, object] = {"rental_id": "r1", "host": "10.0.0.1", "port": 22}
    args[field] = value
    writer.write(args["rental_id"], args["host"], args["port"])  # type: ignore[arg-type]


@pytest.fixture
def populated(tmp_path: Path) -> SSHConfigWriter:
    """A home with a user config, a key and one existing entry."""
    ssh_dir = tmp_path / "home" / ".ssh"
    ssh_dir.mkdir(parents=True, mode=0o700)
    (ssh_dir / "id_ed25519").write_text("not a real key\n")
    (ssh_dir / "config").write_bytes(b"Host *\n    User nobody\n")
    writer = SSHConfigWriter(ssh_dir)
    writer.write("r1", "10.0.0.1", 22)
    writer.write("other", "gpu.example.com", 2222)
    return writer


@pytest.mark.parametrize(("field", "value"), CASES)
def test_hostile_value_writes_nothing(
    populated: SSHConfigWriter, tmp_path: Path, field: str, value: object
) -> None:
    before = snapshot(tmp_path)
    with pytest.raises(InvalidSSHValue) as info:
        _write(populated, field, value)
    assert info.value.field == field
    assert field in str(info.value)
    assert isinstance(info.value, SSHConfigError)
    assert isinstance(info.value, ValueError)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(("field", "value"), CASES)
def test_hostile_value_in_a_fresh_home_creates_nothing(
    tmp_path: Path, field: str, value: object
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    writer = SSHConfigWriter(home / ".ssh")
    with pytest.raises(InvalidSSHValue):
        _write(writer, field, value)
    assert snapshot(tmp_path) == {"home": ("dir", stat.S_IMODE(home.stat().st_mode))}


def test_hostile_rental_id_in_remove_deletes_nothing(
    populated: SSHConfigWriter, tmp_path: Path
) -> None:
    before = snapshot(tmp_path)
    for value in ["../config", "../gpuoutlet/r1", "r1.conf/..", "", ".lock", "*"]:
        with pytest.raises(InvalidSSHValue) as info:
            populated.remove(value)
        assert info.value.field == "rental_id"
    assert snapshot(tmp_path) == before


def test_error_message_is_bounded_and_says_what_is_allowed() -> None:
    with pytest.raises(InvalidSSHValue) as info:
        validate_host("x" * 10_000)
    message = str(info.value)
    assert len(message) < 400
    assert "DNS name" in message
    assert info.value.value == "x" * 10_000
    with pytest.raises(InvalidSSHValue, match="1 to 65535") as port_info:
        validate_port("22")
    assert port_info.value.allowed


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10.0.0.1", "10.0.0.1"),
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "::1"),
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("localhost", "localhost"),
        ("gpu-1.example.com", "gpu-1.example.com"),
        ("GPU-1.Example.COM", "GPU-1.Example.COM"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("1x.example.com", "1x.example.com"),
        ("a" * 63 + ".com", "a" * 63 + ".com"),
        (".".join(["a" * 63] * 3 + ["b" * 61]), ".".join(["a" * 63] * 3 + ["b" * 61])),
    ],
)
def test_valid_hosts(value: str, expected: str) -> None:
    assert len(value) <= 253
    assert validate_host(value) == expected


@pytest.mark.parametrize("value", [1, 22, 2222, 65535])
def test_valid_ports(value: int) -> None:
    assert validate_port(value) == value


def test_rental_ids_and_aliases() -> None:
    assert alias_for("r-1_a.B") == "gpuoutlet-r-1_a.B"
    assert validate_rental_id("0" * 96) == "0" * 96
    assert validate_alias("gpuoutlet-" + "0" * 96) == "gpuoutlet-" + "0" * 96
    for bad in ["", "-x", "a b", "a\nb", "x" * 129, "ａ"]:
        with pytest.raises(InvalidSSHValue) as info:
            validate_alias(bad)
        assert info.value.field == "alias"


def test_user_and_interval() -> None:
    assert validate_user("root") == "root"
    assert validate_user("ubuntu") == "ubuntu"
    assert validate_user("_svc.x-1") == "_svc.x-1"
    assert validate_server_alive_interval(0) == 0
    for bad_user in ["", "-oProxyCommand=id", "root\nProxyCommand id", "a b", "%u", "u" * 33, 1]:
        with pytest.raises(InvalidSSHValue):
            validate_user(bad_user)
    for bad_interval in [-1, True, 30.0, "30", 86_401]:
        with pytest.raises(InvalidSSHValue):
            validate_server_alive_interval(bad_interval)


def test_config_paths_are_quoted_and_escaped() -> None:
    assert format_config_path("/a/b/id_ed25519", "f", percent_tokens=True) == "/a/b/id_ed25519"
    assert format_config_path("/a b/k", "f", percent_tokens=True) == '"/a b/k"'
    assert format_config_path("/a%h/k", "f", percent_tokens=True) == '"/a%%h/k"'
    assert format_config_path("/a%h/k", "f", percent_tokens=False) == '"/a%h/k"'
    assert format_config_path("/a/~b#c", "f", percent_tokens=True) == '"/a/~b#c"'
    assert format_include_pattern("/x y/g[1]?*", "*.conf", "f") == r'"/x y/g\[1]\?\*/*.conf"'
    assert format_include_pattern("/x/", "*.conf", "f") == "/x/*.conf"


@pytest.mark.parametrize(
    "path",
    [
        "relative/key",
        "~/.ssh/id_ed25519",
        "/a\nProxyCommand id",
        "/a\rb",
        "/a\tb",
        "/a\x00b",
        "/a\x7fb",
        "/a\u2028b",
        '/a"b',
        "/a'b",
        "/a\\b",
        "/a/${HOME}/k",
    ],
)
def test_unsafe_paths_are_rejected(path: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidSSHValue) as info:
        format_config_path(path, "identity_file", percent_tokens=True)
    assert info.value.field == "identity_file"
    if not path.startswith(("relative", "~")):
        before = snapshot(tmp_path)
        with pytest.raises(InvalidSSHValue):
            SSHConfigWriter(tmp_path / ".ssh", identity_file=Path(path))
        with pytest.raises(InvalidSSHValue):
            SSHConfigWriter(Path(path) / ".ssh")
        assert snapshot(tmp_path) == before


def test_hostile_writer_options_write_nothing(tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    for options in [
        {"user": "root\nProxyCommand id"},
        {"user": "-oLocalCommand=id"},
        {"user": ""},
        {"server_alive_interval": "30\nProxyCommand id"},
        {"server_alive_interval": True},
        {"identity_file": tmp_path / "k\nProxyCommand id"},
    ]:
        with pytest.raises(InvalidSSHValue):
            SSHConfigWriter(tmp_path / ".ssh", **options)  # type: ignore[arg-type]
    assert snapshot(tmp_path) == before
