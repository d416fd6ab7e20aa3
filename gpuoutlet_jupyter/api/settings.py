"""Client settings: the one place that reads GPUOUTLET_* variables and the credentials file."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from pydantic import SecretStr

from .errors import ConfigurationError

DEFAULT_API_URL = "https://gpuoutlet.ai"
ENV_API_URL = "GPUOUTLET_API_URL"
ENV_SID = "GPUOUTLET_SID"
ENV_CREDENTIALS = "GPUOUTLET_CREDENTIALS_FILE"
#: Where a sid taken from the environment came from, for messages (never the value).
ENV_SID_SOURCE = f"the {ENV_SID} environment variable"
#: How a person signs in from Jupyter, for the messages that ask for a session.
SIGN_IN_HOW = (
    "Sign in from Jupyter: “Sign in to gpuoutlet” in the JupyterLab sidebar, or "
    "`%gpu_login you@example.com` in a notebook (gpuoutlet emails a 6-digit code; no cookie "
    "to copy)"
)


def default_credentials_file(environ: Mapping[str, str] | None = None) -> Path:
    """`$XDG_CONFIG_HOME/gpuoutlet/credentials`, i.e. `~/.config/gpuoutlet/credentials` by default."""
    env = os.environ if environ is None else environ
    if env.get(ENV_CREDENTIALS):
        return Path(env[ENV_CREDENTIALS]).expanduser()
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "gpuoutlet" / "credentials"


#: What a cookie value may hold (RFC 6265 cookie-octet): printable ASCII but for the space, the
#: double quote, the comma, the semicolon and the backslash.
_COOKIE_OCTETS = frozenset(chr(c) for c in range(0x21, 0x7F)) - frozenset('";,\\')


def check_sid(sid: str, source: str | None) -> None:
    """Refuse a sid that no session cookie can be, naming where it came from but never its value.

    A line break would end the Cookie header (httpx then echoes the value in its error), and
    a curly quote pasted with the value cannot be sent at all (UnicodeEncodeError): both are
    caught here, where the sid is read, with a message that says what to do.
    """
    bad = next((ch for ch in sid if ch not in _COOKIE_OCTETS), None)
    if bad is None:
        return
    if bad in "\r\n":
        what = "a line break"
    elif not bad.isascii():
        what = "a character outside ASCII (curly quotes from a copy, perhaps)"
    elif bad in " \t":
        what = "a space or a tab"
    elif bad.isprintable():
        what = "a quote, comma, semicolon or backslash"
    else:
        what = "a control character"
    raise ConfigurationError(
        f"The gpuoutlet session (sid) from {source or 'the given setting'} cannot be a session "
        f"cookie: it contains {what} at character {sid.index(bad) + 1} of {len(sid)}. A sid is "
        "printable ASCII without spaces or quotes. Copy the `sid` cookie's value again from the "
        "website (your browser's developer tools, Application → Cookies) and set it once more. "
        "The value is not shown here: it is a secret."
    )


@dataclass(frozen=True)
class Settings:
    """Where the API is and how to authenticate. The sid is a SecretStr: it never shows in a repr."""

    api_url: str = DEFAULT_API_URL
    sid: SecretStr | None = None
    timeout_seconds: float = 30.0
    # Where the sid came from, for messages ("from GPUOUTLET_SID", "from <file>"); never the value.
    sid_source: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        # Every way to a Settings (environment, credentials file, a trait, an argument) ends here.
        if self.sid is not None:
            check_sid(self.sid.get_secret_value(), self.sid_source)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        credentials_file: Path | None = None,
        api_url: str | None = None,
    ) -> Settings:
        """Settings from GPUOUTLET_API_URL / GPUOUTLET_SID, falling back to the credentials file.

        ``api_url`` (a host's own setting) comes before both. The file's sid is used only for
        the API the file names (a sign-in writes both): a session is never sent to another.
        """
        env = os.environ if environ is None else environ
        path = credentials_file or default_credentials_file(env)
        from_file = read_credentials(path) if path.exists() else {}
        url = normalize_url(
            api_url or env.get(ENV_API_URL) or from_file.get("api_url") or DEFAULT_API_URL
        )
        file_url = from_file.get("api_url")
        if env.get(ENV_SID):
            sid, source = env[ENV_SID], ENV_SID_SOURCE
        elif from_file.get("sid") and (not file_url or normalize_url(file_url) == url):
            sid, source = from_file["sid"], str(path)
        else:
            return cls(api_url=url)
        return cls(api_url=url, sid=SecretStr(sid.strip()), sid_source=source)

    def with_sid(self, sid: str, source: str = "explicit argument") -> Settings:
        """A copy carrying another sid."""
        return replace(self, sid=SecretStr(sid), sid_source=source)

    def require_sid(self) -> str:
        """The sid's value, for the Cookie header only; raises a how-to-fix error when there is none."""
        if self.sid is None or not self.sid.get_secret_value():
            raise ConfigurationError(
                f"Not signed in to gpuoutlet at {self.api_url}. {SIGN_IN_HOW}. Scripts may "
                f"set {ENV_SID}=<sid> instead, or keep `sid=<sid>` in "
                f"{default_credentials_file()} (chmod 600)."
            )
        return self.sid.get_secret_value()


def api_url_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """GPUOUTLET_API_URL when it is set (for a host whose other settings could not be read)."""
    env = os.environ if environ is None else environ
    return env.get(ENV_API_URL) or None


def normalize_url(url: str) -> str:
    """Strip whitespace and trailing slashes; insist on http(s) so a typo fails here, not later."""
    cleaned = url.strip().rstrip("/")
    if not cleaned.startswith(("http://", "https://")):
        raise ConfigurationError(
            f"The rentals API URL {cleaned!r} must start with https:// (or http:// for a local "
            f"sandbox). Set {ENV_API_URL} to a full URL such as {DEFAULT_API_URL}."
        )
    return cleaned


def read_credentials(path: Path) -> dict[str, str]:
    """Read `key=value` lines (sid, api_url) or a bare sid; refuse a file others can read."""
    try:
        info = path.stat()
    except OSError as exc:
        raise ConfigurationError(
            f"Cannot read the credentials file {path}: {exc.strerror}."
        ) from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(
            f"The credentials file {path} can be read by other users (mode "
            f"{stat.S_IMODE(info.st_mode):04o}), so it was not used. It holds your session: "
            f"run `chmod 600 {path}` and try again."
        )
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise ConfigurationError(
            f"The credentials file {path} belongs to another user, so it was not used. "
            "Create your own with `sid=<sid>` and mode 0600."
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"Cannot read the credentials file {path}: {exc}.") from None
    values: dict[str, str] = {}
    lines = [
        ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")
    ]
    if len(lines) == 1 and "=" not in lines[0]:
        return {"sid": lines[0]}
    for number, line in enumerate(lines, 1):
        key, sep, value = line.partition("=")
        key = key.strip().lower()
        if not sep or key not in {"sid", "api_url"}:
            raise ConfigurationError(
                f"The credentials file {path} has an unrecognised line {number} (expected "
                "`sid=<sid>` or `api_url=<url>`). Fix that line and try again."
            )
        values[key] = value.strip().strip("\"'")
    return values
