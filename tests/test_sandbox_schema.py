"""Schemathesis against the sandbox's own /openapi.json: no 5xx, responses as documented."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gpuoutlet_jupyter.sandbox.testing import SandboxProcess

# positive_data_acceptance is left out on purpose: a valid create may still be a 403 or a
# model_unavailable, a valid sign-in code request a 429.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
OPERATIONS = [
    ("POST", "/v1/auth/request-code"),
    ("POST", "/v1/auth/verify-code"),
    ("POST", "/v1/auth/logout"),
    ("GET", "/v1/auth/me"),
    ("POST", "/v1/rentals/preview"),
    ("POST", "/v1/rentals"),
    ("GET", "/v1/rentals"),
    ("GET", "/v1/rentals/{rental_id}"),
    ("POST", "/v1/rentals/{rental_id}/stop"),
    ("GET", "/v1/rentals/{rental_id}/meter"),
    ("GET", "/v1/catalog/listings"),
    ("GET", "/v1/catalog/facets"),
    ("GET", "/v1/billing/balance"),
    ("GET", "/v1/billing/ledger"),
    ("GET", "/v1/billing/invoices"),
    ("GET", "/v1/billing/invoices/{invoice_id}"),
    ("GET", "/v1/billing/invoices/{invoice_id}/pay-url"),
    ("POST", "/v1/billing/checkout"),
    ("POST", "/v1/billing/setup-intent"),
    ("GET", "/v1/billing/card"),
    ("DELETE", "/v1/billing/card"),
    ("PUT", "/v1/billing/auto-topup"),
    ("GET", "/v1/ssh-keys"),
    ("POST", "/v1/ssh-keys"),
    ("DELETE", "/v1/ssh-keys/{key_id}"),
]
#: Operations whose inputs a client can get wrong in ways worth fuzzing.
NEGATIVE = [
    ("POST", "/v1/rentals", 60),
    ("POST", "/v1/rentals/preview", 30),
    ("GET", "/v1/rentals", 30),
    ("GET", "/v1/catalog/listings", 30),
    ("POST", "/v1/auth/request-code", 20),
    ("POST", "/v1/ssh-keys", 20),
]


@pytest.fixture(scope="module")
def api_schema(sandbox: SandboxProcess) -> Any:
    # Loaded in the test, not through schemathesis.pytest.from_fixture: that lazy loader
    # touches pytest internals (Function._nodeid) that pytest 9 no longer has.
    return schemathesis.openapi.from_url(f"{sandbox.url}/openapi.json").include(path_regex="^/v1/")


def test_the_document_lists_exactly_the_v1_operations(api_schema: Any) -> None:
    found = sorted((op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations())
    assert found == sorted(OPERATIONS)


CASES = [(method, path, GenerationMode.POSITIVE, 15) for method, path in OPERATIONS] + [
    (method, path, GenerationMode.NEGATIVE, examples) for method, path, examples in NEGATIVE
]


@pytest.mark.parametrize(
    ("method", "path", "mode", "examples"),
    CASES,
    ids=[f"{m} {p} {mode.value}" for m, p, mode, _ in CASES],
)
def test_v1_conforms_to_its_openapi_document(
    sandbox: SandboxProcess,
    api_schema: Any,
    method: str,
    path: str,
    mode: GenerationMode,
    examples: int,
) -> None:
    account = sandbox.create_account(balance_cents=1_000_000)  # creates may succeed or not
    operation = api_schema[path][method]

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    # The sid is fixed on the strategy, so negative cases never "mutate" the session away.
    @given(case=operation.as_strategy(generation_mode=mode, cookies={"sid": account.sid}))
    def check(case: Any) -> None:
        case.call_and_validate(checks=CHECKS)

    check()
