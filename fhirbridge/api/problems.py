"""Every error as an RFC 9457 problem (``application/problem+json``).

Body: ``type``, ``title``, ``status``, ``detail`` and ``errors: [{field, reason}]`` naming what
was wrong with which part of the request. Details carry ids, field names and statuses only:
never request values, tokens or patient data. Unexpected errors are answered and logged (by
type and route, without the message, which may quote data) by ``api.boundary``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from fhirbridge.api.auth import AuthenticationFailed
from fhirbridge.domain import TaskTransitionError
from fhirbridge.persistence import ConstraintViolation, RecordNotFound
from fhirbridge.services.errors import (
    Conflict,
    FieldError,
    NotFound,
    RecordLocked,
    Rejected,
    TimeOverlap,
    TimerAlreadyRunning,
    TransitionRefused,
    WorkflowError,
)

__all__ = [
    "PROBLEM_JSON",
    "ContentTooLarge",
    "Problem",
    "content_too_large",
    "install_problem_handlers",
    "problem_response",
]

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://fhirbridge.dev/problems/"


class Problem(Exception):
    """An error the API layer itself raises (forbidden, a reused idempotency key...)."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        *,
        errors: Iterable[FieldError] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.errors = tuple(errors)
        self.headers = dict(headers or {})
        super().__init__(detail)


class Forbidden(Problem):
    def __init__(self, detail: str) -> None:
        super().__init__(403, "forbidden", "Forbidden", detail)


class ContentTooLarge(StarletteHTTPException):
    """A request body over the limit (``api.boundary.BodyLimit``). An HTTP error rather than a
    ``Problem``, so that FastAPI's body parsing passes it on instead of making it a 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


def content_too_large(error: ContentTooLarge) -> JSONResponse:
    return problem_response(413, "content-too-large", "Content too large", str(error.detail))


def problem_response(
    status: int,
    slug: str,
    title: str,
    detail: str,
    errors: Iterable[FieldError] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "errors": [{"field": e.field, "reason": e.reason} for e in errors],
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


# (status, slug, title) per workflow error, most specific first.
_WORKFLOW: tuple[tuple[type[WorkflowError], int, str, str], ...] = (
    (NotFound, 404, "not-found", "Not found"),
    (Rejected, 422, "rejected", "Request rejected"),
    (TimerAlreadyRunning, 409, "timer-already-running", "A timer is already running"),
    (TimeOverlap, 409, "time-overlap", "Time already recorded"),
    (TransitionRefused, 409, "transition-refused", "Status change not allowed"),
    (RecordLocked, 409, "record-locked", "Record cannot be changed"),
    (Conflict, 409, "conflict", "Conflict"),
)


def _workflow_problem(error: WorkflowError) -> JSONResponse:
    for kind, status, slug, title in _WORKFLOW:
        if isinstance(error, kind):
            return problem_response(status, slug, title, str(error), error.errors)
    return problem_response(400, "workflow-error", "Request not processed", str(error))


def _validation_errors(error: RequestValidationError) -> list[FieldError]:
    found = []
    for item in error.errors():
        loc = [str(part) for part in item.get("loc", ())]
        if loc[:1] == ["body"] and len(loc) > 1:
            loc = loc[1:]
        found.append(FieldError(".".join(loc) or "body", str(item.get("msg", "invalid"))))
    return found


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_: Request, error: Problem) -> JSONResponse:
        return problem_response(
            error.status, error.slug, error.title, error.detail, error.errors, error.headers
        )

    @app.exception_handler(AuthenticationFailed)
    async def _unauthenticated(_: Request, error: AuthenticationFailed) -> JSONResponse:
        return problem_response(
            401,
            "unauthenticated",
            "Authentication required",
            error.reason,
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )

    @app.exception_handler(WorkflowError)
    async def _workflow(_: Request, error: WorkflowError) -> JSONResponse:
        return _workflow_problem(error)

    @app.exception_handler(TaskTransitionError)
    async def _transition(_: Request, error: TaskTransitionError) -> JSONResponse:
        reason = f"{error.current.value} -> {error.target.value}"
        return problem_response(
            409,
            "transition-refused",
            "Status change not allowed",
            str(error),
            [FieldError("status", reason)],
        )

    @app.exception_handler(RecordNotFound)
    async def _record_not_found(_: Request, error: RecordNotFound) -> JSONResponse:
        return problem_response(404, "not-found", "Not found", str(error))

    @app.exception_handler(ConstraintViolation)
    async def _constraint(_: Request, error: ConstraintViolation) -> JSONResponse:
        return problem_response(
            409, "constraint-violation", "Conflicts with stored data", str(error)
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        return problem_response(
            422,
            "invalid-request",
            "Invalid request",
            "the request does not match the schema",
            _validation_errors(error),
        )

    @app.exception_handler(ContentTooLarge)
    async def _too_large(_: Request, error: ContentTooLarge) -> JSONResponse:
        return content_too_large(error)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException) -> JSONResponse:
        return problem_response(
            error.status_code,
            f"http-{error.status_code}",
            _phrase(error.status_code),
            str(error.detail),
            headers=error.headers,
        )
