"""The problem-details body every error answers with, for the OpenAPI document."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from fhirbridge.api.problems import PROBLEM_JSON


class FieldErrorRead(BaseModel):
    field: str
    reason: str


class ProblemRead(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldErrorRead]


_MEANING = {
    401: "No or invalid credentials",
    403: "The caller's role may not do this",
    404: "No such record, or it belongs to another team",
    409: "Conflicts with the record's current state",
    422: "Invalid or rejected request; errors name the fields",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the given problem statuses (401 is always possible)."""
    return {
        status: {
            "model": ProblemRead,
            "description": _MEANING[status],
            "content": {PROBLEM_JSON: {}},
        }
        for status in sorted({401, *statuses})
    }
