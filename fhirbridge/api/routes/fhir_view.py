"""Read-only FHIR views: the resource a record maps to, as it would be pushed now.

The record is laid over the server's last copy when it has been pushed (so others' elements
show), and references resolve through the FHIR links. A record not pushed yet is referenced as
a ``urn:uuid:`` placeholder with its type, as inside a push transaction.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from fhirbridge.api.access import CLINICAL, require_role, visible_record
from fhirbridge.api.deps import Caller, Work
from fhirbridge.api.schemas.problems import problems
from fhirbridge.mapping.context import MappingContext
from fhirbridge.persistence import EntityKind, Store, SyncTarget
from fhirbridge.sync.references import LinkReferences, UnresolvedReference

router = APIRouter(prefix="/fhir-view", tags=["fhir views"])
FHIR_JSON = "application/fhir+json"


class ViewKind(StrEnum):
    ENROLLMENTS = "enrollments"
    CONSENTS = "consents"
    CARE_PLANS = "care-plans"
    GOALS = "goals"
    CARE_TASKS = "care-tasks"
    TIME_ENTRIES = "time-entries"


_CONCEPT = {
    ViewKind.ENROLLMENTS: "enrollment",
    ViewKind.CONSENTS: "program_consent",
    ViewKind.CARE_PLANS: "care_plan",
    ViewKind.GOALS: "goal",
    ViewKind.CARE_TASKS: "care_task",
    ViewKind.TIME_ENTRIES: "time_entry",
}
# What a record's "not found" calls it: the words the record's own routes use.
_KIND = {
    ViewKind.ENROLLMENTS: "enrollment",
    ViewKind.CONSENTS: "consent",
    ViewKind.CARE_PLANS: "care plan",
    ViewKind.GOALS: "goal",
    ViewKind.CARE_TASKS: "care task",
    ViewKind.TIME_ENTRIES: "time entry",
}


class ViewReferences(LinkReferences):
    """Links where they exist; placeholders for what has not reached the server yet."""

    def __init__(self, store: Store, identifier_system: str) -> None:
        super().__init__(store)
        self._identifier_system = identifier_system

    def reference(self, concept: str, local_id: str) -> str:
        try:
            return super().reference(concept, local_id)
        except UnresolvedReference:
            name = f"{self._identifier_system}|{concept}/{local_id}"
            return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, name)}"


@router.get(
    "/{kind}/{record_id}",
    responses={
        **problems(403, 404),
        200: {"content": {FHIR_JSON: {}}, "description": "The FHIR resource"},
    },
)
def fhir_view(kind: ViewKind, record_id: str, caller: Caller, work: Work) -> JSONResponse:
    require_role(caller, CLINICAL)
    concept = _CONCEPT[kind]
    resource_type = work.mappings.plan.primary(concept)
    mapping = work.mappings.get(concept, resource_type)

    def run(store: Store) -> dict[str, Any]:
        repository = store.repository(EntityKind(concept))
        record = visible_record(store, caller, _KIND[kind], record_id, repository.get)
        link = store.fhir_links.get(SyncTarget(EntityKind(concept), record_id, resource_type))
        context = MappingContext(
            identifier_system=work.identifier_system,
            references=ViewReferences(store, work.identifier_system),
            terminology=work.mappings.terminology,
        )
        base = None if link is None else link.server_json
        resource = mapping.to_fhir(record, context, base=base)
        if link is not None:
            resource["id"] = link.server_id
        return resource

    return JSONResponse(work.read(run), media_type=FHIR_JSON)
