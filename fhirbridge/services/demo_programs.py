"""The demo's newer programs (issue 11): one RPM patient, one discharge, one PHQ-9.

Run by ``services.demo.run_demo`` after the caseload is stored and pushed, from the files of
``fixtures/demo/programs/``:

1. **RPM**: ``enrollments.yaml`` (caseload format: p-1001's RPM enrollment, its consent and the
   RN's RPM call) is stored with the caseload; the blood-pressure cuff's readings
   (``readings/*.ndjson``, as a device hub sends them) go through ``ingest_observations``. The
   month's report bills the device days (99454, 99453) and the monitoring alerts are read as of
   the month's last day;
2. **TCM**: playing the EHR, the demo PUTs the discharge Encounter (``discharge/*.json``) on the
   FHIR server; the pull of Encounters (its ``not_ours`` hook) opens the period with its two
   deadline tasks; the care team then records high complexity, the interactive contact on
   business day 2 and the face-to-face visit on day 7;
3. **PHQ-9**: p-1003's response with item 9 answered "several days" is recorded; its rule
   creates an urgent follow-up task due the same day.

A step that cannot run (a patient the caseload lacks, a discharge the server refused) is named
in ``skipped``, never raised.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fhirbridge.billing import RuleYear
from fhirbridge.caseload import Caseload, load_caseload
from fhirbridge.domain import CareTask, CareTaskKind, TcmComplexity, TcmContactKind
from fhirbridge.domain.transitional_care import TcmJudgement
from fhirbridge.fhir import FhirClient, StatusError
from fhirbridge.mapping.instruments import Instruments
from fhirbridge.mapping.readings import ReadingRules
from fhirbridge.persistence import Store, unit_of_work
from fhirbridge.persistence.db import SessionFactory
from fhirbridge.services.assessment import NewAssessment, record_assessment, scored_view
from fhirbridge.services.errors import NotFound, Rejected
from fhirbridge.services.monitoring import (
    LineOutcome,
    ReadingSource,
    ingest_observations,
    ndjson_lines,
)
from fhirbridge.services.monitoring_worklist import MonitoringAlert, monitoring_alerts
from fhirbridge.services.transitional_care import (
    NewTcmContact,
    periods_of,
    record_contact,
    set_complexity,
    tcm_policy,
)

__all__ = [
    "DemoPrograms",
    "Phq9Part",
    "RpmPart",
    "TcmPart",
    "judge_tcm",
    "load_programs",
    "load_resources",
    "put_discharges",
    "record_phq9",
    "record_tcm",
    "store_readings",
]

RPM_PATIENT = "p-1001"
TCM_PATIENT = "p-1002"
PHQ9_PATIENT = "p-1003"
_EASTERN = "-04:00"  # October 2026 in New York: the fixtures' wall-clock times
# The care team's TCM work after p-1002's discharge on Friday 2026-10-09.
_COMPLEXITY_BY = "m-md"
_CONTACT = NewTcmContact(
    kind=TcmContactKind.INTERACTIVE_CONTACT,
    occurred_at=datetime.fromisoformat(f"2026-10-14T10:15:00{_EASTERN}"),
    staff_id="m-rn",
    minutes=15,
    note="Phone call: medications reconciled with the discharge list; visit booked for Friday.",
)
_VISIT = NewTcmContact(
    kind=TcmContactKind.FACE_TO_FACE_VISIT,
    occurred_at=datetime.fromisoformat(f"2026-10-16T09:30:00{_EASTERN}"),
    staff_id="m-md",
    minutes=40,
)
# PHQ-9 answers by LOINC item (44260-8 is item 9): 2+2+2+2+1+2+1+1+1 = 14, moderate.
_PHQ9 = NewAssessment(
    patient_id=PHQ9_PATIENT,
    instrument="phq-9",
    answers={
        "44250-9": "LA6570-1",
        "44255-8": "LA6570-1",
        "44259-0": "LA6570-1",
        "44254-1": "LA6570-1",
        "44251-7": "LA6569-3",
        "44258-2": "LA6570-1",
        "44252-5": "LA6569-3",
        "44253-3": "LA6569-3",
        "44260-8": "LA6569-3",
    },
    authored=datetime.fromisoformat(f"2026-10-20T15:00:00{_EASTERN}"),
    author_id="m-sw",
)


@dataclass(frozen=True)
class DemoPrograms:
    """The files of ``fixtures/demo/programs/``."""

    records: Caseload  # enrollments.yaml: stored with the caseload
    readings: tuple[Path, ...]  # NDJSON from the device hub
    discharges: dict[str, dict[str, Any]]  # the EHR's discharge Encounters by "Type/id"


def load_resources(folder: Path) -> dict[str, dict[str, Any]]:
    """The FHIR resources in ``folder`` (``<type>-<id>.json``), by ``Type/id``."""
    resources: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("*.json")):
        resource = json.loads(path.read_text())
        reference = f"{resource['resourceType']}/{resource['id']}"
        if path.stem != reference.replace("/", "-", 1):
            raise ValueError(f"{path}: holds {reference}; name it {reference.replace('/', '-')}")
        resources[reference] = resource
    return resources


def load_programs(folder: Path) -> DemoPrograms:
    return DemoPrograms(
        records=load_caseload(folder / "enrollments.yaml"),
        readings=tuple(sorted((folder / "readings").glob("*.ndjson"))),
        discharges=load_resources(folder / "discharge"),
    )


@dataclass
class RpmPart:
    patient_id: str = RPM_PATIENT
    stored: int = 0
    refused: list[LineOutcome] = field(default_factory=list)
    alerts: list[MonitoringAlert] = field(default_factory=list)  # as of the month's last day
    as_of: date | None = None


@dataclass
class TcmPart:
    patient_id: str = TCM_PATIENT
    discharge: str | None = None  # "Encounter/id" the EHR wrote
    discharged_on: date | None = None
    complexity: TcmComplexity | None = None
    contact_due: date | None = None
    visit_due: date | None = None
    contact_on: date | None = None
    visit_on: date | None = None
    tasks: list[CareTask] = field(default_factory=list)  # the two deadline tasks
    holidays: list[date] = field(default_factory=list)  # weekdays the contact count skipped
    judgement: TcmJudgement | None = None


@dataclass
class Phq9Part:
    patient_id: str = PHQ9_PATIENT
    assessment_id: str | None = None
    authored_on: date | None = None
    total: int | None = None
    band: str | None = None
    observations: int = 0
    follow_up: CareTask | None = None


def store_readings(
    sessions: SessionFactory,
    paths: Sequence[Path],
    *,
    rules: ReadingRules,
    tz: ZoneInfo,
    month: tuple[int, int],
    rule_year: RuleYear,
) -> RpmPart:
    """The device hub's NDJSON through ``ingest_observations``; then the month-end alerts."""
    part = RpmPart()
    for path in paths:
        with unit_of_work(sessions) as session:
            outcome = ingest_observations(
                Store(session),
                ndjson_lines(path.read_text()),
                rules=rules,
                zone=tz,
                source=ReadingSource(),  # a device hub: every reading names itself
            )
        part.stored += outcome.stored
        part.refused.extend(outcome.refused)
    part.as_of = _month_last(month)
    with unit_of_work(sessions, read_only=True) as session:
        part.alerts = monitoring_alerts(
            Store(session), patient_ids=[part.patient_id], today=part.as_of, rules=rule_year
        )
    return part


async def put_discharges(client: FhirClient, discharges: dict[str, dict[str, Any]]) -> list[str]:
    """The EHR writes its discharge Encounters (a plain PUT: repeating it changes nothing);
    returns what the server refused, in words."""
    refused: list[str] = []
    for reference, resource in discharges.items():
        try:
            await client.update(resource)
        except StatusError as error:
            refused.append(f"the FHIR server refused the EHR's {reference}: {error}")
    return refused


def record_tcm(
    sessions: SessionFactory, *, discharge: str | None, rules: RuleYear, tz: ZoneInfo
) -> tuple[TcmPart, list[str]]:
    """The care team's work on the period the pulled discharge opened; what could not run."""
    part = TcmPart(discharge=discharge)
    policy = tcm_policy(rules, tz=tz)
    with unit_of_work(sessions) as session:
        store = Store(session)
        periods = [
            p
            for p in store.tcm_periods.list_for_patient(part.patient_id)
            if discharge is None or p.discharge_key == discharge
        ]
        if not periods:
            return part, [f"no TCM period was opened for {part.patient_id}'s discharge"]
        period = periods[-1]
        # A demo repeated on the same database finds its contacts recorded: none twice.
        done = {c.kind for c in store.tcm_contacts.list_for_period(period.id)}
        try:
            set_complexity(
                store=store,
                period_id=period.id,
                complexity=TcmComplexity.HIGH,
                recorded_by=_COMPLEXITY_BY,
                policy=policy,
            )
            for new in (_CONTACT, _VISIT):
                if new.kind not in done:
                    record_contact(store=store, period_id=period.id, new=new, policy=policy)
        except (Rejected, NotFound) as error:
            return part, [f"TCM contacts of {part.patient_id} not recorded: {error}"]
    with unit_of_work(sessions, read_only=True) as session:
        store = Store(session)
        period = store.tcm_periods.get(period.id) or period
        contacts = store.tcm_contacts.list_for_period(period.id)
        tasks = store.care_tasks.get_many(
            [t for t in (period.contact_task_id, period.visit_task_id) if t is not None]
        )
    part.discharged_on = period.discharged_on
    part.complexity = period.complexity
    contact_task = tasks.get(period.contact_task_id or "")
    visit_task = tasks.get(period.visit_task_id or "")
    part.tasks = [t for t in (contact_task, visit_task) if t is not None]
    part.contact_due = None if contact_task is None else contact_task.due_end
    part.visit_due = None if visit_task is None else visit_task.due_end
    if part.contact_due is not None:
        day = period.discharged_on + timedelta(days=1)
        while day <= part.contact_due:
            if day.weekday() < 5 and not policy.calendar.is_business_day(day):
                part.holidays.append(day)
            day += timedelta(days=1)
    for contact in contacts:
        if contact.kind == TcmContactKind.INTERACTIVE_CONTACT and part.contact_on is None:
            part.contact_on = contact.occurred_on
        if contact.kind == TcmContactKind.FACE_TO_FACE_VISIT and part.visit_on is None:
            part.visit_on = contact.occurred_on
    return part, []


def judge_tcm(part: TcmPart, sessions: SessionFactory, *, rules: RuleYear, tz: ZoneInfo) -> None:
    """The period's judgement (what the month's report bills, with its reasons)."""
    with unit_of_work(sessions, read_only=True) as session:
        views = periods_of(
            store=Store(session), patient_id=part.patient_id, policy=tcm_policy(rules, tz=tz)
        )
    if views:
        part.judgement = views[-1].judgement


def record_phq9(
    sessions: SessionFactory, *, instruments: Instruments, tz: ZoneInfo
) -> tuple[Phq9Part, list[str]]:
    part = Phq9Part()
    instrument = instruments.get(_PHQ9.instrument)
    if instrument is None:
        return part, [f"PHQ-9 of {part.patient_id} not recorded: no {_PHQ9.instrument} instrument"]
    try:
        with unit_of_work(sessions) as session:
            store = Store(session)
            # A demo repeated on the same database finds the response it recorded.
            earlier = [
                r
                for r in store.assessments.history(_PHQ9.patient_id, instrument.questionnaire)
                if r.authored == _PHQ9.authored
            ]
            if earlier:
                response = scored_view(instruments, earlier[0])
                tasks = [
                    t
                    for t in store.care_tasks.list_for_patient(_PHQ9.patient_id)
                    if t.authored_on == response.authored and t.kind == CareTaskKind.FOLLOW_UP
                ]
                part.follow_up = tasks[0] if tasks else None
            else:
                recorded = record_assessment(store=store, instruments=instruments, new=_PHQ9, tz=tz)
                response = recorded.assessment
                part.observations = len(recorded.observations)
                part.follow_up = recorded.tasks[0] if recorded.tasks else None
    except (Rejected, NotFound) as error:
        return part, [f"PHQ-9 of {part.patient_id} not recorded: {error}"]
    part.assessment_id = response.id
    part.authored_on = response.authored.astimezone(tz).date()
    part.total = response.total
    part.band = response.band
    return part, []


def _month_last(month: tuple[int, int]) -> date:
    year, number = month
    return date(year + number // 12, number % 12 + 1, 1) - timedelta(days=1)
