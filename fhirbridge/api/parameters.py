"""Path and query parameters of every route, checked before the route's own parameters.

Installed once as an app-wide dependency, so a route (present or future) needs nothing of its
own for it: a path segment or query value holding a control character, a path parameter longer
than the 64 characters any id has, or an absurdly long query value is refused with a 422 naming
the parameter (``path.entry_id``, ``query.since``), as schema errors name theirs. Values are never
quoted back. Routes still declare what their parameters mean (types, patterns, date ranges).
"""

from __future__ import annotations

from fastapi import Request

from fhirbridge.api.problems import Problem
from fhirbridge.api.schemas._base import unprintable
from fhirbridge.services.errors import FieldError

__all__ = ["MAX_PATH_PARAMETER", "MAX_QUERY_VALUE", "check_parameters"]

MAX_PATH_PARAMETER = 64  # every path parameter is an id, a type or a kind
MAX_QUERY_VALUE = 255  # no query parameter is free text
_MAX_NAME = 64


def check_parameters(request: Request) -> None:
    """Raise a 422 problem naming every path or query parameter that cannot be an input."""
    errors = [*_path_errors(request), *_query_errors(request)]
    if errors:
        raise Problem(
            422,
            "invalid-request",
            "Invalid request",
            "the request does not match the schema",
            errors=errors,
        )


def _path_errors(request: Request) -> list[FieldError]:
    errors = []
    for name, value in request.path_params.items():
        if not isinstance(value, str):
            continue
        if unprintable(value):
            errors.append(FieldError(f"path.{name}", "must not contain control characters"))
        elif len(value) > MAX_PATH_PARAMETER:
            errors.append(
                FieldError(f"path.{name}", f"must be at most {MAX_PATH_PARAMETER} characters")
            )
    return errors


def _query_errors(request: Request) -> list[FieldError]:
    errors = []
    for name, value in request.query_params.multi_items():
        # A name we cannot print is not quoted back either.
        field = "query" if unprintable(name) or len(name) > _MAX_NAME else f"query.{name}"
        if unprintable(name) or unprintable(value):
            errors.append(FieldError(field, "must not contain control characters"))
        elif len(value) > MAX_QUERY_VALUE:
            errors.append(FieldError(field, f"must be at most {MAX_QUERY_VALUE} characters"))
    return errors
