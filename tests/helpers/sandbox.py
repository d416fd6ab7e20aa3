"""Small helpers shared by the sandbox's own tests (shapes and ids of the vendor's API)."""

from __future__ import annotations

import re
from typing import Any

import httpx

CROCKFORD_ULID = r"[0-9A-HJKMNP-TV-Z]{26}"
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\Z")
RTX_4090 = {"familyId": "rtx-4090", "gpuCount": 1}


def is_id(value: Any, prefix: str) -> bool:
    """`prefix_` and a 26-character Crockford ULID (the sheet's ids)."""
    return isinstance(value, str) and re.fullmatch(f"{prefix}_{CROCKFORD_ULID}", value) is not None


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The vendor's error shape: {"error": code, "message": …, "details"?: {…}}."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["error"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    assert set(body) <= {"error", "message", "details"}
    if "details" in body:
        assert isinstance(body["details"], dict)
    return body


def rent(http: httpx.Client, **body: Any) -> dict[str, Any]:
    rental: dict[str, Any] = ok(http.post("/v1/rentals", json={**RTX_4090, **body}))
    return rental
