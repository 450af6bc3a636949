"""A caseload as a file: every domain record of a set of patients, in YAML or JSON.

Used for the demo, for golden test fixtures and for imports. Records are validated with
pydantic against the domain dataclasses, so a bad file gives field-level errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from fhirbridge import domain
from fhirbridge.datafiles import DataFileError, read_yaml

__all__ = ["SECTIONS", "Caseload", "dump_record", "load_caseload"]

SECTIONS: dict[str, type] = {
    "patients": domain.PatientLink,
    "members": domain.CareTeamMember,
    "enrollments": domain.Enrollment,
    "consents": domain.ProgramConsent,
    "goals": domain.Goal,
    "care_plans": domain.CarePlan,
    "care_tasks": domain.CareTask,
    "time_entries": domain.TimeEntry,
    "referrals": domain.Referral,
    "patient_care_teams": domain.PatientCareTeam,
    "assessments": domain.AssessmentResponse,
    "screening_observations": domain.ScreeningObservation,
    "health_concerns": domain.HealthConcern,
}


@dataclass
class Caseload:
    patients: list[domain.PatientLink] = field(default_factory=list)
    members: list[domain.CareTeamMember] = field(default_factory=list)
    enrollments: list[domain.Enrollment] = field(default_factory=list)
    consents: list[domain.ProgramConsent] = field(default_factory=list)
    goals: list[domain.Goal] = field(default_factory=list)
    care_plans: list[domain.CarePlan] = field(default_factory=list)
    care_tasks: list[domain.CareTask] = field(default_factory=list)
    time_entries: list[domain.TimeEntry] = field(default_factory=list)
    referrals: list[domain.Referral] = field(default_factory=list)
    patient_care_teams: list[domain.PatientCareTeam] = field(default_factory=list)
    assessments: list[domain.AssessmentResponse] = field(default_factory=list)
    screening_observations: list[domain.ScreeningObservation] = field(default_factory=list)
    health_concerns: list[domain.HealthConcern] = field(default_factory=list)

    def care_records(self) -> list[Any]:
        """Every record fhirbridge owns as a FHIR resource (not the patient and staff links)."""
        return [
            *self.enrollments,
            *self.consents,
            *self.goals,
            *self.care_plans,
            *self.care_tasks,
            *self.time_entries,
            *self.referrals,
            *self.patient_care_teams,
            *self.assessments,
            *self.screening_observations,
            *self.health_concerns,
        ]


def _adapter(cls: type) -> TypeAdapter[Any]:
    return TypeAdapter(cls)


def load_caseload(path: Path) -> Caseload:
    document = read_yaml(path)
    raw = document.data
    if not isinstance(raw, dict):
        raise DataFileError(path, 1, "a caseload is a mapping of sections")
    unknown = set(raw) - set(SECTIONS)
    if unknown:
        raise DataFileError(path, 1, f"unknown section(s): {sorted(unknown)}")
    caseload = Caseload()
    for section, cls in SECTIONS.items():
        adapter = _adapter(cls)
        records = getattr(caseload, section)
        for i, item in enumerate(raw.get(section) or []):
            try:
                records.append(adapter.validate_python(dict(item)))
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                line = document.line_of([section, i, *first["loc"]])
                raise DataFileError(path, line, f"{section}[{i}].{where}: {first['msg']}") from exc
    return caseload


def dump_record(record: Any) -> dict[str, Any]:
    """A domain record as JSON-ready data."""
    result: dict[str, Any] = _adapter(type(record)).dump_python(record, mode="json")
    return result
