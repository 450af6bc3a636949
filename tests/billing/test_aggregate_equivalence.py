"""The SQL pre-aggregated month equals the pure roll-up, patient by patient, on both backends.

"Equal" means the same codes earned (units, practitioner, minutes, counted entries in order,
notes), the same codes not earned with the same reasons and the same entries set aside with
the same reasons, in the same order, when ``roll_up`` is given each patient's enrollments,
consents and time entries of the month.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.billing import MonthlyResult, load_rule_year, roll_up
from fhirbridge.caseload import Caseload, load_caseload
from fhirbridge.domain import (
    ConsentMethod,
    ConsentStatus,
    Enrollment,
    EnrollmentStatus,
    Program,
    ProgramConsent,
    StaffRole,
    TimeEntry,
    TimeEntryStatus,
)
from fhirbridge.persistence import Store, unit_of_work
from fhirbridge.services.billing import practice_month
from tests.billing.billing_db import (
    BACKENDS,
    billing_database,
    empty,
    of_the_month,
    people,
    store_all,
)

RULES = load_rule_year(2026)
STAFF = ("dr-a", "dr-b", "s-1")
DEMO = Path(__file__).resolve().parents[2] / "fixtures" / "demo" / "caseload.yaml"


@pytest.fixture(scope="module", params=BACKENDS)
def sessions(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[sessionmaker[Session]]:
    with billing_database(request.param, tmp_path_factory.mktemp("billing")) as factory:
        yield factory


def _pure(
    caseload: Caseload, patient_id: str, month: tuple[int, int], tz: ZoneInfo
) -> MonthlyResult:
    return roll_up(
        rules=RULES,
        month=month,
        patient_id=patient_id,
        enrollments=[e for e in caseload.enrollments if e.patient_id == patient_id],
        consents=[c for c in caseload.consents if c.patient_id == patient_id],
        entries=of_the_month(
            [t for t in caseload.time_entries if t.patient_id == patient_id], month, tz
        ),
        tz=tz,
    )


def _assert_same_as_pure(
    sessions: sessionmaker[Session],
    caseload: Caseload,
    patient_ids: list[str],
    month: tuple[int, int],
    tz: ZoneInfo,
) -> None:
    with unit_of_work(sessions) as session:
        practice = practice_month(Store(session), rules=RULES, month=month, tz=tz)
    by_patient = {r.patient_id: r for r in practice.results}
    for patient_id in patient_ids:
        pure = _pure(caseload, patient_id, month, tz)
        summary = by_patient.get(patient_id)
        if summary is None:
            assert (pure.earned, pure.not_earned, pure.set_aside) == ((), (), ()), patient_id
        else:
            assert (summary.earned, summary.not_earned, summary.set_aside) == (
                pure.earned,
                pure.not_earned,
                pure.set_aside,
            )


def test_demo_caseload_rolls_up_the_same_through_sql(sessions: sessionmaker[Session]) -> None:
    empty(sessions)
    caseload = load_caseload(DEMO)
    store_all(sessions, [*caseload.patients, *caseload.members, *caseload.care_records()])

    _assert_same_as_pure(
        sessions,
        caseload,
        [p.id for p in caseload.patients],
        (2026, 10),
        ZoneInfo("America/Chicago"),
    )


# -- random practices --------------------------------------------------------------------

MONTH = (2026, 3)  # US clocks change on 8 March, European ones on 29 March
ZONES = st.sampled_from([ZoneInfo("America/New_York"), ZoneInfo("Europe/Berlin"), ZoneInfo("UTC")])
PROGRAMS = st.sampled_from(
    [Program.CCM, Program.COMPLEX_CCM, Program.PCM, Program.RPM, Program.BHI, Program.COCM]
)
ENROLLMENT_STATUS = st.sampled_from(
    [EnrollmentStatus.ACTIVE] * 4 + [EnrollmentStatus.FINISHED, EnrollmentStatus.CANCELLED]
)
ENTRY_STATUS = st.sampled_from(
    [TimeEntryStatus.FINISHED] * 6 + [TimeEntryStatus.IN_PROGRESS, TimeEntryStatus.ENTERED_IN_ERROR]
)
# Days around the month, so starts, ends and consents fall before, inside and after it.
DAYS = st.dates(min_value=date(2026, 2, 25), max_value=date(2026, 4, 3))
# Mostly well before the month, so that enough minutes count for codes to be earned.
EARLY_OR_AROUND = st.one_of(st.just(date(2026, 1, 5)), st.just(date(2026, 1, 5)), DAYS)
ROLES = st.sampled_from(
    [StaffRole.RN, StaffRole.CLINICAL_STAFF, StaffRole.PHYSICIAN] * 3 + [*StaffRole, None]
)
# Mostly inside the month, often within hours of its edges (where time zones matter).
MOMENTS = st.one_of(
    st.datetimes(datetime(2026, 3, 1), datetime(2026, 4, 1), timezones=st.just(UTC)),
    st.datetimes(datetime(2026, 3, 1), datetime(2026, 4, 1), timezones=st.just(UTC)),
    st.datetimes(datetime(2026, 2, 28, 3), datetime(2026, 3, 1, 8), timezones=st.just(UTC)),
    st.datetimes(datetime(2026, 3, 31, 3), datetime(2026, 4, 1, 8), timezones=st.just(UTC)),
)


@st.composite
def practices(draw: st.DrawFn) -> Caseload:
    caseload = Caseload()
    for p in range(draw(st.integers(1, 3))):
        patient_id = f"p{p}"
        enrollments = []
        for n in range(draw(st.integers(1, 2))):
            start = draw(EARLY_OR_AROUND)
            end = draw(
                st.none() | st.none() | st.dates(min_value=start, max_value=date(2026, 4, 5))
            )
            enrollment = Enrollment(
                id=f"{patient_id}-e{n}",
                patient_id=patient_id,
                program=draw(PROGRAMS),
                status=draw(ENROLLMENT_STATUS),
                start=start,
                end=end,
                conditions=[
                    f"Condition/c{i}" for i in range(draw(st.sampled_from([2, 2, 2, 1, 0])))
                ],
                billing_practitioner_id=draw(st.sampled_from(["dr-a"] * 4 + ["dr-b", None])),
            )
            enrollments.append(enrollment)
            for c in range(draw(st.sampled_from([1, 1, 1, 1, 2, 0]))):
                caseload.consents.append(
                    ProgramConsent(
                        id=f"{enrollment.id}-c{c}",
                        patient_id=patient_id,
                        enrollment_id=enrollment.id,
                        program=enrollment.program,
                        status=draw(
                            st.sampled_from([ConsentStatus.ACTIVE] * 5 + [ConsentStatus.INACTIVE])
                        ),
                        given_on=draw(EARLY_OR_AROUND),
                        method=ConsentMethod.VERBAL,
                        recorded_by_id="s-1",
                    )
                )
        caseload.enrollments.extend(enrollments)
        for t in range(draw(st.integers(4, 14))):
            enrollment = draw(st.sampled_from(enrollments))
            start = draw(MOMENTS)
            minutes = draw(
                st.one_of(st.none(), st.integers(0, 70), st.integers(10, 45), st.integers(10, 45))
            )
            end = draw(
                st.timedeltas(min_value=timedelta(0), max_value=timedelta(minutes=90)).map(
                    lambda d, s=start: s + d
                )
                | st.none()
            )
            caseload.time_entries.append(
                TimeEntry(
                    id=f"{patient_id}-t{t}",
                    status=draw(ENTRY_STATUS),
                    patient_id=patient_id,
                    enrollment_id=draw(st.sampled_from([enrollment.id] * 5 + [None])),
                    program=draw(st.sampled_from([enrollment.program] * 5 + [Program.CCM])),
                    staff_id=draw(st.sampled_from(STAFF)),
                    staff_role=draw(ROLES),
                    start=start,
                    end=end,
                    minutes=minutes,
                    interactive=draw(st.sampled_from([True, False, None])),
                )
            )
    return caseload


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(caseload=practices(), tz=ZONES)
def test_random_practices_roll_up_the_same_through_sql(
    sessions: sessionmaker[Session], caseload: Caseload, tz: ZoneInfo
) -> None:
    empty(sessions)
    patient_ids = sorted({e.patient_id for e in caseload.enrollments})
    records: list[Any] = [*people(patient_ids, STAFF), *caseload.care_records()]
    store_all(sessions, records)

    _assert_same_as_pure(sessions, caseload, patient_ids, MONTH, tz)
