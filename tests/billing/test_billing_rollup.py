"""Behaviour of roll_up beyond the scenario tables: input checks, result values, invariants."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fhirbridge.billing as billing
from fhirbridge.billing import (
    BilledCode,
    RollUpInputError,
    RuleYearMismatch,
    load_rule_year,
    roll_up,
)
from fhirbridge.domain import (
    ConsentMethod,
    ConsentStatus,
    ContactMode,
    Enrollment,
    EnrollmentStatus,
    Program,
    ProgramConsent,
    StaffRole,
    TimeEntry,
    TimeEntryActivity,
    TimeEntryStatus,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "billing"
TZ = ZoneInfo("America/New_York")
RULES_2025 = load_rule_year(2025)


def _enrollment(
    program: Program, *, id: str | None = None, practitioner: str = "dr-a"
) -> Enrollment:
    return Enrollment(
        id=id or f"e-{program.value}",
        patient_id="p1",
        program=program,
        status=EnrollmentStatus.ACTIVE,
        start=date(2025, 1, 6),
        conditions=["Condition/a", "Condition/b"],
        billing_practitioner_id=practitioner,
    )


def _consent(enrollment: Enrollment) -> ProgramConsent:
    return ProgramConsent(
        id=f"c-{enrollment.id}",
        patient_id="p1",
        enrollment_id=enrollment.id,
        program=enrollment.program,
        status=ConsentStatus.ACTIVE,
        given_on=date(2025, 1, 6),
        method=ConsentMethod.WRITTEN,
        recorded_by_id="s1",
    )


def _entry(
    id: str, enrollment: Enrollment, role: StaffRole, minutes: int, *, day: int = 5
) -> TimeEntry:
    return TimeEntry(
        id=id,
        patient_id="p1",
        enrollment_id=enrollment.id,
        program=enrollment.program,
        staff_id=f"s-{role.value}",
        staff_role=role,
        activity=TimeEntryActivity.CHECK_IN_CALL,
        mode=ContactMode.VIRTUAL,
        status=TimeEntryStatus.FINISHED,
        start=datetime(2025, 3, day, 10, 0, tzinfo=TZ),
        minutes=minutes,
        interactive=True,
    )


def test_public_api_is_small_and_importable() -> None:
    assert sorted(billing.__all__) == sorted(
        [
            "DEFAULT_RULES_DIR",
            "BilledCode",
            "BillingError",
            "EarnedCode",
            "MonthlyResult",
            "NotEarned",
            "RollUpInputError",
            "RuleFileError",
            "RuleProblem",
            "RuleYear",
            "RuleYearMismatch",
            "RuleYearMissing",
            "SetAside",
            "latest_rule_year",
            "load_rule_year",
            "load_rules",
            "roll_up",
        ]
    )
    assert all(hasattr(billing, name) for name in billing.__all__)


def test_rules_of_another_year_are_refused() -> None:
    with pytest.raises(RuleYearMismatch, match="CY2025 but the month is 2026-01"):
        roll_up(
            rules=RULES_2025, month=(2026, 1), patient_id="p1",
            enrollments=[], consents=[], entries=[], tz=TZ,
        )  # fmt: skip


def test_an_entry_of_another_patient_is_refused() -> None:
    ccm = _enrollment(Program.CCM)
    stray = _entry("t1", ccm, StaffRole.RN, 20)
    stray.patient_id = "p2"

    with pytest.raises(RollUpInputError, match="entry t1 belongs to another patient"):
        roll_up(
            rules=RULES_2025, month=(2025, 3), patient_id="p1",
            enrollments=[ccm], consents=[_consent(ccm)], entries=[stray], tz=TZ,
        )  # fmt: skip


def test_billed_elsewhere_must_be_a_declared_code_of_the_year() -> None:
    with pytest.raises(RollUpInputError, match="99490 is not a CY2025 code billed outside"):
        roll_up(
            rules=RULES_2025, month=(2025, 3), patient_id="p1", enrollments=[], consents=[],
            entries=[], tz=TZ, billed_elsewhere=[BilledCode("99490", "dr-a")],
        )  # fmt: skip


def test_earned_code_carries_practitioner_minutes_and_entries() -> None:
    ccm = _enrollment(Program.CCM, practitioner="dr-z")
    entries = [_entry("t1", ccm, StaffRole.RN, 12), _entry("t2", ccm, StaffRole.RN, 30, day=9)]

    result = roll_up(
        rules=RULES_2025, month=(2025, 3), patient_id="p1",
        enrollments=[ccm], consents=[_consent(ccm)], entries=entries, tz=TZ,
    )  # fmt: skip

    earned = {e.code: e for e in result.earned}
    assert earned["99490"].practitioner_id == "dr-z"
    assert earned["99490"].minutes == 42
    assert earned["99490"].entry_ids == ("t1", "t2")
    assert result.units("99439") == 1
    assert result.reason("99491") == "0 of 30 minutes"


def test_override_that_counts_physician_time_changes_the_outcome() -> None:
    rules = load_rule_year(2025, override=FIXTURES / "overrides" / "physician-time-for-99490.yaml")
    ccm = _enrollment(Program.CCM)

    result = roll_up(
        rules=rules, month=(2025, 3), patient_id="p1", enrollments=[ccm],
        consents=[_consent(ccm)], entries=[_entry("t1", ccm, StaffRole.PHYSICIAN, 25)], tz=TZ,
    )  # fmt: skip

    assert result.units("99490") == 1
    assert result.reason("99491") == "25 of 30 minutes"


_PROGRAM_ROLES = st.sampled_from(
    [
        (Program.CCM, StaffRole.RN),
        (Program.CCM, StaffRole.PHYSICIAN),
        (Program.COMPLEX_CCM, StaffRole.RN),
        (Program.COMPLEX_CCM, StaffRole.PHYSICIAN),
        (Program.PCM, StaffRole.PHYSICIAN),
        (Program.PCM, StaffRole.CLINICAL_STAFF),
        (Program.RPM, StaffRole.RN),
        (Program.BHI, StaffRole.LCSW),
        (Program.COCM, StaffRole.BH_CARE_MANAGER),
    ]
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(_PROGRAM_ROLES, st.integers(1, 90), st.integers(1, 28), st.booleans()),
        max_size=12,
    )
)
def test_no_entry_counts_toward_two_code_families(
    raw: list[tuple[tuple[Program, StaffRole], int, int, bool]],
) -> None:
    enrollments = {
        program: _enrollment(program, practitioner="dr-a" if split else "dr-b")
        for (program, _), _, _, split in raw
    }
    entries = [
        _entry(f"t{i}", enrollments[program], role, minutes, day=day)
        for i, ((program, role), minutes, day, _) in enumerate(raw)
    ]

    result = roll_up(
        rules=RULES_2025, month=(2025, 3), patient_id="p1",
        enrollments=list(enrollments.values()),
        consents=[_consent(e) for e in enrollments.values()], entries=entries, tz=TZ,
    )  # fmt: skip

    add_ons = set(RULES_2025.add_on_codes())
    counted = [i for e in result.earned if e.code not in add_ons for i in e.entry_ids]
    assert len(counted) == len(set(counted))
    total = sum(e.minutes for e in entries if e.minutes is not None)
    assert sum(e.minutes for e in result.earned if e.code not in add_ons) <= total


def test_minutes_in_the_month_are_counted_in_utc_across_a_dst_change() -> None:
    ccm = _enrollment(Program.CCM)
    entry = _entry("t1", ccm, StaffRole.RN, 0)
    entry.minutes = None
    entry.start = datetime(2025, 3, 9, 1, 50, tzinfo=TZ)  # 10 minutes before clocks jump
    entry.end = entry.start.astimezone(ZoneInfo("UTC")) + timedelta(minutes=20)

    result = roll_up(
        rules=RULES_2025, month=(2025, 3), patient_id="p1",
        enrollments=[ccm], consents=[_consent(ccm)], entries=[entry], tz=TZ,
    )  # fmt: skip

    assert result.units("99490") == 1
    assert result.reason("99439") == "0 of the next 20 minutes"


def test_entry_read_without_a_staff_role_is_set_aside() -> None:
    ccm = _enrollment(Program.CCM)
    entry = _entry("t1", ccm, StaffRole.RN, 25)
    entry.staff_role = None

    result = roll_up(
        rules=RULES_2025, month=(2025, 3), patient_id="p1",
        enrollments=[ccm], consents=[_consent(ccm)], entries=[entry], tz=TZ,
    )  # fmt: skip

    assert [(s.entry_id, s.reason) for s in result.set_aside] == [
        ("t1", "incomplete entry: no staff role")
    ]
    assert result.reason("99490") == "0 of 20 minutes"


def test_entry_read_without_a_start_time_is_set_aside() -> None:
    ccm = _enrollment(Program.CCM)
    entry = _entry("t1", ccm, StaffRole.RN, 25)
    entry.start = None

    result = roll_up(
        rules=RULES_2025, month=(2025, 3), patient_id="p1",
        enrollments=[ccm], consents=[_consent(ccm)], entries=[entry], tz=TZ,
    )  # fmt: skip

    assert [(s.entry_id, s.reason) for s in result.set_aside] == [
        ("t1", "incomplete entry: no start time")
    ]
