"""The TCM service on a scratch database holding fixtures/api/caseload.yaml: a discharge opens a
period with two deadline tasks (idempotent, only for patients we have), contacts and visits
complete them, complexity moves the visit deadline, the month report bills it first, and TCM
minutes never reach the CCM roll-up. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.billing.loader import load_rule_year
from fhirbridge.config import PROJECT_ROOT
from fhirbridge.domain import (
    CareTaskKind,
    ContactMode,
    Program,
    StaffRole,
    TaskStatus,
    TimeEntry,
    TimeEntryActivity,
    TimeEntryStatus,
)
from fhirbridge.domain.transitional_care import TcmComplexity, TcmContactKind
from fhirbridge.mapping.discharge import load_discharge_rules
from fhirbridge.persistence import (
    ConstraintViolation,
    OutboxState,
    Store,
    make_engine,
    unit_of_work,
)
from fhirbridge.persistence.scratch import Backend, DatabaseUnavailable, scratch_database
from fhirbridge.services import transitional_care as tcm
from fhirbridge.services.billing import monthly_report
from fhirbridge.services.errors import Rejected
from fhirbridge.services.worklist import Urgency, WorkKind, WorklistPolicy, build_worklist
from tests.api.support import load_caseload
from tests.conftest import POSTGRES_URL
from tests.sessions import session_factory, shipped_mappings

UTC_ZONE = ZoneInfo("UTC")
POLICY = tcm.tcm_policy(load_rule_year(2026), tz=UTC_ZONE)
RULES = load_discharge_rules(PROJECT_ROOT / "mappings", shipped_mappings().terminology)
NOW = datetime(2026, 3, 6, 18, 0, tzinfo=UTC)
FIXTURE = PROJECT_ROOT / "fixtures/transitional_care/discharge-home.json"


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    backend: Backend = request.param
    try:
        with scratch_database(backend, workdir=tmp_path, postgres_url=POSTGRES_URL) as url:
            load_caseload(url)
            engine = make_engine(url)
            try:
                yield session_factory(engine)
            finally:
                engine.dispose()
    except DatabaseUnavailable as error:
        pytest.skip(f"PostgreSQL not reachable at {error.url} ({error.reason})")


def discharge(**changes: Any) -> dict[str, Any]:
    resource: dict[str, Any] = json.loads(FIXTURE.read_text())
    resource.update(changes)
    return resource


def receive(sessions: sessionmaker[Session], resource: dict[str, Any]) -> tcm.Opening:
    with unit_of_work(sessions) as session:
        return tcm.receive_discharge(
            store=Store(session), resource=resource, rules=RULES, policy=POLICY, now=NOW
        )


def opened(sessions: sessionmaker[Session]) -> str:
    opening = receive(sessions, discharge())
    assert opening.outcome == tcm.OpeningOutcome.OPENED
    assert opening.period is not None
    return opening.period.id


def contact(
    sessions: sessionmaker[Session],
    period_id: str,
    kind: TcmContactKind,
    when: datetime,
    staff_id: str = "cm-north",
) -> None:
    mode = ContactMode.IN_PERSON if kind == TcmContactKind.FACE_TO_FACE_VISIT else None
    with unit_of_work(sessions) as session:
        tcm.record_contact(
            store=Store(session),
            period_id=period_id,
            new=tcm.NewTcmContact(kind=kind, occurred_at=when, staff_id=staff_id, mode=mode),
            policy=POLICY,
        )


def view(sessions: sessionmaker[Session]) -> tcm.TcmView:
    with unit_of_work(sessions, read_only=True) as session:
        (only,) = tcm.periods_of(store=Store(session), patient_id="pat-north-1", policy=POLICY)
        return only


def test_a_discharge_opens_a_period_with_two_deadline_tasks(
    sessions: sessionmaker[Session],
) -> None:
    opened(sessions)

    found = view(sessions)
    assert found.period.discharged_on == date(2026, 3, 6)
    assert found.contact_task is not None
    assert found.visit_task is not None
    assert (found.contact_task.kind, found.contact_task.due_end) == (
        CareTaskKind.TCM_CONTACT,
        date(2026, 3, 10),  # Friday's discharge: business day 2 is Tuesday
    )
    assert (found.visit_task.kind, found.visit_task.due_end) == (
        CareTaskKind.TCM_VISIT,
        date(2026, 3, 13),  # day 7 until moderate complexity is recorded
    )
    assert found.contact_task.status == TaskStatus.READY


def test_the_deadline_tasks_are_queued_for_the_fhir_server(
    sessions: sessionmaker[Session],
) -> None:
    opened(sessions)

    found = view(sessions)
    with unit_of_work(sessions, read_only=True) as session:
        queued = {e.local_id for e in Store(session).outbox.in_state(OutboxState.PENDING)}
    assert {found.contact_task.id, found.visit_task.id} <= queued  # type: ignore[union-attr]


def test_the_same_discharge_twice_opens_one_period(sessions: sessionmaker[Session]) -> None:
    first = opened(sessions)

    again = receive(sessions, discharge())

    assert again.outcome == tcm.OpeningOutcome.ALREADY_OPEN
    assert again.period is not None
    assert again.period.id == first
    with unit_of_work(sessions, read_only=True) as session:
        assert len(Store(session).care_tasks.list_for_patient("pat-north-1")) == 2


def test_a_patient_we_do_not_have_opens_nothing(sessions: sessionmaker[Session]) -> None:
    stranger = discharge(subject={"reference": "Patient/somebody-else"})

    assert receive(sessions, stranger).outcome == tcm.OpeningOutcome.UNKNOWN_PATIENT


def test_a_transfer_to_a_facility_opens_nothing(sessions: sessionmaker[Session]) -> None:
    to_snf = json.loads((FIXTURE.parent / "discharge-to-snf.json").read_text())

    opening = receive(sessions, to_snf)

    assert opening.outcome == tcm.OpeningOutcome.NOT_A_DISCHARGE
    assert opening.reason == "Encounter: discharge disposition snf is not to the community"


def test_contact_and_visit_complete_their_tasks_and_earn_99496(
    sessions: sessionmaker[Session],
) -> None:
    period_id = opened(sessions)
    with unit_of_work(sessions) as session:
        tcm.set_complexity(
            store=Store(session),
            period_id=period_id,
            complexity=TcmComplexity.HIGH,
            recorded_by="sup-north",
            policy=POLICY,
        )

    contact(
        sessions,
        period_id,
        TcmContactKind.INTERACTIVE_CONTACT,
        datetime(2026, 3, 10, 15, tzinfo=UTC),
    )
    contact(
        sessions,
        period_id,
        TcmContactKind.FACE_TO_FACE_VISIT,
        datetime(2026, 3, 13, 10, tzinfo=UTC),
        staff_id="sup-north",
    )

    found = view(sessions)
    assert found.contact_task.status == TaskStatus.COMPLETED  # type: ignore[union-attr]
    assert found.visit_task.status == TaskStatus.COMPLETED  # type: ignore[union-attr]
    assert found.judgement.earned is not None
    assert found.judgement.earned.code == "99496"
    assert found.period.practitioner_id == "sup-north"


def test_moderate_complexity_moves_the_visit_deadline_to_day_14(
    sessions: sessionmaker[Session],
) -> None:
    period_id = opened(sessions)

    with unit_of_work(sessions) as session:
        tcm.set_complexity(
            store=Store(session),
            period_id=period_id,
            complexity=TcmComplexity.MODERATE,
            recorded_by="cm-north",
            policy=POLICY,
        )

    assert view(sessions).visit_task.due_end == date(2026, 3, 20)  # type: ignore[union-attr]


def test_two_unsuccessful_attempts_complete_the_contact_task(
    sessions: sessionmaker[Session],
) -> None:
    period_id = opened(sessions)

    contact(
        sessions,
        period_id,
        TcmContactKind.UNSUCCESSFUL_ATTEMPT,
        datetime(2026, 3, 9, 9, tzinfo=UTC),
    )
    assert view(sessions).contact_task.status == TaskStatus.READY  # type: ignore[union-attr]
    contact(
        sessions,
        period_id,
        TcmContactKind.UNSUCCESSFUL_ATTEMPT,
        datetime(2026, 3, 10, 9, tzinfo=UTC),
    )

    assert view(sessions).contact_task.status == TaskStatus.COMPLETED  # type: ignore[union-attr]


def test_a_contact_before_the_discharge_is_refused_naming_the_field(
    sessions: sessionmaker[Session],
) -> None:
    period_id = opened(sessions)

    with pytest.raises(Rejected) as refused:
        contact(
            sessions,
            period_id,
            TcmContactKind.INTERACTIVE_CONTACT,
            datetime(2026, 3, 5, tzinfo=UTC),
        )

    assert [e.field for e in refused.value.errors] == ["occurred_at"]


def test_another_teams_staff_cannot_record_a_contact(sessions: sessionmaker[Session]) -> None:
    period_id = opened(sessions)

    with pytest.raises(Rejected) as refused:
        contact(sessions, period_id, TcmContactKind.INTERACTIVE_CONTACT, NOW, staff_id="cm-south")

    assert [e.field for e in refused.value.errors] == ["staff_id"]


def test_the_month_report_bills_tcm_and_tcm_minutes_never_count_toward_ccm(
    sessions: sessionmaker[Session],
) -> None:
    """pat-north-1 is enrolled in CCM. 15 CCM minutes alone earn nothing (20 needed); the 30
    minutes of the TCM contact stay on the contact and are not added to them."""
    period_id = opened(sessions)
    with unit_of_work(sessions) as session:
        store = Store(session)
        tcm.set_complexity(
            store=store,
            period_id=period_id,
            complexity=TcmComplexity.MODERATE,
            recorded_by="cm-north",
            policy=POLICY,
        )
        tcm.record_contact(
            store=store,
            period_id=period_id,
            new=tcm.NewTcmContact(
                kind=TcmContactKind.INTERACTIVE_CONTACT,
                occurred_at=datetime(2026, 3, 9, 14, tzinfo=UTC),
                staff_id="cm-north",
                mode=ContactMode.VIRTUAL,
                minutes=30,
            ),
            policy=POLICY,
        )
        store.save(
            TimeEntry(
                id="te-ccm-15",
                status=TimeEntryStatus.FINISHED,
                patient_id="pat-north-1",
                enrollment_id="enr-north-1-ccm",
                program=Program.CCM,
                staff_id="cm-north",
                staff_role=StaffRole.RN,
                activity=TimeEntryActivity.CARE_COORDINATION,
                start=datetime(2026, 3, 11, 14, tzinfo=UTC),
                end=datetime(2026, 3, 11, 14, 15, tzinfo=UTC),
            )
        )
    contact(
        sessions,
        period_id,
        TcmContactKind.FACE_TO_FACE_VISIT,
        datetime(2026, 3, 18, 10, tzinfo=UTC),
        staff_id="sup-north",
    )

    with unit_of_work(sessions, read_only=True) as session:
        report = monthly_report(
            Store(session),
            month=(2026, 3),
            tz=UTC_ZONE,
            rules=load_rule_year(2026),
            patient_ids=["pat-north-1"],
        )

    lines = {(line.program, line.code): line for line in report.lines if line.code}
    assert lines[(Program.TCM, "99495")].earned
    assert lines[(Program.TCM, "99495")].practitioner_id == "sup-north"
    assert not lines[(Program.TCM, "99496")].earned
    ccm = lines[(Program.CCM, "99490")]
    assert not ccm.earned
    assert ccm.explanation is not None
    assert ccm.explanation.startswith("15 of 20 minutes")


def test_the_deadlines_are_on_the_care_managers_worklist(sessions: sessionmaker[Session]) -> None:
    with unit_of_work(sessions) as session:
        store = Store(session)
        enrollment = store.enrollments.require("enr-north-1-ccm")
        enrollment.care_manager_id = "cm-north"
        store.enrollments.save(enrollment)
    opened(sessions)

    with unit_of_work(sessions, read_only=True) as session:
        worklist = build_worklist(
            store=Store(session),
            staff_id="cm-north",
            now=NOW,
            tz=UTC_ZONE,
            policy=WorklistPolicy(),
            rules=None,
        )

    tasks = [(i.due_on, i.urgency) for i in worklist.items if i.kind == WorkKind.TASK]
    assert tasks == [(date(2026, 3, 10), Urgency.URGENT), (date(2026, 3, 13), Urgency.ROUTINE)]


def test_a_deadline_in_a_year_without_calendar_says_so_on_its_task(
    sessions: sessionmaker[Session],
) -> None:
    thursday = discharge(id="disch-2027", period={"end": "2027-12-30T16:00:00Z"})

    receive(sessions, thursday)

    found = view(sessions)
    assert found.contact_task is not None
    assert found.contact_task.due_end == date(2028, 1, 4)  # Dec 31 is a holiday; weekends skipped
    assert found.contact_task.description == (
        "TCM: interactive contact by business day 2 after the discharge of 2027-12-30 "
        "(no us-federal-holidays calendar for 2028: only weekends were skipped)"
    )
    assert found.calendar_note == (
        "no us-federal-holidays calendar for 2028: only weekends were skipped"
    )


def test_one_discharge_received_by_six_at_once_opens_one_period_with_two_tasks(
    sessions: sessionmaker[Session],
) -> None:
    barrier = threading.Barrier(6)

    def race(_: int) -> str:
        barrier.wait(timeout=30)
        try:
            return receive(sessions, discharge()).outcome.value
        except ConstraintViolation:  # the unique discharge key refused a concurrent loser
            return "refused"

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(race, range(6)))

    with sessions() as session:
        store = Store(session)
        periods = store.tcm_periods.list_for_patient("pat-north-1")
        tasks = [
            t
            for t in store.care_tasks.list_for_patient("pat-north-1")
            if t.kind in (CareTaskKind.TCM_CONTACT, CareTaskKind.TCM_VISIT)
        ]
    assert outcomes.count(tcm.OpeningOutcome.OPENED.value) == 1, outcomes
    assert set(outcomes) <= {"opened", "already-open", "refused"}, outcomes
    assert len(periods) == 1
    assert len(tasks) == 2
