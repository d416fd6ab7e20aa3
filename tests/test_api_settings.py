"""Settings: environment first, then a 0600 credentials file; the sid never shows."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from gpuoutlet_jupyter.api import ConfigurationError, RentalsClient, Settings

SECRET = "sid-value-that-must-never-leak-0123456789"


def _creds(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "credentials"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_defaults_without_anything(tmp_path: Path) -> None:
    settings = Settings.from_env({}, credentials_file=tmp_path / "missing")
    assert settings.api_url == "https://gpuoutlet.ai"
    assert settings.sid is None
    with pytest.raises(ConfigurationError, match="GPUOUTLET_SID"):
        settings.require_sid()


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    path = _creds(tmp_path, "sid=from-file\napi_url=http://127.0.0.1:1/\n")
    settings = Settings.from_env({"GPUOUTLET_SID": SECRET}, credentials_file=path)
    assert settings.require_sid() == SECRET
    assert settings.api_url == "http://127.0.0.1:1"
    assert settings.sid_source == "the GPUOUTLET_SID environment variable"


def test_credentials_file_key_value_and_bare(tmp_path: Path) -> None:
    keyed = Settings.from_env({}, credentials_file=_creds(tmp_path, "# mine\nsid = 'abc'\n"))
    assert keyed.require_sid() == "abc"
    bare = Settings.from_env({}, credentials_file=_creds(tmp_path, "xyz\n"))
    assert bare.require_sid() == "xyz"


def test_credentials_file_location_follows_xdg(tmp_path: Path) -> None:
    (tmp_path / "gpuoutlet").mkdir()
    _creds(tmp_path / "gpuoutlet", f"sid={SECRET}\n")
    settings = Settings.from_env({"XDG_CONFIG_HOME": str(tmp_path)})
    assert settings.require_sid() == SECRET


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = _creds(tmp_path, f"sid={SECRET}\n", mode)
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({}, credentials_file=path)
    message = str(info.value)
    assert f"chmod 600 {path}" in message
    assert f"{mode:04o}" in message
    assert SECRET not in message


def test_a_bad_line_is_named_without_echoing_it(tmp_path: Path) -> None:
    path = _creds(tmp_path, f"sid=x\ntoken={SECRET}\n")
    with pytest.raises(ConfigurationError, match="line 2") as info:
        Settings.from_env({}, credentials_file=path)
    assert SECRET not in str(info.value)


def test_url_must_be_http(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="must start with https://"):
        Settings.from_env({"GPUOUTLET_API_URL": "gpuoutlet.ai"}, credentials_file=tmp_path / "x")


def test_sid_in_no_repr_str_or_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings.from_env({"GPUOUTLET_SID": SECRET}, credentials_file=tmp_path / "x")
    caplog.set_level(logging.DEBUG)
    client = RentalsClient(settings, api_url="http://127.0.0.1:9")
    try:
        logging.getLogger("test").info("settings %s %r client %r", settings, settings, client)
        for text in (repr(settings), str(settings), repr(client), caplog.text):
            assert SECRET not in text
    finally:
        client.close()


def test_client_without_sid_says_how_to_configure(tmp_path: Path) -> None:
    settings = Settings.from_env({}, credentials_file=tmp_path / "x")
    # Made without a sid (signing in needs none), it refuses every call that needs a session,
    # before sending anything.
    with RentalsClient(settings) as client, pytest.raises(ConfigurationError, match="credentials"):
        client.balance()


def test_other_owner_is_refused(tmp_path: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("needs root to chown")
    path = _creds(tmp_path, f"sid={SECRET}\n")
    os.chown(path, 65534, 65534)
    with pytest.raises(ConfigurationError, match="another user"):
        Settings.from_env({}, credentials_file=path)


#: Sids a person may paste by mistake; each hides SECRET so a test can tell it was not echoed.
BAD_SIDS = {
    "line break": f"{SECRET}\nX-Injected: yes",
    "curly quotes": f"\u201c{SECRET}\u201d",
    "non-ASCII": f"{SECRET}\u00e9",
    "space": f"{SECRET[:10]} {SECRET[10:]}",
    "tab": f"{SECRET}\tx",
    "NUL": f"{SECRET}\x00",
    "semicolon": f"{SECRET}; other=1",
    "comma": f"{SECRET},x",
    "double quote": f'{SECRET}"x',
    "backslash": f"{SECRET}\\x",
    "DEL": f"{SECRET}\x7f",
}


def _assert_not_echoed(message: str) -> None:
    assert SECRET not in message
    assert SECRET[:8] not in message and SECRET[-8:] not in message


@pytest.mark.parametrize("sid", BAD_SIDS.values(), ids=BAD_SIDS.keys())
def test_a_sid_that_is_not_a_cookie_value_is_refused_from_the_environment(
    tmp_path: Path, sid: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({"GPUOUTLET_SID": sid}, credentials_file=tmp_path / "x")
    message = str(info.value)
    assert "GPUOUTLET_SID environment variable" in message
    assert "copy the `sid` cookie" in message.lower()
    _assert_not_echoed(message)


#: In a file a line break ends the line: the rest is a bad second line, refused as such.
FILE_BAD_SIDS = {name: sid for name, sid in BAD_SIDS.items() if "\n" not in sid}


@pytest.mark.parametrize("sid", FILE_BAD_SIDS.values(), ids=FILE_BAD_SIDS.keys())
def test_a_sid_that_is_not_a_cookie_value_is_refused_from_the_credentials_file(
    tmp_path: Path, sid: str
) -> None:
    path = tmp_path / "credentials"
    path.write_bytes(f"sid={sid}\n".encode())
    path.chmod(0o600)
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({}, credentials_file=path)
    message = str(info.value)
    assert str(path) in message
    _assert_not_echoed(message)


@pytest.mark.parametrize("sid", BAD_SIDS.values(), ids=BAD_SIDS.keys())
def test_a_sid_that_is_not_a_cookie_value_is_refused_however_it_is_given(sid: str) -> None:
    for make in (
        lambda: Settings(sid=SecretStr(sid), sid_source="a test"),
        lambda: Settings().with_sid(sid, "a test"),
        lambda: RentalsClient(api_url="http://127.0.0.1:9", sid=sid),
    ):
        with pytest.raises(ConfigurationError) as info:
            make()
        _assert_not_echoed(str(info.value))


def test_a_good_sid_of_every_cookie_character_is_accepted(tmp_path: Path) -> None:
    allowed = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '";,\\')
    settings = Settings.from_env({"GPUOUTLET_SID": allowed}, credentials_file=tmp_path / "x")
    assert settings.require_sid() == allowed
