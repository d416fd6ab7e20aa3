"""The rental request's client-side rules and the response models' tolerance."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from gpuoutlet_jupyter.api import Rental, RentalRequest, RequestValidationError, format_cents


def test_request_defaults_and_wire_shape() -> None:
    request = RentalRequest.build(family_id="rtx-4090", gpu_count=2, name="alice/exp-42")
    assert request.to_wire() == {
        "familyId": "rtx-4090",
        "gpuCount": 2,
        "templateId": "ubuntu-24-04",
        "name": "alice/exp-42",
    }


def test_request_accepts_wire_names() -> None:
    request = RentalRequest.build(familyId="h100-80gb", gpuCount=8, autoStopAfterHours=1.5)
    assert request.gpu_count == 8
    assert request.to_wire()["autoStopAfterHours"] == 1.5


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({}, "familyId", "is required"),
        ({"family_id": ""}, "familyId", "at least 1"),
        ({"family_id": " rtx-4090"}, "familyId", "whitespace"),
        ({"family_id": "rtx-4090", "gpu_count": 3}, "gpuCount", "one of 1, 2, 4, 8"),
        ({"family_id": "rtx-4090", "gpu_count": 0}, "gpuCount", "one of 1, 2, 4, 8"),
        ({"family_id": "rtx-4090", "gpu_count": "1"}, "gpuCount", "whole number"),
        ({"family_id": "rtx-4090", "gpu_count": 1.0}, "gpuCount", "whole number"),
        ({"family_id": "rtx-4090", "gpu_count": True}, "gpuCount", "whole number"),
        ({"family_id": "rtx-4090", "name": "x" * 65}, "name", "at most 64"),
        (
            {"family_id": "rtx-4090", "auto_stop_after_hours": 0},
            "autoStopAfterHours",
            "greater than 0",
        ),
        (
            {"family_id": "rtx-4090", "auto_stop_after_hours": -2},
            "autoStopAfterHours",
            "greater than 0",
        ),
        (
            {"family_id": "rtx-4090", "auto_stop_after_hours": float("inf")},
            "autoStopAfterHours",
            "finite",
        ),
        ({"family_id": "rtx-4090", "gpus": 2}, "gpus", "not a field"),
    ],
)
def test_request_rules(fields: dict[str, object], field: str, says: str) -> None:
    with pytest.raises(RequestValidationError) as info:
        RentalRequest.build(**fields)
    assert any(f == field and says in problem for f, problem in info.value.problems), (
        info.value.problems
    )
    assert "Nothing was sent" in str(info.value)


def test_name_of_exactly_64_characters_is_fine() -> None:
    assert RentalRequest.build(family_id="rtx-4090", name="n" * 64).name == "n" * 64


def _rental(**extra: object) -> Rental:
    data: dict[str, object] = {
        "id": "rent_01H",
        "status": "provisioning",
        "host": None,
        "port": None,
        "pricePerHourCents": 65,
        "startedAt": "2026-06-07T08:14:22Z",
    }
    data.update(extra)
    return Rental.model_validate(data)


def test_rental_parses_the_seed_example_and_ignores_unknown_fields() -> None:
    rental = _rental(somethingNew={"x": 1}, status="running", host="10.0.0.7", port=2201)
    assert rental.is_ready
    assert not rental.is_final
    assert rental.started_at == datetime(2026, 6, 7, 8, 14, 22, tzinfo=timezone.utc)


def test_rental_keeps_a_status_it_does_not_know() -> None:
    rental = _rental(status="paused")
    assert rental.status == "paused"
    assert not rental.is_ready


def test_rental_refuses_a_port_that_is_not_an_integer() -> None:
    with pytest.raises(ValueError, match="port"):
        _rental(port="22")


def test_template_must_be_one_of_the_six() -> None:
    assert RentalRequest.build(family_id="rtx-4090", template_id="ollama").template_id == "ollama"
    with pytest.raises(RequestValidationError) as info:
        RentalRequest.build(family_id="rtx-4090", template_id="pytroch")
    ((field, problem),) = info.value.problems
    assert field == "templateId"
    assert "ubuntu-24-04, pytorch, vllm, ollama, a1111, text-gen-webui" in problem


def test_preview_body_is_the_quote_fields_only() -> None:
    request = RentalRequest.build(family_id="b200", gpu_count=8, name="n", region="EU")
    assert request.preview_wire() == {
        "familyId": "b200",
        "gpuCount": 8,
        "templateId": "ubuntu-24-04",
        "region": "EU",
    }


def test_cost_is_the_apis_own_number() -> None:
    # No arithmetic of ours: the rental carries what the API charged (None when not sent).
    assert _rental().total_charged_cents is None
    assert _rental(totalChargedCents=47).total_charged_cents == 47
    with pytest.raises(ValueError, match="totalChargedCents"):
        _rental(totalChargedCents=4.7)


def test_format_cents() -> None:
    assert format_cents(65) == "$0.65"
    assert format_cents(123456) == "$1,234.56"
    assert format_cents(-5) == "-$0.05"
    assert format_cents(100, "EUR") == "1.00 EUR"
