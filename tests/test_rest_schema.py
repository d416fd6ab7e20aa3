"""The REST contract's files follow its models: the committed JSON Schema, the docs' tables, the routes."""

from __future__ import annotations

import json

from gpuoutlet_jupyter.rest import models, schema
from gpuoutlet_jupyter.server.auth import KernelToken
from gpuoutlet_jupyter.server.env import API_PATH


def test_the_committed_schema_and_docs_are_current() -> None:
    # Fails after a model change until `python -m gpuoutlet_jupyter.rest.schema` is run.
    assert schema.stale() == []
    assert schema.main(["--check"]) == 0


def test_the_schema_holds_every_reply_in_camel_case() -> None:
    data = json.loads(schema.SCHEMA_FILE.read_text(encoding="utf-8"))
    assert set(models.REPLIES) <= set(data["$defs"])
    assert data["properties"] == {name: {"$ref": f"#/$defs/{name}"} for name in models.REPLIES}
    rental = data["$defs"]["RentalView"]["properties"]
    assert {"totalChargedCents", "costCents", "provisioning", "templateId"} <= set(rental)
    assert "total_charged_cents" not in rental
    # A reply with a member the model does not name is refused: the schema is closed.
    assert data["$defs"]["RentalView"]["additionalProperties"] is False


def test_the_documented_routes_are_the_served_ones() -> None:
    from gpuoutlet_jupyter.server.handlers import routes
    from gpuoutlet_jupyter.server.kernel_handlers import kernel_routes

    # routes() only hands the manager to the handlers; none is called here.
    served = {pattern for pattern, _handler, _kwargs in routes(None, KernelToken())}  # type: ignore[arg-type]
    served |= {p for p, _h, _k in kernel_routes(None, KernelToken(), None)}  # type: ignore[arg-type]
    rental = f"{API_PATH}/rentals/(?P<rental_id>[^/]+)"
    create = f"{API_PATH}/creates/(?P<create_id>[^/]+)"
    kernel = f"{API_PATH}/remote-kernels/(?P<wrapper>[^/]+)"
    documented = {
        f"{API_PATH}/{path}".replace(f"{API_PATH}/rentals/ID", rental)
        .replace(f"{API_PATH}/creates/ID", create)
        .replace(f"{API_PATH}/remote-kernels/ID", kernel)
        .replace("/PORT", "/(?P<port>[^/]+)")
        for _m, path, *_ in schema.ROUTES
    }
    assert served == documented


def test_an_error_reply_validates() -> None:
    reply = models.ErrorReply.model_validate(
        {
            "error": {
                "code": "insufficient_balance",
                "message": "m",
                "neededCents": 280,
                "availableCents": 1,
            }
        }
    )
    assert reply.to_json()["error"]["neededCents"] == 280
