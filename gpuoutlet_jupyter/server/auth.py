"""The kernel token: a second credential, accepted only by the gpuoutlet handlers (stdlib only)."""

from __future__ import annotations

import hmac
import secrets

#: Authorization schemes accepted with the kernel token (compared case-insensitively).
_SCHEMES = frozenset({"token", "bearer"})


class KernelToken:
    """A random token handed to the kernels this server starts (through their environment).

    It lets code in a kernel call the gpuoutlet REST API without the user's Jupyter token. It is
    checked only in the ``Authorization`` header (never a query argument, which ends up in logs),
    in constant time, and its value never shows in a repr.
    """

    def __init__(self, value: str | None = None) -> None:
        self._value = value if value is not None else secrets.token_urlsafe(32)
        if len(self._value) < 16:
            raise ValueError("a kernel token must have at least 16 characters")

    @property
    def value(self) -> str:
        """The secret itself, for the environment of kernels only."""
        return self._value

    def matches(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header value is ``token <this token>``."""
        if not authorization:
            return False
        scheme, _, credential = authorization.strip().partition(" ")
        if scheme.lower() not in _SCHEMES:
            return False
        return hmac.compare_digest(
            credential.strip().encode("utf-8", "surrogateescape"), self._value.encode("utf-8")
        )

    def __repr__(self) -> str:
        return "KernelToken(<hidden>)"
