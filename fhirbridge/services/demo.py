"""The demo job: map a caseload, check it, store it, push it, roll up a month of billing."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fhirbridge.billing import MonthlyResult, load_rule_year, roll_up
from fhirbridge.caseload import Caseload, load_caseload
from fhirbridge.conformance import default_checker
from fhirbridge.fhir import FhirClient
from fhirbridge.mapping.concepts import concept_of
from fhirbridge.mapping.loader import Mappings, load_mappings
from fhirbridge.mapping.references import PRIMARY_RESOURCE, StaticReferences
from fhirbridge.persistence import (
    EntityKind,
    FhirLink,
    Store,
    make_engine,
    make_session_factory,
    migrate,
    unit_of_work,
)
from fhirbridge.sync.push import PushItem, PushResult, key_of, plan_push, push

__all__ = ["DemoReport", "caseload_records", "run_demo"]


@dataclass
class DemoReport:
    patients: int
    database_url: str = ""
    outbox: dict[str, int] = field(default_factory=dict)
    resources_by_type: Counter[str] = field(default_factory=Counter)
    created: int = 0
    unchanged: int = 0
    billing: list[MonthlyResult] = field(default_factory=list)
    push: PushResult | None = None


def caseload_records(caseload: Caseload) -> list[tuple[str, Any]]:
    return [(concept_of(record), record) for record in caseload.care_records()]


async def run_demo(
    *,
    database_url: str,
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
    migrate(database_url)
    sessions = make_session_factory(make_engine(database_url))
    with unit_of_work(sessions) as session:
        _store_caseload(Store(session), caseload, mappings)
    with unit_of_work(sessions) as session:
        claimed = Store(session).outbox.claim(batch_size=100_000, worker_id="demo")
    with unit_of_work(sessions) as session:
        store = Store(session)
        records = [
            (concept, store.repository(EntityKind(concept)).require(entry.local_id))
            for entry in claimed
            for concept in [entry.entity_kind.value]
            if entry.resource_type == PRIMARY_RESOURCE[concept]
        ]
    items = plan_push(records, mappings)
    report = DemoReport(patients=len(caseload.patients), database_url=database_url)
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
    with unit_of_work(sessions) as session:
        store = Store(session)
        _record_push(store, items, result)
        for entry in claimed:
            store.outbox.mark_done(entry.id)
        report.outbox = {state.value: n for state, n in store.outbox.counts().items()}
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


def _store_caseload(store: Store, caseload: Caseload, mappings: Mappings) -> None:
    """Each record and its pending push land in the same transaction."""
    for patient in caseload.patients:
        store.save(patient)
    for member in caseload.members:
        store.save(member)
    for concept, record in caseload_records(caseload):
        store.save(record, sync_as=[m.resource for m in mappings.for_concept(concept)])


def _record_push(store: Store, items: list[PushItem], result: PushResult) -> None:
    for item in items:
        key = key_of(item.mapping, item.record.id)
        reference = result.created.get(key) or result.unchanged.get(key)
        if not reference:
            continue
        store.fhir_links.upsert(
            FhirLink(
                entity_kind=EntityKind(item.concept),
                local_id=item.record.id,
                resource_type=item.mapping.resource,
                server_id=reference.rsplit("/", 1)[-1],
                synced_at=datetime.now(UTC),
                version_id=result.versions.get(key),
            )
        )
