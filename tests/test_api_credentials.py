"""The credentials file a sign-in writes: 0600 in a 0700 folder, atomic, a symlink followed, the
manual format read back; removed only when it holds the session signed out; the session only
ever sent to the API the file names."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from gpuoutlet_jupyter.api import ConfigurationError, Settings
from gpuoutlet_jupyter.api.credentials import Removed, remove_session, save_session, saved_sid
from gpuoutlet_jupyter.api.settings import read_credentials

SID = "sid-written-by-a-sign-in-0123456789abcdef"
URL = "http://127.0.0.1:8765"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_sign_in_writes_the_manual_format_private_and_whole(tmp_path: Path) -> None:
    path = tmp_path / "config" / "gpuoutlet" / "credentials"
    assert save_session(path, SecretStr(SID), URL) == path
    assert _mode(path) == 0o600 and _mode(path.parent) == 0o700
    assert read_credentials(path) == {"sid": SID, "api_url": URL}
    settings = Settings.from_env({}, credentials_file=path)
    assert settings.require_sid() == SID and settings.api_url == URL
    assert settings.sid_source == str(path)
    # No temporary file is left beside it.
    assert sorted(p.name for p in path.parent.iterdir()) == ["credentials"]
    # A second sign-in replaces the file (a new inode: never half-written in place).
    inode = path.stat().st_ino
    save_session(path, SecretStr(SID + "2"), URL)
    assert path.stat().st_ino != inode and saved_sid(path) == SecretStr(SID + "2")


def test_a_write_that_fails_midway_leaves_the_old_session_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "credentials"
    save_session(path, SecretStr(SID), URL)

    def disk_full(fd: int) -> None:  # a full disk cannot be had for real here
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("gpuoutlet_jupyter.api.credentials.os.fsync", disk_full)
    with pytest.raises(ConfigurationError, match="No space left on device") as info:
        save_session(path, SecretStr(SID + "-new"), URL)
    assert SID not in str(info.value)
    # The file still holds the whole old session; no temporary file is left beside it.
    assert read_credentials(path) == {"sid": SID, "api_url": URL}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["credentials"]


def test_a_file_others_could_read_becomes_private_again(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    path.write_text("sid=old\n")
    path.chmod(0o644)
    save_session(path, SecretStr(SID), URL)
    assert _mode(path) == 0o600


def test_a_symlinked_file_is_followed_not_replaced(tmp_path: Path) -> None:
    target = tmp_path / "secrets" / "gpuoutlet"
    target.parent.mkdir()
    target.write_text("sid=old\n")
    target.chmod(0o600)
    link = tmp_path / "credentials"
    link.symlink_to(target)
    assert save_session(link, SecretStr(SID), URL) == target
    assert link.is_symlink() and read_credentials(target)["sid"] == SID
    assert remove_session(link, SecretStr(SID)) is Removed.REMOVED
    assert link.is_symlink() and not target.exists()


def test_a_place_that_cannot_be_written_says_what_to_do_not_the_sid(tmp_path: Path) -> None:
    blocker = tmp_path / "config"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(ConfigurationError, match="GPUOUTLET_CREDENTIALS_FILE") as info:
        save_session(blocker / "credentials", SecretStr(SID), URL)
    assert SID not in str(info.value) and "lasts until this process ends" in str(info.value)


def test_a_sign_out_removes_only_its_own_session(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    assert remove_session(path, SecretStr(SID)) is Removed.ABSENT
    save_session(path, SecretStr("another-session-0123456789"), URL)
    assert remove_session(path, SecretStr(SID)) is Removed.OTHER_SESSION
    assert path.exists()
    save_session(path, SecretStr(SID), URL)
    assert remove_session(path, SecretStr(SID)) is Removed.REMOVED
    assert not path.exists()


def test_the_files_session_goes_only_to_the_api_the_file_names(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    save_session(path, SecretStr(SID), URL)
    other = Settings.from_env({"GPUOUTLET_API_URL": "https://gpuoutlet.ai"}, credentials_file=path)
    assert other.api_url == "https://gpuoutlet.ai" and other.sid is None
    same = Settings.from_env({"GPUOUTLET_API_URL": URL + "/"}, credentials_file=path)
    assert same.require_sid() == SID
    # A host's own setting wins over both, with the same rule.
    assert Settings.from_env({}, credentials_file=path, api_url="https://x.test").sid is None
    # A file written by hand without api_url keeps working with any API.
    path.write_text(f"sid={SID}\n")
    path.chmod(0o600)
    assert Settings.from_env({"GPUOUTLET_API_URL": URL}, credentials_file=path).sid is not None
