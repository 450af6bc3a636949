"""The demo job: a month of care management, stored, synced and billed on embedded defaults.

1. play the EHR: the caseload points at the EHR's Patients, Practitioners, Conditions and
   Organizations; those the FHIR server lacks are created from ``fixtures/demo/ehr/`` with a PUT
   to the referenced id (a server that enforces referential integrity refuses records pointing
   at nothing). Those the server already has are left alone: they are the EHR's, not ours;
2. store the demo caseload; every record and its pending push land in one transaction;
3. drain the outbox with the sync worker (idempotent transactions, profile checks first);
4. play the food bank: on the FHIR server, as the performer would, accept the food referral's
   Task, start it and complete it with a resulting activity;
5. pull: the tracker's new status is applied and closes the loop (order completed, goal
   updated, a follow-up call created for the care manager), and those changes are pushed;
6. roll up the month in SQL, record the ChargeItems it earns, and push those too.

With ``programs`` (``fixtures/demo/programs/``, see ``services.demo_programs``) the month also
has one RPM patient (device readings stored from a device hub, billed by device days), one
discharge the EHR writes on the server (pulled, it opens a TCM period whose contact and visit
the care team records) and a PHQ-9 whose item 9 asks for a same-day follow-up; their records
are pushed with the rest.

What it is handed (client, storage, worker, pull, rules) is built by ``fhirbridge.wiring``.
Work left undone (dead letters, open conflicts, a step that could not run) is in the report,
never an exception: the caller decides how to show it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fhirbridge.billing import RuleYear
from fhirbridge.billing.report import Report
from fhirbridge.caseload import Caseload
from fhirbridge.conformance import default_checker
from fhirbridge.domain import Referral
from fhirbridge.fhir import FhirClient, Gone, NotFound
from fhirbridge.mapping.instruments import Instruments
from fhirbridge.mapping.readings import ReadingRules
from fhirbridge.persistence import (
    Conflict,
    EntityKind,
    OutboxEntry,
    Store,
    SyncTarget,
    unit_of_work,
)
from fhirbridge.persistence.db import SessionFactory
from fhirbridge.services.billing import ChargeRun, monthly_report, record_charges
from fhirbridge.services.caseload import store_caseload
from fhirbridge.services.demo_programs import (
    DemoPrograms,
    Phq9Part,
    RpmPart,
    TcmPart,
    judge_tcm,
    load_resources,
    put_discharges,
    record_phq9,
    record_tcm,
    store_readings,
)
from fhirbridge.sync.pull import PullReport
from fhirbridge.sync.worker import PushStats, SyncWorker

__all__ = [
    "DEMO_FOOD_REFERRAL",
    "DemoReport",
    "EhrSide",
    "Pull",
    "ehr_references",
    "load_ehr_side",
    "run_demo",
]

Pull = Callable[[Sequence[str]], Awaitable[PullReport]]

DEMO_FOOD_REFERRAL = "r-1001-food"
# Referenced resources are created in this order: a Condition points at its Patient.
_EHR_ORDER = ("Organization", "Practitioner", "Patient", "Condition")


@dataclass
class EhrSide:
    """What the demo did to give the caseload's EHR references something to point at."""

    created: list[str] = field(default_factory=list)  # "Type/id" written by the demo
    present: list[str] = field(default_factory=list)  # already on the server, left alone
    missing: list[str] = field(default_factory=list)  # referenced, but no fixture file


@dataclass
class DemoReport:
    patients: int
    database_url: str
    pushed: PushStats = field(default_factory=PushStats)
    resources_by_type: Counter[str] = field(default_factory=Counter)
    outbox: dict[str, int] = field(default_factory=dict)
    ehr: EhrSide = field(default_factory=EhrSide)
    billing: Report | None = None
    charges: ChargeRun | None = None
    pulled: int = 0
    referral: Referral | None = None
    dead_letters: list[OutboxEntry] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # steps that could not run, and why
    rpm: RpmPart | None = None  # with programs: the RPM patient's readings and alerts
    tcm: TcmPart | None = None  # the discharge's period, deadlines and verdict
    phq9: Phq9Part | None = None  # the PHQ-9 and its follow-up task

    @property
    def created(self) -> int:
        return self.pushed.pushed

    @property
    def unchanged(self) -> int:
        return self.pushed.unchanged

    @property
    def finished(self) -> bool:
        """The month's work was done: nothing dead, nothing in conflict, no step skipped."""
        return not (self.dead_letters or self.conflicts or self.skipped)


_RESULTING_ACTIVITY = {
    "type": {
        "coding": [
            {
                "system": "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/"
                "SDOHCC-CodeSystemTemporaryCodes",
                "code": "resulting-activity",
            }
        ]
    },
    "valueCodeableConcept": {
        "coding": [
            {
                "system": "http://snomed.info/sct",
                "code": "710925007",
                "display": "Provision of food",
            }
        ]
    },
}


def ehr_references(caseload: Caseload) -> list[str]:
    """Every EHR-side resource the caseload points at, as ``Type/id``, in creation order."""
    found: set[str] = set()
    found.update(p.ehr_reference for p in caseload.patients)
    found.update(m.practitioner_reference for m in caseload.members if m.practitioner_reference)
    for conditions in (
        *(e.conditions for e in caseload.enrollments),
        *(c.problems for c in caseload.care_plans),
        *(g.addresses for g in caseload.goals),
    ):
        found.update(conditions)
    found.update(r.performer_reference for r in caseload.referrals if r.performer_reference)
    return sorted(found, key=_creation_order)


def _creation_order(reference: str) -> tuple[int, str]:
    rtype = reference.split("/", 1)[0]
    rank = _EHR_ORDER.index(rtype) if rtype in _EHR_ORDER else len(_EHR_ORDER)
    return rank, reference


def load_ehr_side(folder: Path) -> dict[str, dict[str, Any]]:
    """The EHR's resources in ``folder`` (``<type>-<id>.json``), by ``Type/id``."""
    return load_resources(folder)


async def _play_the_ehr(
    client: FhirClient, references: Iterable[str], fixtures: dict[str, dict[str, Any]]
) -> EhrSide:
    side = EhrSide()
    for reference in references:
        resource = fixtures.get(reference)
        if resource is None:
            side.missing.append(reference)
            continue
        rtype, rid = reference.split("/", 1)
        try:
            await client.read(rtype, rid)
        except (NotFound, Gone):
            # A plain PUT to the referenced id: repeating it changes nothing.
            await client.update(resource)
            side.created.append(reference)
        else:
            side.present.append(reference)
    return side


async def _food_bank_completes(
    client: FhirClient, sessions: SessionFactory, referral_id: str
) -> bool:
    """What the community organisation's system does on the shared FHIR server; False when
    the referral's Task never reached the server, so there is nothing to act on."""
    with sessions() as session:
        link = Store(session).fhir_links.get(SyncTarget(EntityKind.REFERRAL, referral_id, "Task"))
    if link is None:
        return False
    task = (await client.read("Task", link.server_id)).resource or {}
    for status in ("accepted", "in-progress", "completed"):
        task = {**task, "status": status, "owner": {"reference": "Organization/cbo-foodbank-7"}}
        if status == "completed":
            task["output"] = [_RESULTING_ACTIVITY]
        version = (task.get("meta") or {}).get("versionId")
        result = await client.update(task, if_match=version)
        task = result.resource or task
    return True


async def run_demo(
    *,
    client: FhirClient,
    sessions: SessionFactory,
    worker: SyncWorker,
    pull: Pull,
    rules: RuleYear,
    caseload: Caseload,
    ehr_fixtures: Path,
    month: tuple[int, int],
    tz: ZoneInfo,
    database_url: str,
    programs: DemoPrograms | None = None,
    reading_rules: ReadingRules | None = None,
    instruments: Instruments | None = None,
) -> DemoReport:
    default_checker()  # profile files are data too: fail at start-up, not mid-push
    report = DemoReport(patients=len(caseload.patients), database_url=database_url)
    stored = [caseload] if programs is None else [caseload, programs.records]
    report.ehr = await _play_the_ehr(
        client, ehr_references(_joined(stored)), load_ehr_side(ehr_fixtures)
    )
    with unit_of_work(sessions) as session:
        for records in stored:
            store_caseload(store=Store(session), caseload=records)
    report.pushed.add(await worker.drain())
    if programs is not None:
        await _the_new_programs(
            report,
            programs,
            client=client,
            sessions=sessions,
            pull=pull,
            rules=rules,
            month=month,
            tz=tz,
            reading_rules=reading_rules,
            instruments=instruments,
        )
        report.pushed.add(await worker.drain())
    if await _food_bank_completes(client, sessions, DEMO_FOOD_REFERRAL):
        report.pulled = len((await pull(["Task"])).applied)
        report.pushed.add(await worker.drain())
    else:
        report.skipped.append(
            f"referral {DEMO_FOOD_REFERRAL} was not pushed, so the food bank could not act on it"
        )
    with sessions() as session:
        report.referral = Store(session).referrals.get(DEMO_FOOD_REFERRAL)
    with unit_of_work(sessions) as session:
        report.billing = monthly_report(Store(session), month=month, tz=tz, rules=rules)
        report.charges = record_charges(Store(session), report=report.billing)
    report.pushed.add(await worker.drain())
    if report.tcm is not None:
        judge_tcm(report.tcm, sessions, rules=rules, tz=tz)
    with sessions() as session:
        store = Store(session)
        report.outbox = {s.value: n for s, n in store.outbox.counts().items()}
        report.resources_by_type.update(store.fhir_links.counts_by_type())
        report.dead_letters = store.outbox.dead_letters()
        report.conflicts = store.conflicts.open()
    return report


def _joined(caseloads: Sequence[Caseload]) -> Caseload:
    joined = Caseload()
    for part in caseloads:
        for name in vars(joined):
            getattr(joined, name).extend(getattr(part, name))
    return joined


async def _the_new_programs(
    report: DemoReport,
    programs: DemoPrograms,
    *,
    client: FhirClient,
    sessions: SessionFactory,
    pull: Pull,
    rules: RuleYear,
    month: tuple[int, int],
    tz: ZoneInfo,
    reading_rules: ReadingRules | None,
    instruments: Instruments | None,
) -> None:
    """RPM readings, the discharge and its TCM period, the PHQ-9 (``services.demo_programs``)."""
    if reading_rules is None:
        report.skipped.append("RPM readings: no reading rules were given")
    else:
        report.rpm = store_readings(
            sessions,
            programs.readings,
            rules=reading_rules,
            tz=tz,
            month=month,
            rule_year=rules,
        )
        report.skipped.extend(
            f"RPM reading on line {line.line} refused: {line.field}: {line.reason}"
            for line in report.rpm.refused
        )
    refused = await put_discharges(client, programs.discharges)
    report.skipped.extend(refused)
    discharge = next(iter(programs.discharges), None)
    if discharge is not None and not refused:
        await pull(["Encounter"])  # the not_ours hook opens the period (wiring.pull_hooks)
        report.tcm, undone = record_tcm(sessions, discharge=discharge, rules=rules, tz=tz)
        report.skipped.extend(undone)
    if instruments is None:
        report.skipped.append("PHQ-9: no instruments were given")
    else:
        report.phq9, undone = record_phq9(sessions, instruments=instruments, tz=tz)
        report.skipped.extend(undone)
