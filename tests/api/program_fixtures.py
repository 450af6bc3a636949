"""Programs billed outside the time roll-up, stored for the API tests on top of the API
caseload (fixtures/api/caseload.yaml): RPM device readings, a TCM period, an APCM enrollment."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from fhirbridge.billing.loader import load_rule_year
from fhirbridge.config import PROJECT_ROOT
from fhirbridge.domain import (
    ConsentMethod,
    ConsentStatus,
    ContactMode,
    DeviceReading,
    Enrollment,
    EnrollmentStatus,
    Program,
    ProgramConsent,
    StaffRole,
    TimeEntry,
    TimeEntryStatus,
)
from fhirbridge.domain.observation import reading_id
from fhirbridge.domain.transitional_care import TcmComplexity, TcmContactKind
from fhirbridge.mapping.discharge import load_discharge_rules
from fhirbridge.persistence import Store, make_engine, unit_of_work
from fhirbridge.services import transitional_care as tcm
from tests.sessions import session_factory, shipped_mappings

HUB = "urn:test:device-hub"
DISCHARGE = PROJECT_ROOT / "fixtures/transitional_care/discharge-home.json"


@contextmanager
def _store(url: str) -> Iterator[Store]:
    engine = make_engine(url)
    try:
        with unit_of_work(session_factory(engine)) as session:
            yield Store(session)
    finally:
        engine.dispose()


def _enrolled(
    store: Store, enrollment_id: str, patient_id: str, program: Program, start: date
) -> Enrollment:
    enrollment = Enrollment(
        id=enrollment_id,
        patient_id=patient_id,
        program=program,
        status=EnrollmentStatus.ACTIVE,
        start=start,
        conditions=["Condition/ehr-c-1001", "Condition/ehr-c-1002"],
        billing_practitioner_id="sup-north",
    )
    # Repositories directly: Store.save would queue them for the FHIR server.
    store.enrollments.save(enrollment)
    store.consents.save(
        ProgramConsent(
            id=f"con-{enrollment_id}",
            patient_id=patient_id,
            enrollment_id=enrollment_id,
            program=program,
            status=ConsentStatus.ACTIVE,
            given_on=start,
            method=ConsentMethod.VERBAL,
            recorded_by_id="cm-north",
        )
    )
    return enrollment


def store_rpm_october(url: str, *, days: int = 18) -> None:
    """pat-north-2 in RPM from 2026-10-01 (period 1: October 1 to 30), a blood pressure
    reading from a device on each of the first ``days`` days."""
    with _store(url) as store:
        _enrolled(store, "enr-north-2-rpm", "pat-north-2", Program.RPM, date(2026, 10, 1))
        readings = []
        for n in range(days):
            day = date(2026, 10, 1) + timedelta(days=n)
            source = f"bp-{day.isoformat()}"
            readings.append(
                DeviceReading(
                    id=reading_id(HUB, source),
                    patient_id="pat-north-2",
                    code="85354-9",
                    effective_at=datetime(day.year, day.month, day.day, 9, tzinfo=UTC),
                    day=day,
                    value=Decimal(128),
                    second_value=Decimal(82),
                    unit="mm[Hg]",
                    device="Device/cuff-1",
                    source_system=HUB,
                    source_value=source,
                )
            )
        store.device_readings.ingest(readings, report=False)


def store_tcm_march(url: str) -> None:
    """pat-north-1 discharged home (fixtures/transitional_care/discharge-home.json), moderate
    complexity, contacted on 2026-03-09 and seen face to face on 2026-03-18: 99495."""
    zone = ZoneInfo("UTC")
    policy = tcm.tcm_policy(load_rule_year(2026), tz=zone)
    rules = load_discharge_rules(PROJECT_ROOT / "mappings", shipped_mappings().terminology)
    with _store(url) as store:
        opening = tcm.receive_discharge(
            store=store,
            resource=json.loads(DISCHARGE.read_text()),
            rules=rules,
            policy=policy,
            now=datetime(2026, 3, 6, 18, tzinfo=UTC),
        )
        assert opening.period is not None
        period_id = opening.period.id
        tcm.set_complexity(
            store=store,
            period_id=period_id,
            complexity=TcmComplexity.MODERATE,
            recorded_by="cm-north",
            policy=policy,
        )
        contacts: list[tuple[TcmContactKind, datetime, str, ContactMode]] = [
            (
                TcmContactKind.INTERACTIVE_CONTACT,
                datetime(2026, 3, 9, 14, tzinfo=UTC),
                "cm-north",
                ContactMode.VIRTUAL,
            ),
            (
                TcmContactKind.FACE_TO_FACE_VISIT,
                datetime(2026, 3, 18, 10, tzinfo=UTC),
                "sup-north",
                ContactMode.IN_PERSON,
            ),
        ]
        for kind, when, staff_id, mode in contacts:
            tcm.record_contact(
                store=store,
                period_id=period_id,
                new=tcm.NewTcmContact(kind=kind, occurred_at=when, staff_id=staff_id, mode=mode),
                policy=policy,
            )


def store_apcm_with_ccm_minutes_october(url: str) -> None:
    """pat-north-1 (in CCM since January) also in APCM from 2026-10-01, with 25 CCM minutes
    on 2026-10-14: APCM's G0557 is billed, and it excludes CCM's 99490 for the month."""
    with _store(url) as store:
        _enrolled(store, "enr-north-1-apcm", "pat-north-1", Program.APCM, date(2026, 10, 1))
        store.time_entries.save(
            TimeEntry(
                id="te-n1-ccm-25",
                status=TimeEntryStatus.FINISHED,
                patient_id="pat-north-1",
                enrollment_id="enr-north-1-ccm",
                program=Program.CCM,
                staff_id="cm-north",
                staff_role=StaffRole.RN,
                start=datetime(2026, 10, 14, 14, tzinfo=UTC),
                minutes=25,
            )
        )
