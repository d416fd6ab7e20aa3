"""API errors: one exception type that renders as `{"error": {"code", "message", ...}}`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import JSONResponse


class ApiError(Exception):
    """An error response: HTTP status, stable code, a message saying what to do, extra fields."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.extra = extra

    def response(self) -> JSONResponse:
        return error_response(self.status, self.code, self.message, self.headers, **self.extra)


def error_response(
    status: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, **extra}}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def validation_error(field: str, message: str) -> ApiError:
    return ApiError(400, "validation_error", message, field=field)


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", what)


UNAUTHENTICATED_MESSAGE = (
    "Missing or unknown session cookie `sid`. Send the sid of your account as a cookie "
    "(`--cookie sid=$SID`); the sandbox prints it when it starts."
)
