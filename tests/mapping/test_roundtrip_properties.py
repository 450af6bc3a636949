"""Property: for any record we can hold, domain -> FHIR -> domain gives the same record."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fhirbridge import domain
from fhirbridge.domain import Code
from tests.mapping.support import demo, demo_context, map_back, mappings

ids = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=24)
patients = st.sampled_from([p.id for p in demo().patients])
members = st.sampled_from([m.id for m in demo().members])
texts = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=80
).filter(lambda s: s.strip() == s and s != "")
dates = st.dates(date(2000, 1, 1), date(2040, 12, 31))
times = st.datetimes(datetime(2000, 1, 1), datetime(2040, 1, 1), timezones=st.just(UTC)).map(
    lambda t: t.replace(microsecond=0)
)
conditions = st.lists(ids.map(lambda i: f"Condition/{i}"), max_size=3, unique=True)
decimals = st.decimals(Decimal("0"), Decimal("1000"), places=1)


def codes(*systems: str) -> st.SearchStrategy[Code]:
    return st.builds(
        Code,
        system=st.sampled_from(systems),
        code=st.text("ABCDEFGHIJ0123456789.-", min_size=1, max_size=12),
        display=st.none() | texts,
    )


enrollments = st.builds(
    domain.Enrollment,
    id=ids,
    patient_id=patients,
    program=st.sampled_from(domain.Program),
    status=st.sampled_from(domain.EnrollmentStatus),
    start=dates,
    end=st.none() | dates,
    conditions=conditions,
    risk_level=st.none() | st.sampled_from(domain.RiskLevel),
    care_manager_id=st.none() | members,
    billing_practitioner_id=st.none() | members,
)
consents = st.builds(
    domain.ProgramConsent,
    id=ids,
    patient_id=patients,
    enrollment_id=ids,
    program=st.sampled_from(domain.Program),
    status=st.sampled_from(domain.ConsentStatus),
    given_on=dates,
    method=st.sampled_from(domain.ConsentMethod),
    recorded_by_id=members,
    scope=st.none(),
)
targets = (
    st.builds(
        domain.GoalTarget,
        measure=st.none() | codes("loinc", "snomed"),
        value=st.none(),
        low=decimals,
        high=st.none() | decimals,
        unit=st.none() | st.sampled_from(["%", "mm[Hg]", "kg"]),
        due=st.none() | dates,
    )
    | st.builds(
        domain.GoalTarget,
        measure=codes("loinc", "snomed"),
        due=st.none() | dates,
    )
    | st.builds(
        domain.GoalTarget,
        measure=st.none() | codes("loinc"),
        value=decimals,
        unit=st.sampled_from(["%", "mg/dL"]),
        due=st.none() | dates,
    )
)
goals = st.builds(
    domain.Goal,
    id=ids,
    patient_id=patients,
    lifecycle_status=st.sampled_from(domain.GoalLifecycle),
    description=st.none() | texts,
    description_code=st.none() | codes("snomed", "loinc"),
    achievement_status=st.none() | st.sampled_from(domain.AchievementStatus),
    start=st.none() | dates,
    target=st.none() | targets,
    expressed_by=st.none() | members,
    addresses=conditions,
)
care_plans = st.builds(
    domain.CarePlan,
    id=ids,
    patient_id=patients,
    status=st.sampled_from(domain.CarePlanStatus),
    title=st.none() | texts,
    narrative=st.none() | texts,
    enrollment_id=st.none() | ids,
    author_id=st.none() | members,
    start=st.none() | dates,
    end=st.none() | dates,
    problems=conditions,
    goal_ids=st.lists(ids, max_size=3, unique=True),
    task_ids=st.lists(ids, max_size=3, unique=True),
    referral_ids=st.lists(ids, max_size=3, unique=True),
    contributor_ids=st.lists(members, max_size=3, unique=True),
)
care_tasks = st.builds(
    domain.CareTask,
    id=ids,
    status=st.sampled_from(domain.TaskStatus),
    patient_id=st.none() | patients,
    kind=st.none() | st.sampled_from(domain.CareTaskKind),
    authored_on=st.none() | times,
    description=st.none() | texts,
    priority=st.none() | st.sampled_from(domain.TaskPriority),
    owner_id=st.none() | members,
    requester_id=st.none() | members,
    due_start=st.none() | dates,
    due_end=st.none() | dates,
    status_reason=st.none() | texts,
    care_plan_id=st.none() | ids,
)
time_entries = st.builds(
    domain.TimeEntry,
    id=ids,
    patient_id=patients,
    enrollment_id=ids,
    program=st.sampled_from(domain.Program),
    staff_id=members,
    staff_role=st.sampled_from(domain.StaffRole),
    activity=st.sampled_from(domain.TimeEntryActivity),
    mode=st.sampled_from(domain.ContactMode),
    status=st.sampled_from(domain.TimeEntryStatus),
    start=times,
    end=st.none() | times,
    minutes=st.none() | st.integers(0, 600),
    interactive=st.none() | st.booleans(),
    notes=st.none(),
)
referrals = st.builds(
    domain.Referral,
    id=ids,
    patient_id=patients,
    status=st.sampled_from(domain.ReferralStatus),
    kind=st.none() | st.sampled_from(domain.ReferralKind),
    service=st.none() | codes("snomed", "loinc"),
    categories=st.lists(codes("sdohcc"), max_size=2, unique=True),
    authored_on=st.none() | times,
    requester_id=st.none() | members,
    reason=st.none() | texts,
    reason_code=st.none() | codes("icd10cm", "snomed"),
    priority=st.none() | st.sampled_from(domain.TaskPriority),
    performer_reference=st.none() | ids.map(lambda i: f"Organization/{i}"),
    performer_display=st.none(),
    goal_id=st.none() | ids,
    consent_id=st.none() | ids,
    care_plan_id=st.none() | ids,
    task_status=st.sampled_from(domain.TaskStatus),
    task_status_reason=st.none() | texts,
    task_owner_reference=st.none() | ids.map(lambda i: f"Organization/{i}"),
    outcomes=st.lists(codes("snomed"), max_size=2, unique=True),
    outcome_references=st.lists(ids.map(lambda i: f"Procedure/{i}"), max_size=2, unique=True),
)


def _round_trip(concept: str, record: Any) -> Any:
    ctx = demo_context()
    resources = {m.resource: m.to_fhir(record, ctx) for m in mappings().for_concept(concept)}
    return map_back(concept, resources, ctx)


@settings(max_examples=60, deadline=None)
@given(enrollments)
def test_enrollment_round_trips(record: domain.Enrollment) -> None:
    assert _round_trip("enrollment", record) == record


@settings(max_examples=60, deadline=None)
@given(consents)
def test_consent_round_trips(record: domain.ProgramConsent) -> None:
    assert _round_trip("program_consent", record) == record


@settings(max_examples=60, deadline=None)
@given(goals)
def test_goal_round_trips(record: domain.Goal) -> None:
    assert _round_trip("goal", record) == record


@settings(max_examples=60, deadline=None)
@given(care_plans)
def test_care_plan_round_trips(record: domain.CarePlan) -> None:
    assert _round_trip("care_plan", record) == record


@settings(max_examples=60, deadline=None)
@given(care_tasks)
def test_care_task_round_trips(record: domain.CareTask) -> None:
    assert _round_trip("care_task", record) == record


@settings(max_examples=60, deadline=None)
@given(time_entries)
def test_time_entry_round_trips(record: domain.TimeEntry) -> None:
    assert _round_trip("time_entry", record) == record


@settings(max_examples=60, deadline=None)
@given(referrals)
def test_referral_round_trips(record: domain.Referral) -> None:
    assert _round_trip("referral", record) == record
