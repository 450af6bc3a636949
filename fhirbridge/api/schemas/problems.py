"""The problem-details body every error answers with, and its place in the OpenAPI document.

Routes name the problems particular to them with ``problems(...)``; ``declare_problems`` then
adds, for every operation of the finished document, the ones that follow from how the API is
built rather than from any one route, so a client (or a fuzzer) never meets an undeclared 4xx:

- every operation can answer 422: ``parameters.check_parameters`` runs for every route and
  checks every query value sent, declared or not (and schema errors, a ``Rejected`` workflow or
  a reused Idempotency-Key answer 422 too);
- one that writes (POST, PUT, PATCH, DELETE) can answer 413 (``boundary.BodyLimit``), and one
  that takes a JSON body 400 (FastAPI's answer to a body it cannot decode as UTF-8 JSON);
- every authenticated operation (one with a security requirement) can answer 401 (no or bad
  credentials, see ``auth``) and 403 (``access.require_role``); 404 when it has a record id in
  its path (no such record, or another team's); 409 when it writes: the database may refuse
  the write (``ConstraintViolation``) and a concurrent request may hold its Idempotency-Key.

Every error response is declared as ``application/problem+json`` with the ``ProblemRead``
schema, which is what ``api.problems`` sends; FastAPI's own ``HTTPValidationError`` (JSON)
declaration of 422 is replaced, since that body is never sent.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from fhirbridge.api.problems import PROBLEM_JSON

__all__ = ["FieldErrorRead", "ProblemRead", "declare_problems", "document_problems", "problems"]


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
    400: "The body is not JSON text (UTF-8)",
    401: "No or invalid credentials",
    403: "The caller's role may not do this",
    404: "No such record, or it belongs to another team",
    409: "Conflicts with the record's current state or with a concurrent request",
    413: "The body is larger than the API accepts",
    415: "Unsupported media type",
    422: "Invalid or rejected request; errors name the fields",
    502: "An upstream server could not be read",
    503: "Not ready",
}
_COMPONENTS = "#/components/schemas/{model}"
_PROBLEM_REF = {"$ref": _COMPONENTS.format(model=ProblemRead.__name__)}
_WRITES = frozenset({"post", "put", "patch", "delete"})
_METHODS = _WRITES | {"get", "head", "options", "trace"}
# FastAPI's default 422 body, replaced by the problem document the API really sends.
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")


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


def document_problems(app: FastAPI) -> None:
    """Have ``app.openapi()`` pass its document through ``declare_problems`` (once, cached
    like FastAPI's own)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = declare_problems(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def declare_problems(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` (an OpenAPI 3.1 dict, changed in place and returned) with every problem
    each operation can answer declared as ``application/problem+json`` (see the module)."""
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    _add_problem_schemas(schemas)
    for item in document.get("paths", {}).values():
        for method, operation in item.items():
            if method in _METHODS:
                _declare(method, operation)
    _drop_unreferenced(document, schemas, _FASTAPI_VALIDATION)
    return document


def _declare(method: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    statuses = {int(code) for code in responses if code.isdigit() and int(code) >= 400}
    statuses.add(422)  # ``parameters.check_parameters`` runs for every route
    if method in _WRITES:
        statuses.add(413)  # ``boundary.BodyLimit`` reads every body, declared or not
    if operation.get("requestBody"):
        statuses.add(400)
    if operation.get("security"):
        statuses |= {401, 403}
        if any(_names_a_record(parameter) for parameter in operation.get("parameters", [])):
            statuses.add(404)
        if method in _WRITES:
            statuses.add(409)
    for status in sorted(statuses):
        declared = responses.get(str(status), {})
        responses[str(status)] = {
            "description": declared.get("description") or _MEANING.get(status, "Problem"),
            "content": {PROBLEM_JSON: {"schema": dict(_PROBLEM_REF)}},
        }
    # Keep the responses in status order, as FastAPI writes them.
    operation["responses"] = dict(sorted(responses.items()))


def _names_a_record(parameter: dict[str, Any]) -> bool:
    # An id in the path may name no record; an enum there (a kind, a type) is checked as a 422.
    schema = parameter.get("schema", {})
    return parameter.get("in") == "path" and "enum" not in schema and "$ref" not in schema


def _add_problem_schemas(schemas: dict[str, Any]) -> None:
    problem = ProblemRead.model_json_schema(ref_template=_COMPONENTS)
    schemas.update(problem.pop("$defs", {}))
    schemas[ProblemRead.__name__] = problem
    document = dict(sorted(schemas.items()))
    schemas.clear()
    schemas.update(document)


def _drop_unreferenced(
    document: dict[str, Any], schemas: dict[str, Any], names: tuple[str, ...]
) -> None:
    # Dropped in order, so a schema only the previous one referenced goes too.
    for name in names:
        ref = json.dumps(_COMPONENTS.format(model=name))
        if name in schemas and ref not in json.dumps(document):
            del schemas[name]
