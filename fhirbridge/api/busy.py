"""A database too busy to answer in time is a 503 problem with ``Retry-After``, never a 500.

``RequestWork`` turns ``DatabaseBusy`` into this answer for the work of a request; the handler
installed here answers it wherever else it escapes (a route that opens a unit of work of its
own, an export stream before it started). Nothing was written when it is raised, so the client
may simply retry.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from fhirbridge.api.problems import Problem, problem_response
from fhirbridge.persistence import DatabaseBusy

__all__ = ["BUSY_RETRY_AFTER_SECONDS", "busy_problem", "install_busy_handler"]

# Seconds a client is asked to wait: one queue of writers drains well within that.
BUSY_RETRY_AFTER_SECONDS = 1
_SLUG, _TITLE = "database-busy", "Service busy"
_DETAIL = "the database is busy with other writes; nothing was changed, retry shortly"
_HEADERS = {"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)}


def busy_problem() -> Problem:
    """The 503 to raise for a ``DatabaseBusy``."""
    return Problem(503, _SLUG, _TITLE, _DETAIL, headers=_HEADERS)


def install_busy_handler(app: FastAPI) -> None:
    @app.exception_handler(DatabaseBusy)
    async def _busy(_: Request, __: DatabaseBusy) -> JSONResponse:
        return problem_response(503, _SLUG, _TITLE, _DETAIL, headers=_HEADERS)
