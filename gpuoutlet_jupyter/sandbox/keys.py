"""SSH public keys as the vendor accepts them (sheet 2.5): Ed25519, RSA of 2048 bits or more,
ECDSA P-256/384/521; SHA256 fingerprints as `ssh-keygen -lf` prints them."""

from __future__ import annotations

from dataclasses import dataclass

import asyncssh

from .errors import ApiError, validation_failed

MAX_KEY_NAME_CHARS = 64
MIN_RSA_BITS = 2048
_ACCEPTED = {
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
}
_WEAK_MESSAGE = "Keys must be at least RSA 2048 or Ed25519 (ECDSA P-256/384/521 also work)."


@dataclass(frozen=True)
class PublicKey:
    #: The key line as stored and copied into pods: `<algorithm> <base64> [comment]`.
    line: str
    algorithm: str
    fingerprint: str


def _unparseable(why: str) -> ApiError:
    return validation_failed(
        f"Couldn't parse that as a public key ({why}). Paste one line of your .pub file, "
        "such as the content of ~/.ssh/id_ed25519.pub.",
        {"publicKey": why},
    )


def parse_public_key(text: str) -> PublicKey:
    """The one OpenSSH public key in `text`, or the API's error for it."""
    if "PRIVATE KEY" in text:
        raise _unparseable("that is a private key; never paste it anywhere")
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if len(lines) != 1:
        raise _unparseable("expected exactly one key line" if lines else "it is empty")
    line = lines[0]
    kind = line.split(None, 1)[0]
    if kind == "ssh-dss":
        raise ApiError(
            400, "weak_key", f"DSA keys are refused. {_WEAK_MESSAGE}", {"publicKey": "DSA"}
        )
    try:
        key = asyncssh.import_public_key(line)
    except (ValueError, asyncssh.KeyImportError):
        raise _unparseable("not an OpenSSH public key line") from None
    algorithm = key.algorithm.decode()
    if algorithm not in _ACCEPTED:
        raise ApiError(
            400,
            "weak_key",
            f"{algorithm} keys are not accepted. {_WEAK_MESSAGE}",
            {"publicKey": algorithm},
        )
    if algorithm == "ssh-rsa":
        bits = int(getattr(key.pyca_key, "key_size", 0))
        if bits < MIN_RSA_BITS:
            raise ApiError(
                400,
                "weak_key",
                f"This RSA key has {bits} bits. {_WEAK_MESSAGE}",
                {"publicKey": f"RSA {bits} bits"},
            )
    if kind != algorithm:
        raise _unparseable(f"the line starts with {kind!r} but holds an {algorithm} key")
    return PublicKey(line, algorithm, key.get_fingerprint("sha256"))


def check_key_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_KEY_NAME_CHARS:
        raise validation_failed(
            f"Give the key a name of 1 to {MAX_KEY_NAME_CHARS} characters (e.g. macbook-2026).",
            {"name": f"must be 1 to {MAX_KEY_NAME_CHARS} characters"},
        )
    return name


def key_lines(text: str) -> list[str]:
    """The key lines of an authorized_keys text (comments and blank lines dropped)."""
    return [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
