"""The demo job: map a caseload, check it, store it, push it, roll up a month of billing."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fhirbridge.billing import MonthlyResult, load_rule_year, roll_up
from fhirbridge.caseload import Caseload, load_caseload
from fhirbridge.conformance import default_checker
from fhirbridge.fhir import FhirClient
from fhirbridge.mapping.loader import load_mappings
from fhirbridge.mapping.references import StaticReferences
from fhirbridge.sync.push import PushResult, plan_push, push

__all__ = ["DemoReport", "caseload_records", "run_demo"]

CONCEPT_SECTIONS = {
    "enrollment": "enrollments",
    "consent": "consents",
    "goal": "goals",
    "care_plan": "care_plans",
    "care_task": "care_tasks",
    "time_entry": "time_entries",
    "referral": "referrals",
}


@dataclass
class DemoReport:
    patients: int
    resources_by_type: Counter[str] = field(default_factory=Counter)
    created: int = 0
    unchanged: int = 0
    billing: list[MonthlyResult] = field(default_factory=list)
    push: PushResult | None = None


def caseload_records(caseload: Caseload) -> list[tuple[str, Any]]:
    return [
        (concept, record)
        for concept, section in CONCEPT_SECTIONS.items()
        for record in getattr(caseload, section)
    ]


async def run_demo(
    *,
    caseload_path: Path,
    mappings_dir: Path,
    fhir_base_url: str,
    identifier_system: str,
    month: tuple[int, int],
    tz: ZoneInfo,
) -> DemoReport:
    mappings = load_mappings(mappings_dir)
    default_checker()  # profile files are data too: fail at start-up, not mid-push
    caseload = load_caseload(caseload_path)
    references = StaticReferences.of(caseload.patients, caseload.members)
    items = plan_push(caseload_records(caseload), mappings)
    report = DemoReport(patients=len(caseload.patients))
    report.resources_by_type.update(item.mapping.resource for item in items)
    async with FhirClient(fhir_base_url) as client:
        result = await push(
            client,
            items,
            identifier_system=identifier_system,
            references=references,
            terminology=mappings.terminology,
        )
    report.push = result
    report.created = len(result.created)
    report.unchanged = len(result.unchanged)
    rules = load_rule_year(month[0])
    for patient in caseload.patients:
        report.billing.append(
            roll_up(
                rules=rules,
                month=month,
                patient_id=patient.id,
                enrollments=[e for e in caseload.enrollments if e.patient_id == patient.id],
                consents=[c for c in caseload.consents if c.patient_id == patient.id],
                entries=[t for t in caseload.time_entries if t.patient_id == patient.id],
                tz=tz,
            )
        )
    return report
