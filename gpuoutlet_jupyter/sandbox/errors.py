"""API errors as the vendor sends them: `{"error": "code", "message": "…", "details": {…}}`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import JSONResponse

#: The exact 401 body of the sheet (1.2).
UNAUTHORIZED_BODY = {"error": "unauthorized", "message": "Not signed in"}


class ApiError(Exception):
    """An error reply: HTTP status, the code of the sheet's table, a message, optional details."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Mapping[str, Any] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = dict(details) if details else None
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def validation_failed(message: str, details: Mapping[str, str]) -> ApiError:
    """400 `validation_failed`: `details` maps each bad field to what is wrong with it."""
    return ApiError(400, "validation_failed", message, details)


def rental_not_found(rental_id: str) -> ApiError:
    return ApiError(
        404,
        "rental_not_found",
        f"No rental {rental_id} on your account. GET /v1/rentals lists yours.",
        {"rentalId": rental_id},
    )
