"""Errors keep the server's OperationOutcome and the request, and never leak query values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fhirbridge.fhir import InvalidResource, Issue, Outcome, RequestInfo


def test_outcome_keeps_severity_code_diagnostics_and_expression(
    load_json: Callable[[str], dict[str, Any]],
) -> None:
    outcome = Outcome.from_json(load_json("outcome_invalid_goal.json"))

    assert outcome is not None
    assert outcome.issues[0] == Issue(
        severity="error",
        code="required",
        diagnostics="Goal.lifecycleStatus: minimum required = 1, but only found 0",
        expression=("Goal.lifecycleStatus",),
    )


def test_outcome_falls_back_to_details_text_for_diagnostics(
    load_json: Callable[[str], dict[str, Any]],
) -> None:
    outcome = Outcome.from_json(load_json("outcome_invalid_goal.json"))

    assert outcome is not None
    assert outcome.issues[1].diagnostics == "Unknown code in Goal.category"


def test_outcome_errors_leave_out_warnings(load_json: Callable[[str], dict[str, Any]]) -> None:
    outcome = Outcome.from_json(load_json("outcome_invalid_goal.json"))

    assert outcome is not None
    assert [i.code for i in outcome.errors] == ["required"]


def test_a_body_that_is_not_an_operation_outcome_gives_no_outcome() -> None:
    assert Outcome.from_json({"resourceType": "Patient"}) is None
    assert Outcome.from_json("<html>Bad gateway</html>") is None


def test_request_info_masks_query_values_when_printed() -> None:
    info = RequestInfo("GET", "http://fhir.test/fhir/Patient?name=Smith&birthdate=1970-01-01")

    assert str(info) == "GET http://fhir.test/fhir/Patient?name=…&birthdate=…"
    assert "Smith" not in str(info)


def test_status_error_message_names_status_request_and_first_diagnostics(
    load_json: Callable[[str], dict[str, Any]],
) -> None:
    error = InvalidResource(
        "rejected",
        request=RequestInfo("POST", "http://fhir.test/fhir/Goal"),
        status=422,
        outcome=Outcome.from_json(load_json("outcome_invalid_goal.json")),
    )

    assert str(error) == (
        "HTTP 422: rejected: Goal.lifecycleStatus: minimum required = 1, but only found 0 "
        "(POST http://fhir.test/fhir/Goal)"
    )
