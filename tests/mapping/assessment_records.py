"""The golden cases of the assessment mappings (fixtures/assessments/records.yaml).

``python -m tests.mapping.assessment_records`` rewrites the goldens; review the diff by hand.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from functools import cache
from typing import Any

import yaml
from fhir.resources.R4B import get_fhir_model_class

from fhirbridge.config import PROJECT_ROOT
from fhirbridge.domain import (
    AssessmentResponse,
    CareTeamMember,
    Code,
    HealthConcern,
    PatientLink,
    ScreeningObservation,
    StaffRole,
)
from fhirbridge.domain.assessment import score
from fhirbridge.mapping.context import MappingContext
from fhirbridge.mapping.engine import ResourceMapping
from fhirbridge.mapping.references import StaticReferences
from tests.mapping.support import IDENTIFIER_SYSTEM, mappings

CASES = PROJECT_ROOT / "fixtures" / "assessments"
GOLDEN = CASES / "golden"
Record = AssessmentResponse | ScreeningObservation | HealthConcern


@cache
def _data() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CASES / "records.yaml").read_text())
    return loaded


def _code(data: dict[str, Any] | None) -> Code | None:
    return None if data is None else Code(data["system"], data["code"], data.get("display"))


def _codes(items: list[dict[str, Any]]) -> list[Code]:
    return [Code(i["system"], i["code"], i.get("display")) for i in items]


def patients() -> list[PatientLink]:
    return [PatientLink(**p) for p in _data()["patients"]]


def members() -> list[CareTeamMember]:
    return [CareTeamMember(**{**m, "role": StaffRole(m["role"])}) for m in _data()["members"]]


def context() -> MappingContext:
    refs = StaticReferences.of(patients(), members(), primary=mappings().plan.primary_resources)
    return MappingContext(IDENTIFIER_SYSTEM, refs, mappings().terminology)


def assessment(data: dict[str, Any]) -> AssessmentResponse:
    instrument = mappings().instruments.get(data["instrument"])
    assert instrument is not None
    scored = score(instrument, {str(k): v for k, v in data["answers"].items()})
    return AssessmentResponse(
        id=data["id"],
        patient_id=data["patient_id"],
        questionnaire=instrument.questionnaire,
        authored=datetime.fromisoformat(data["authored"]),
        author_id=data.get("author_id"),
        answers=list(scored.answers),
        total=scored.total,
        band=scored.band,
        positive_domains=list(scored.positive_domains),
    )


def observation(data: dict[str, Any]) -> ScreeningObservation:
    code = _code(data["code"])
    assert code is not None
    return ScreeningObservation(
        id=data["id"],
        patient_id=data["patient_id"],
        code=code,
        effective=datetime.fromisoformat(data["effective"]),
        assessment_id=data.get("assessment_id"),
        categories=_codes(data.get("categories", [])),
        value_code=_code(data.get("value_code")),
        value_integer=data.get("value_integer"),
        performer_id=data.get("performer_id"),
    )


def concern(data: dict[str, Any]) -> HealthConcern:
    code = _code(data["code"])
    assert code is not None
    recorded = data.get("recorded")
    return HealthConcern(
        id=data["id"],
        patient_id=data["patient_id"],
        code=code,
        categories=_codes(data.get("categories", [])),
        recorded=recorded if isinstance(recorded, date) else None,
        recorder_id=data.get("recorder_id"),
        evidence_ids=list(data.get("evidence_ids", [])),
    )


def records() -> list[tuple[str, Record]]:
    data = _data()
    out: list[tuple[str, Record]] = []
    out += [("assessment", assessment(a)) for a in data["assessments"]]
    out += [("screening_observation", observation(o)) for o in data["observations"]]
    out += [("health_concern", concern(c)) for c in data["concerns"]]
    return out


def golden_path(mapping: ResourceMapping, record: Record) -> Any:
    return GOLDEN / f"{mapping.resource}-{mapping.identifier_prefix}-{record.id}.json"


def parsed(resource_type: str, data: dict[str, Any]) -> dict[str, Any]:
    model = get_fhir_model_class(resource_type).model_validate(data)
    result: dict[str, Any] = json.loads(model.model_dump_json(exclude_none=True))
    return result


def main() -> None:
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for concept, record in records():
        [mapping] = mappings().for_concept(concept)
        resource = parsed(mapping.resource, mapping.to_fhir(record, context()))
        text = json.dumps(resource, indent=2, ensure_ascii=False) + "\n"
        golden_path(mapping, record).write_text(text)


if __name__ == "__main__":
    main()
