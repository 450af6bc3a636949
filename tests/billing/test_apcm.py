"""APCM: the month's tier from the conditions and QMB status on the tier day, what keeps it
from being earned, what it excludes, and the CY2026 behavioural-health add-ons.

Hand-computed scenarios. The pure judgement (``billing.apcm``) first; then the month-end
report from stored records on SQLite and PostgreSQL (``services.apcm_billing`` with the time
roll-up after it).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.billing import load_rule_year
from fhirbridge.billing.apcm import ApcmPatient, judge_apcm
from fhirbridge.billing.errors import RuleFileError
from fhirbridge.billing.loader import DEFAULT_RULES_DIR, latest_rule_year, load_rules
from fhirbridge.billing.programs import ProgramMonth
from fhirbridge.billing.report import ReportLine
from fhirbridge.billing.result import BilledCode
from fhirbridge.billing.rules import RuleYear
from fhirbridge.domain import (
    ConditionPeriod,
    ConsentMethod,
    ConsentStatus,
    Enrollment,
    EnrollmentStatus,
    Program,
    ProgramConsent,
    QmbPeriod,
    StaffRole,
    TimeEntry,
    TimeEntryStatus,
)
from fhirbridge.persistence import Store, unit_of_work
from fhirbridge.services.apcm_billing import apcm_month
from fhirbridge.services.billing import monthly_report
from tests.billing.billing_db import BACKENDS, billing_database, empty, people, store_all

CY2025 = load_rule_year(2025)
CY2026 = load_rule_year(2026)
CHICAGO = ZoneInfo("America/Chicago")


def _enrollment(
    program: Program = Program.APCM,
    *,
    id: str = "p1-apcm",
    start: date = date(2026, 1, 5),
    end: date | None = None,
    conditions: Sequence[str] = ("Condition/a",),
    practitioner: str | None = "dr-a",
    patient: str = "p1",
) -> Enrollment:
    return Enrollment(
        id=id,
        patient_id=patient,
        program=program,
        status=EnrollmentStatus.ACTIVE,
        start=start,
        end=end,
        conditions=list(conditions),
        billing_practitioner_id=practitioner,
    )


def _consent(enrollment: Enrollment, given_on: date | None = None) -> ProgramConsent:
    return ProgramConsent(
        id=f"{enrollment.id}-consent",
        patient_id=enrollment.patient_id,
        enrollment_id=enrollment.id,
        program=enrollment.program,
        status=ConsentStatus.ACTIVE,
        given_on=given_on or enrollment.start,
        method=ConsentMethod.VERBAL,
        recorded_by_id="rn-1",
    )


def _patient(
    *enrollments: Enrollment,
    consented: bool = True,
    added: Sequence[tuple[str, date]] = (),
    qmb_from: date | None = None,
    minutes: Mapping[str, int] | None = None,
) -> ApcmPatient:
    apcm = enrollments[0]
    return ApcmPatient(
        patient_id=apcm.patient_id,
        enrollments=list(enrollments),
        consents=[_consent(e) for e in enrollments] if consented else [],
        condition_periods={
            apcm.id: [
                ConditionPeriod(f"cp-{i}", apcm.id, condition, since)
                for i, (condition, since) in enumerate(added)
            ]
        },
        qmb_periods=[QmbPeriod("q1", apcm.patient_id, qmb_from)] if qmb_from else [],
        service_minutes=dict(minutes or {}),
    )


def _judge(
    patient: ApcmPatient,
    month: tuple[int, int],
    rules: RuleYear = CY2026,
    billed: Sequence[BilledCode] = (),
) -> ProgramMonth:
    return judge_apcm(rules, month, [patient], {patient.patient_id: billed})


def _line(month: ProgramMonth, code: str) -> ReportLine:
    return next(line for line in month.lines if line.code == code)


def _codes(month: ProgramMonth) -> list[tuple[str, bool]]:
    return [(line.code, line.earned) for line in month.lines]


# --- Tiers -----------------------------------------------------------------------------------


def test_one_chronic_condition_earns_g0556_and_says_so() -> None:
    judged = _judge(_patient(_enrollment()), (2026, 6))

    line = _line(judged, "G0556")
    assert line.earned
    assert line.units == 1
    assert line.practitioner_id == "dr-a"
    assert line.program == Program.APCM
    assert line.explanation == "1 chronic condition on 2026-06-30 (Condition/a), not QMB"
    assert judged.billed == {"p1": (BilledCode("G0556", "dr-a"),)}


def test_no_chronic_condition_still_earns_the_lowest_tier() -> None:
    judged = _judge(_patient(_enrollment(conditions=())), (2026, 6))

    assert _line(judged, "G0556").explanation == "no chronic conditions on 2026-06-30, not QMB"


def test_two_chronic_conditions_earn_g0557() -> None:
    enrollment = _enrollment(conditions=("Condition/a", "Condition/b"))

    line = _line(_judge(_patient(enrollment), (2026, 6)), "G0557")

    assert line.earned
    assert line.explanation == (
        "2 chronic conditions on 2026-06-30 (Condition/a, Condition/b), not QMB"
    )


def test_two_chronic_conditions_of_a_qualified_medicare_beneficiary_earn_g0558() -> None:
    enrollment = _enrollment(conditions=("Condition/a", "Condition/b"))

    judged = _judge(_patient(enrollment, qmb_from=date(2026, 1, 1)), (2026, 6))

    assert _codes(judged) == [("G0558", True)]
    assert _line(judged, "G0558").explanation == (
        "2 chronic conditions on 2026-06-30 (Condition/a, Condition/b), QMB"
    )


def test_qmb_status_does_not_lift_a_patient_with_one_condition() -> None:
    judged = _judge(_patient(_enrollment(), qmb_from=date(2026, 1, 1)), (2026, 6))

    assert _codes(judged) == [("G0556", True)]


@pytest.mark.parametrize(
    ("month", "code", "explanation"),
    [
        ((2026, 5), "G0556", "1 chronic condition on 2026-05-31 (Condition/a), not QMB"),
        (
            (2026, 6),
            "G0557",
            "2 chronic conditions on 2026-06-30 (Condition/a, Condition/b), not QMB",
        ),
        (
            (2026, 8),
            "G0557",
            "2 chronic conditions on 2026-08-31 (Condition/a, Condition/b), not QMB",
        ),
        ((2026, 9), "G0558", "2 chronic conditions on 2026-09-30 (Condition/a, Condition/b), QMB"),
    ],
)
def test_a_mid_year_change_moves_the_tier_from_the_month_it_happens_in(
    month: tuple[int, int], code: str, explanation: str
) -> None:
    # Condition/b diagnosed on June 15th; QMB from September 10th. The tier day is the month's
    # last day, so June bills 2+ conditions and September bills QMB.
    patient = _patient(
        _enrollment(), added=[("Condition/b", date(2026, 6, 15))], qmb_from=date(2026, 9, 10)
    )

    judged = _judge(patient, month)

    assert _codes(judged) == [(code, True)]
    assert _line(judged, code).explanation == explanation


def test_an_enrollment_ending_mid_month_is_tiered_on_its_last_day() -> None:
    patient = _patient(
        _enrollment(end=date(2026, 6, 10)), added=[("Condition/b", date(2026, 6, 15))]
    )

    judged = _judge(patient, (2026, 6))

    assert _line(judged, "G0556").explanation == (
        "1 chronic condition on 2026-06-10 (Condition/a), not QMB"
    )


def test_a_condition_period_that_ended_no_longer_counts() -> None:
    apcm = _enrollment(conditions=("Condition/a",))
    patient = ApcmPatient(
        "p1",
        [apcm],
        [_consent(apcm)],
        {
            apcm.id: [
                ConditionPeriod("cp", apcm.id, "Condition/b", date(2026, 2, 1), date(2026, 4, 2))
            ]
        },
    )

    assert _codes(_judge(patient, (2026, 3))) == [("G0557", True)]
    assert _codes(_judge(patient, (2026, 4))) == [("G0556", True)]


def test_of_two_apcm_enrollments_in_a_month_the_later_one_bills() -> None:
    first = _enrollment(id="p1-apcm-old", end=date(2026, 6, 12), practitioner="dr-a")
    second = _enrollment(id="p1-apcm-new", start=date(2026, 6, 13), practitioner="dr-b")

    judged = _judge(_patient(second, first), (2026, 6))

    assert judged.billed == {"p1": (BilledCode("G0556", "dr-b"),)}


def test_a_patient_without_an_apcm_enrollment_gets_no_line() -> None:
    ccm = _enrollment(Program.CCM, id="p1-ccm")

    assert _judge(_patient(ccm), (2026, 6)).lines == ()


# --- Not earned ------------------------------------------------------------------------------


def test_without_consent_the_tier_is_not_earned_and_still_explained() -> None:
    judged = _judge(_patient(_enrollment(), consented=False), (2026, 6))

    line = _line(judged, "G0556")
    assert not line.earned
    assert line.explanation == (
        "no consent on file; tier: 1 chronic condition on 2026-06-30 (Condition/a), not QMB"
    )
    assert judged.billed == {}


def test_without_a_billing_practitioner_the_tier_is_not_earned() -> None:
    judged = _judge(_patient(_enrollment(practitioner=None)), (2026, 6))

    assert _line(judged, "G0556").explanation is not None
    assert _line(judged, "G0556").explanation.startswith(
        "no billing practitioner on the enrollment; tier:"
    )


def test_tcm_billed_earlier_in_the_month_excludes_apcm() -> None:
    judged = _judge(_patient(_enrollment()), (2026, 6), billed=[BilledCode("99495", "dr-b")])

    line = _line(judged, "G0556")
    assert not line.earned
    assert line.explanation is not None
    assert line.explanation.startswith("excluded by 99495 for the same patient; tier:")
    assert judged.billed == {}


# --- Add-ons (CY2026) ------------------------------------------------------------------------


def _with_cocm(
    month: tuple[int, int],
    *,
    cocm_start: date = date(2026, 3, 2),
    practitioner: str = "dr-a",
    minutes: int = 25,
    rules: RuleYear = CY2026,
    program: Program = Program.COCM,
) -> ProgramMonth:
    apcm = _enrollment(conditions=("Condition/a", "Condition/b"))
    cocm = _enrollment(program, id="p1-bh", start=cocm_start, practitioner=practitioner)
    return _judge(_patient(apcm, cocm, minutes={"p1-bh": minutes}), month, rules)


def test_cocm_in_its_first_month_with_apcm_by_the_same_practitioner_earns_g0568() -> None:
    judged = _with_cocm((2026, 3))

    assert _codes(judged) == [("G0557", True), ("G0568", True)]
    line = _line(judged, "G0568")
    assert line.practitioner_id == "dr-a"
    assert line.minutes == 25
    assert line.explanation == (
        "with G0557 by the same practitioner; 25 minutes of CoCM service under enrollment p1-bh"
    )
    assert judged.billed["p1"] == (BilledCode("G0557", "dr-a"), BilledCode("G0568", "dr-a"))


def test_cocm_in_a_later_month_earns_g0569() -> None:
    assert _codes(_with_cocm((2026, 4))) == [("G0557", True), ("G0569", True)]


def test_general_bhi_earns_g0570() -> None:
    judged = _with_cocm((2026, 4), program=Program.BHI)

    assert _codes(judged) == [("G0557", True), ("G0570", True)]


def test_an_add_on_needs_the_same_practitioner_as_apcm() -> None:
    judged = _with_cocm((2026, 4), practitioner="dr-psych")

    line = _line(judged, "G0569")
    assert not line.earned
    assert line.explanation == "CoCM is billed by dr-psych, not by the APCM practitioner dr-a"


def test_an_add_on_needs_countable_service_minutes_in_the_month() -> None:
    line = _line(_with_cocm((2026, 4), minutes=0), "G0569")

    assert not line.earned
    assert line.explanation == "0 of 1 countable CoCM minutes this month"


def test_an_add_on_is_not_earned_when_apcm_is_not() -> None:
    apcm = _enrollment()
    cocm = _enrollment(Program.COCM, id="p1-bh", start=date(2026, 3, 2))
    patient = _patient(apcm, cocm, minutes={"p1-bh": 30})

    judged = _judge(patient, (2026, 4), billed=[BilledCode("99496", "dr-a")])

    assert _codes(judged) == [("G0556", False), ("G0569", False)]
    assert _line(judged, "G0569").explanation == (
        "needs APCM billed by the same practitioner: G0556 is not"
    )


def test_cy2025_has_no_add_ons() -> None:
    apcm = _enrollment(start=date(2025, 1, 6), conditions=("Condition/a", "Condition/b"))
    cocm = _enrollment(Program.COCM, id="p1-bh", start=date(2025, 3, 3))
    patient = _patient(apcm, cocm, minutes={"p1-bh": 80})

    assert _codes(_judge(patient, (2025, 4), CY2025)) == [("G0557", True)]


def test_a_year_without_a_rule_file_is_judged_by_the_latest_rules_and_says_so() -> None:
    rules = latest_rule_year(2027, rules_dir=DEFAULT_RULES_DIR)
    assert rules.rule_year == 2026  # no cy2027.yaml

    judged = _with_cocm((2027, 2), rules=rules)

    assert _codes(judged) == [("G0557", True), ("G0569", True)]
    assert _line(judged, "G0557").explanation == (
        "2 chronic conditions on 2027-02-28 (Condition/a, Condition/b), not QMB "
        "(CY2026 rules: no CY2027 rule file)"
    )


# --- Rule files ------------------------------------------------------------------------------


def _broken_copy(tmp_path: Path, old: str, new: str) -> Path:
    text = (DEFAULT_RULES_DIR / "cy2026.yaml").read_text()
    assert old in text
    path = tmp_path / "cy2026.yaml"
    path.write_text(text.replace(old, new))
    return path


def test_overlapping_tiers_are_refused_with_file_and_line(tmp_path: Path) -> None:
    path = _broken_copy(
        tmp_path, "apcm_tier: {min_conditions: 2, qmb: false}", "apcm_tier: {min_conditions: 2}"
    )

    with pytest.raises(RuleFileError) as raised:
        load_rules(path)

    text = str(raised.value)
    line = path.read_text().splitlines().index("    apcm_tier: {min_conditions: 2, qmb: true}") + 1
    assert f"{path}:{line}" in text
    assert "2 chronic conditions, QMB: both G0557 and G0558 fit" in text


def test_a_gap_between_tiers_is_refused(tmp_path: Path) -> None:
    path = _broken_copy(
        tmp_path,
        "apcm_tier: {min_conditions: 2, qmb: false}",
        "apcm_tier: {min_conditions: 3, qmb: false}",
    )

    with pytest.raises(RuleFileError, match="2 chronic conditions, not QMB: no APCM tier fits"):
        load_rules(path)


def test_an_add_on_following_a_code_that_is_no_tier_is_refused(tmp_path: Path) -> None:
    path = _broken_copy(
        tmp_path,
        "      with_codes: [G0556, G0557, G0558]\n      service_programs: [BHI]",
        '      with_codes: [G0556, "99490"]\n      service_programs: [BHI]',
    )

    with pytest.raises(RuleFileError, match="99490 is not an APCM tier code"):
        load_rules(path)


def test_an_apcm_code_cannot_also_say_why_it_is_not_rolled_up(tmp_path: Path) -> None:
    path = _broken_copy(
        tmp_path,
        "    apcm_tier: {min_conditions: 2, qmb: true}\n",
        "    apcm_tier: {min_conditions: 2, qmb: true}\n    not_rolled_up_because: monthly\n",
    )

    with pytest.raises(RuleFileError, match="drop not_rolled_up_because"):
        load_rules(path)


# --- The month-end report, from stored records -----------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def module_sessions(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[sessionmaker[Session]]:
    with billing_database(request.param, tmp_path_factory.mktemp("apcm")) as factory:
        yield factory


@pytest.fixture
def sessions(module_sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    empty(module_sessions)
    store_all(module_sessions, people(["p1"], ["dr-a", "rn-1", "bh-1"]))
    return module_sessions


def _entry(
    id: str, enrollment: Enrollment, role: StaffRole, at: datetime, minutes: int
) -> TimeEntry:
    return TimeEntry(
        id=id,
        status=TimeEntryStatus.FINISHED,
        patient_id=enrollment.patient_id,
        enrollment_id=enrollment.id,
        program=enrollment.program,
        staff_id="bh-1" if role == StaffRole.BH_CARE_MANAGER else "rn-1",
        staff_role=role,
        start=at,
        minutes=minutes,
    )


def _stored_month(
    sessions: sessionmaker[Session], records: Sequence[Any], month: tuple[int, int], **kw: Any
) -> Any:
    store_all(sessions, records)
    with unit_of_work(sessions) as session:
        return monthly_report(Store(session), month=month, tz=CHICAGO, rules=CY2026, **kw)


def test_stored_condition_and_qmb_periods_fix_the_tier(sessions: sessionmaker[Session]) -> None:
    apcm = _enrollment()
    store_all(sessions, [apcm, _consent(apcm)])
    with unit_of_work(sessions) as session:
        facts = Store(session).apcm_facts
        facts.replace_condition_periods(
            apcm.id, [ConditionPeriod("cp1", apcm.id, "Condition/b", date(2026, 6, 15))]
        )
        facts.replace_qmb_periods("p1", [QmbPeriod("q1", "p1", date(2026, 9, 10))])

    codes = {}
    for month in ((2026, 5), (2026, 6), (2026, 9)):
        with unit_of_work(sessions) as session:
            report = monthly_report(Store(session), month=month, tz=CHICAGO, rules=CY2026)
        codes[month] = [line.code for line in report.earned]

    assert codes == {(2026, 5): ["G0556"], (2026, 6): ["G0557"], (2026, 9): ["G0558"]}


def test_apcm_in_the_month_keeps_ccm_from_being_earned(sessions: sessionmaker[Session]) -> None:
    apcm = _enrollment(conditions=("Condition/a", "Condition/b"))
    ccm = _enrollment(Program.CCM, id="p1-ccm", conditions=("Condition/a", "Condition/b"))
    entry = _entry("e1", ccm, StaffRole.RN, datetime(2026, 6, 10, 15, tzinfo=UTC), 25)

    report = _stored_month(sessions, [apcm, _consent(apcm), ccm, _consent(ccm), entry], (2026, 6))

    assert [line.code for line in report.earned] == ["G0557"]
    ccm_line = next(line for line in report.lines if line.code == "99490")
    assert ccm_line.explanation == "excluded by G0557 for the same patient"


def test_tcm_billed_before_apcm_in_the_report_excludes_it(sessions: sessionmaker[Session]) -> None:
    apcm = _enrollment()

    def tcm(store: Store, **kw: Any) -> ProgramMonth:
        return ProgramMonth(billed={"p1": (BilledCode("99495", "dr-a"),)})

    report = _stored_month(sessions, [apcm, _consent(apcm)], (2026, 6), sources=(tcm, apcm_month))

    line = next(line for line in report.lines if line.code == "G0556")
    assert not line.earned
    assert line.explanation is not None
    assert line.explanation.startswith("excluded by 99495 for the same patient")


def test_cocm_minutes_by_the_apcm_practitioner_earn_the_add_on_instead_of_99492(
    sessions: sessionmaker[Session],
) -> None:
    apcm = _enrollment(conditions=("Condition/a", "Condition/b"))
    cocm = _enrollment(Program.COCM, id="p1-cocm", start=date(2026, 3, 2))
    entries = [
        _entry(
            f"e{i}", cocm, StaffRole.BH_CARE_MANAGER, datetime(2026, 3, 3 + i, 15, tzinfo=UTC), 40
        )
        for i in range(2)
    ]

    report = _stored_month(
        sessions, [apcm, _consent(apcm), cocm, _consent(cocm), *entries], (2026, 3)
    )

    lines = {line.code: line for line in report.lines}
    assert lines["G0568"].earned
    assert lines["G0568"].minutes == 80
    assert not lines["99492"].earned
    assert lines["99492"].explanation == "excluded by G0568 for the same patient"
