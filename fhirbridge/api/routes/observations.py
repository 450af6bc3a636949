"""RPM device readings posted by device hubs (``POST /observations``).

One Observation (``application/fhir+json`` or ``application/json``) or a batch, one a line
(``application/x-ndjson`` or ``application/fhir+ndjson``). The answer reports every line:
``created``, ``updated``, ``unchanged`` (sent before, and equal) or ``refused`` with the
element and the reason; in a batch one bad line never stops the others. A single Observation
that is refused answers 422 naming the element instead.

Posting the same reading again is harmless: readings are keyed by their ``identifier``, which a
posted Observation must carry (422 naming ``identifier`` otherwise). A reading's patient is its
``subject``, the EHR's Patient; a patient unknown here, or of a team the caller does not see,
refuses the reading with the same reason.

Who may post: the clinical roles (care manager, supervisor, admin). A device hub posts with an
API key of role ``supervisor`` for its team (``admin`` for a hub serving every team); billing
credentials may not.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from fhirbridge import wiring
from fhirbridge.api.access import CLINICAL, require_role, sees_team
from fhirbridge.api.deps import Caller, State, Work
from fhirbridge.api.problems import Problem
from fhirbridge.api.schemas.observations import ObservationLine, ObservationReport
from fhirbridge.api.schemas.problems import problems
from fhirbridge.persistence import Store
from fhirbridge.services import monitoring
from fhirbridge.services.errors import FieldError, Rejected

router = APIRouter(tags=["device readings"])

SINGLE = frozenset({"application/fhir+json", "application/json", "application/json+fhir"})
BATCH = frozenset({"application/x-ndjson", "application/fhir+ndjson", "application/ndjson"})


@router.post(
    "/observations",
    response_model=ObservationReport,
    responses=problems(403, 413, 415, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/fhir+json": {"schema": {"type": "object"}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        }
    },
)
async def post_observations(
    request: Request, caller: Caller, state: State, work: Work
) -> JSONResponse:
    require_role(caller, CLINICAL)
    media_type = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if media_type not in SINGLE | BATCH:
        raise Problem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            "send application/fhir+json (one Observation) or application/x-ndjson (a batch)",
        )
    body = await request.body()
    batch = media_type in BATCH
    lines = list(monitoring.ndjson_lines(body) if batch else monitoring.single_observation(body))
    if not lines:
        raise Rejected("observations", [FieldError("body", "no Observation in the request")])
    rules = wiring.reading_rules(state.settings)

    def run(store: Store) -> ObservationReport:
        report = monitoring.ingest_observations(
            store,
            lines,
            rules=rules,
            zone=work.tz,
            source=monitoring.ReadingSource(server_base=None),
            may_see=lambda patient: sees_team(caller, patient.team),
        )
        if not batch and report.refused:
            (refused,) = report.refused
            raise Rejected(
                "observation", [FieldError(refused.field or "body", refused.reason or "")]
            )
        return ObservationReport(
            received=len(report.lines),
            stored=report.stored,
            created=report.count("created"),
            updated=report.count("updated"),
            unchanged=report.count("unchanged"),
            refused=len(report.refused),
            lines=[
                ObservationLine(
                    line=line.line,
                    status=line.status,
                    id=line.id,
                    field=line.field,
                    reason=line.reason,
                )
                for line in report.lines
            ],
        )

    # The writes run on a worker thread, as a sync route's would: the event loop stays free.
    return await run_in_threadpool(work.write, run)
