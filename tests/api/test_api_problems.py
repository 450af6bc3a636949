"""Errors are RFC 9457 problem documents."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.support import Tokens, care_manager


def test_a_schema_violation_is_a_problem_naming_each_field(
    client: TestClient, tokens: Tokens
) -> None:
    response = client.post(
        "/time-entries",
        json={"patient_id": "pat-north-1", "program": "XYZ", "unexpected": 1},
        headers=tokens.headers(**care_manager()),
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert set(problem) == {"type", "title", "status", "detail", "errors"}
    fields = {error["field"] for error in problem["errors"]}
    assert {"program", "unexpected", "activity", "mode", "start", "end"} <= fields


def test_an_unknown_path_is_a_404_problem(client: TestClient) -> None:
    response = client.get("/no-such-thing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404


def test_a_missing_record_is_a_404_problem(client: TestClient, tokens: Tokens) -> None:
    response = client.get("/care-tasks/nope", headers=tokens.headers(**care_manager()))
    assert response.status_code == 404
    assert response.json()["type"] == "https://fhirbridge.dev/problems/not-found"
