"""NDJSON exports of our own records for health plans (admin and billing only).

``GET /exports/{resource_type}`` streams ``application/fhir+ndjson``: one resource a line, read
from the database a page of patients at a time, so a response of any size uses flat memory.
Admins see every team (or the one named); billing credentials their own team, or any named one
when the credential has none. Resources that fail the profile rules are left out of the stream
(``fhirbridge export`` on the command line lists them).

Every parameter is checked, and the first page read, before the first byte is sent: until then
any error is a problem document with its own status. An error after that cannot change the 200
already sent, so the stream is broken off without its end (see ``api.boundary``): a client sees
a failed read, never a complete-looking short export.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import AfterValidator, PlainValidator, StringConstraints

from fhirbridge import wiring
from fhirbridge.api.access import require_role
from fhirbridge.api.auth import Role
from fhirbridge.api.deps import Caller, State
from fhirbridge.api.schemas._base import EARLIEST, LATEST, checked_day, checked_line
from fhirbridge.api.schemas.problems import problems
from fhirbridge.bulk import EXPORT_TYPES, ExportSelection, RejectedResource, iter_export
from fhirbridge.domain import Program
from fhirbridge.services.errors import FieldError, Rejected

router = APIRouter(prefix="/exports", tags=["exports"])
log = logging.getLogger("fhirbridge.api")
NDJSON = "application/fhir+ndjson"
EXPORTING = frozenset({Role.ADMIN, Role.BILLING})

ExportType = StrEnum("ExportType", {t: t for t in EXPORT_TYPES})  # type: ignore[misc]


def _since(value: object) -> datetime:
    # One parser for both forms, so an error names ``since`` rather than a union member.
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("must be a date or a date-time (ISO 8601)") from None
    else:
        raise ValueError("must be a date or a date-time (ISO 8601)")
    checked_day(parsed)  # before any conversion that could overflow
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


Since = Annotated[datetime, PlainValidator(_since, json_schema_input_type=datetime | date)]
Team = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(checked_line)]


@router.get(
    "/{resource_type}",
    responses={
        **problems(403, 422),
        200: {"content": {NDJSON: {}}, "description": "One FHIR resource per line"},
    },
)
def export_resources(
    resource_type: ExportType,
    caller: Caller,
    state: State,
    since: Annotated[
        Since | None,
        Query(
            description="Only records changed at or after this date or date-time (UTC if no "
            f"offset), from {EARLIEST.isoformat()} to {LATEST.isoformat()}"
        ),
    ] = None,
    program: Annotated[Program | None, Query(description="Only patients in this program")] = None,
    team: Annotated[Team | None, Query(description="Admins and team-less billing only")] = None,
) -> StreamingResponse:
    require_role(caller, EXPORTING)
    if caller.team is not None and not caller.has(Role.ADMIN) and team not in (None, caller.team):
        raise Rejected("export", [FieldError("team", "name a team you may see")])
    chosen_team = team if caller.team is None or caller.has(Role.ADMIN) else caller.team
    selection = ExportSelection(
        since=since,
        program=program,
        team=chosen_team,
        types=frozenset({str(resource_type)}),
    )

    items = iter_export(
        sessions=state.sessions,
        mappings=state.mappings,
        identifier_system=state.settings.identifier_system,
        selection=selection,
        readings=wiring.reading_import(state.settings),
    )
    # Read before answering, so a failing first page is a problem document, not a broken 200.
    first = next(items, None)
    items = itertools.chain(() if first is None else (first,), items)

    def lines() -> Iterator[bytes]:
        left_out = 0
        for item in items:
            if isinstance(item, RejectedResource):
                left_out += 1
                continue
            yield json.dumps(item.resource, separators=(",", ":")).encode() + b"\n"
        if left_out:
            log.warning(
                "export of %s left out %d non-conformant resources", resource_type, left_out
            )

    return StreamingResponse(lines(), media_type=NDJSON)
