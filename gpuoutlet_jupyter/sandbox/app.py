"""The ASGI app: the /v1 routes and the /sandbox controls behind the Gate, the error
handlers that make every error the vendor's shape, and the OpenAPI document."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from .._version import __version__
from .controls import controls
from .errors import ApiError, validation_failed
from .gate import Gate
from .routes import v1
from .runtime import Sandbox

logger = logging.getLogger(__name__)

_EXAMPLE_BODY = '{"familyId": "rtx-4090", "gpuCount": 1}'
_TYPE_WORDS = {
    "string_type": "must be a string",
    "float_type": "must be a number",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "literal_error": "is not one of the allowed values",
    "enum": "is not one of the allowed values",
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "dict_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
}


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _problem(error: dict[str, Any]) -> tuple[str, str]:
    """(field, what is wrong with it) for one pydantic/FastAPI error."""
    kind = error["type"]
    loc = [str(part) for part in error.get("loc", ())]
    path = loc[1:] if loc and loc[0] in ("body", "query", "path", "header", "cookie") else loc
    field = ".".join(path) if path else "body"
    if kind == "json_invalid":
        detail = error.get("ctx", {}).get("error", "invalid JSON")
        return "body", f"not valid JSON ({detail}); send an object such as {_EXAMPLE_BODY}"
    if field == "body":
        return "body", "must be a JSON object" if kind != "missing" else "is required"
    if kind == "value_error":
        return field, str(error.get("ctx", {}).get("error", error["msg"]))
    words = _TYPE_WORDS.get(kind)
    if words is None:
        words = str(error["msg"]).rstrip(".").lower()
    if kind != "missing" and "input" in error:
        words += f" (got {_shown(error['input'])})"
    return field, words


async def _on_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details: dict[str, str] = {}
    for error in exc.errors() or [{"type": "missing", "loc": ("body",)}]:
        field, problem = _problem(dict(error))
        details.setdefault(field, problem)
    listed = "; ".join(f"{field} {problem}" for field, problem in details.items())
    return validation_failed(f"The request is not valid: {listed}.", details).response()


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    method, path = request.method, request.url.path
    if exc.status_code in (404, 405):
        # The vendor's statuses: an unknown path or method is "not found" (no 405).
        return ApiError(
            404, "not_found", f"No such endpoint: {method} {path}. GET /openapi.json lists them."
        ).response()
    if exc.status_code == 400:
        return validation_failed(
            "The request body could not be decoded; send UTF-8 JSON.",
            {"body": "not UTF-8 JSON"},
        ).response()
    code = "internal_error" if exc.status_code >= 500 else "validation_failed"
    return ApiError(exc.status_code, code, str(exc.detail)).response()


async def _on_crash(request: Request, exc: Exception) -> JSONResponse:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return ApiError(
        500,
        "internal_error",
        "Something went wrong on our side (it is in the sandbox's log). Retry; if it "
        "persists, report it with the log.",
    ).response()


def create_app(sandbox: Sandbox) -> FastAPI:
    """The ASGI app; its lifespan starts the worker and closes the sandbox on shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        sandbox.start()
        try:
            yield
        finally:
            await sandbox.close()

    app = FastAPI(
        title="gpuoutlet API (sandbox)",
        version=__version__,
        description=(
            "A local implementation of the gpuoutlet API as its published reference "
            "describes it. Sign in with POST /v1/auth/request-code and /v1/auth/verify-code "
            "(the code is in the sandbox's log and at GET /sandbox/mailbox); every other /v1 "
            'endpoint needs the `sid` cookie. Errors are `{"error": "code", "message": "…", '
            '"details": {…}}`. 100 requests a minute and 1,000 an hour per session.'
        ),
        lifespan=lifespan,
    )
    app.state.sandbox = sandbox
    app.state.checkouts = {}
    app.include_router(v1)
    app.include_router(controls)
    app.add_middleware(Gate, sandbox=sandbox)
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_crash)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = _without_default_422(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _without_default_422(schema: dict[str, Any]) -> dict[str, Any]:
    """FastAPI documents a 422 for every operation with parameters; ours validate with 400."""
    default_ref = "#/components/schemas/HTTPValidationError"
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            response = operation.get("responses", {}).get("422")
            if response is None:
                continue
            ref = response.get("content", {}).get("application/json", {}).get("schema", {})
            if ref.get("$ref") == default_ref:
                del operation["responses"]["422"]
    schemas = schema.get("components", {}).get("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    return schema
