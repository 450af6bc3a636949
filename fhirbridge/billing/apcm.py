"""Advanced primary care management (APCM, from CY2025): one tier code a month, and the CY2026
behavioural-health add-ons, judged from the rule file's ``apcm_tier`` and ``apcm_add_on`` data.

Which enrollment bills: an APCM enrollment counts in a month when its status counts for billing
(active, on hold, finished) and its days overlap the month. One practitioner bills APCM for a
patient a month; with two such enrollments (the patient changed practitioner), the one in force
latest in the month bills.

The month's tier is fixed on one day, the tier day: the month's last day, or the enrollment's
last day when it ends inside the month. The conditions on the enrollment that day (see
``fhirbridge.domain.apcm``) and the patient's QMB status that day pick the one tier code of the
rule file that fits (the loader checks that exactly one always does). Why the last day: APCM is
billed for the month once it is over, and a condition diagnosed or a QMB status granted during
the month describes the patient the practitioner managed that month; the first day would bill a
month of managing two conditions at the 0-1 tier. A mid-year change therefore moves the tier
from the month it happens in.

The tier code is not earned, and says why, when: the rule year does not cover APCM; consent is
required and none active is dated by the month's end; the enrollment names no billing
practitioner; or a code billed earlier this month (TCM, judged before APCM) excludes it in the
rule file (``apcm-vs-tcm``). Whatever the outcome, the line states the tier and its facts:
"2 chronic conditions on 2026-06-30 (Condition/a, Condition/b), not QMB".

The codes billed here reach the time roll-up as ``billed_elsewhere``, where the rule file's
exclusions (``apcm-vs-care-management``) keep CCM and PCM from being earned that month.

Add-ons (``apcm_add_on``, none before CY2026): earned only with one of their ``with_codes``
earned this month, and service that month of one of their ``service_programs`` (CoCM for
G0568 / G0569, BHI for G0570) under an enrollment of the same billing practitioner: at least
``service_minutes`` countable minutes of that enrollment this month (countable as the time
roll-up counts them: finished entries, inside the enrollment's days, after its consent). The
CoCM add-ons follow the CoCM enrollment's month (``months``: G0568 in its first calendar month,
G0569 later). An add-on is judged, and gets a line, only for a patient with an enrollment in its
programs this month; its phase not being this month's is no line either (the other code's
month).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from fhirbridge.billing.programs import ProgramMonth
from fhirbridge.billing.report import ReportLine
from fhirbridge.billing.result import BilledCode
from fhirbridge.billing.rules import ApcmAddOn, ExclusionScope, MonthPhase, RuleYear
from fhirbridge.domain.apcm import ConditionPeriod, QmbPeriod, conditions_on, is_qmb_on
from fhirbridge.domain.enrollment import (
    ConsentStatus,
    Enrollment,
    EnrollmentStatus,
    Program,
    ProgramConsent,
)

__all__ = ["ApcmPatient", "ApcmTierFacts", "judge_apcm", "tier_facts"]

# As the time roll-up: hold periods are not recorded, so an on-hold enrollment's days count.
_COUNTING = frozenset(
    {EnrollmentStatus.ACTIVE, EnrollmentStatus.ON_HOLD, EnrollmentStatus.FINISHED}
)


@dataclass(frozen=True, slots=True)
class ApcmPatient:
    """One patient's facts for an APCM month.

    ``enrollments``: the patient's enrollments in play this month (any program); ``consents``
    their consents; ``condition_periods`` by enrollment id; ``service_minutes``: countable
    minutes this month by enrollment id (needed for the add-ons only).
    """

    patient_id: str
    enrollments: Sequence[Enrollment]
    consents: Sequence[ProgramConsent] = ()
    condition_periods: Mapping[str, Sequence[ConditionPeriod]] = field(default_factory=dict)
    qmb_periods: Sequence[QmbPeriod] = ()
    service_minutes: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ApcmTierFacts:
    """What fixed a month's tier."""

    enrollment: Enrollment
    day: date
    conditions: tuple[str, ...]
    qmb: bool

    def explain(self) -> str:
        count = len(self.conditions)
        if count == 0:
            said = f"no chronic conditions on {self.day.isoformat()}"
        else:
            noun = "chronic condition" if count == 1 else "chronic conditions"
            said = f"{count} {noun} on {self.day.isoformat()} ({', '.join(self.conditions)})"
        return f"{said}, {'QMB' if self.qmb else 'not QMB'}"


def _month_days(month: tuple[int, int]) -> tuple[date, date]:
    year, number = month
    first = date(year, number, 1)
    return first, date(year + number // 12, number % 12 + 1, 1) - timedelta(days=1)


def _counts_in(enrollment: Enrollment, first: date, last: date) -> bool:
    return (
        enrollment.status in _COUNTING
        and enrollment.start <= last
        and (enrollment.end is None or enrollment.end >= first)
    )


def _last_day(enrollment: Enrollment, last: date) -> date:
    return last if enrollment.end is None else min(enrollment.end, last)


def tier_facts(patient: ApcmPatient, month: tuple[int, int]) -> ApcmTierFacts | None:
    """The APCM enrollment that bills ``month`` and the facts on its tier day; None when the
    patient has no APCM enrollment counting this month."""
    first, last = _month_days(month)
    apcm = [
        e for e in patient.enrollments if e.program == Program.APCM and _counts_in(e, first, last)
    ]
    if not apcm:
        return None
    chosen = max(apcm, key=lambda e: (_last_day(e, last), e.start, e.id))
    day = _last_day(chosen, last)
    conditions = conditions_on(chosen, patient.condition_periods.get(chosen.id, ()), day)
    return ApcmTierFacts(chosen, day, tuple(conditions), is_qmb_on(patient.qmb_periods, day))


def judge_apcm(
    rules: RuleYear,
    month: tuple[int, int],
    patients: Sequence[ApcmPatient],
    billed: Mapping[str, Sequence[BilledCode]] | None = None,
) -> ProgramMonth:
    """Every patient's APCM month: a line for the tier code (earned or not) and one per add-on
    in play; the codes billed, by patient id.

    ``rules`` may be an earlier year's (the newest file, for a year without one): the lines
    then say which year's rules judged them.
    """
    lines: list[ReportLine] = []
    billed_here: dict[str, tuple[BilledCode, ...]] = {}
    before = billed or {}
    for patient in sorted(patients, key=lambda p: p.patient_id):
        patient_lines, codes = _judge_patient(
            rules, month, patient, list(before.get(patient.patient_id, ()))
        )
        lines.extend(patient_lines)
        if codes:
            billed_here[patient.patient_id] = tuple(codes)
    return ProgramMonth(lines=tuple(lines), billed=billed_here)


def _judge_patient(
    rules: RuleYear, month: tuple[int, int], patient: ApcmPatient, kept: list[BilledCode]
) -> tuple[list[ReportLine], list[BilledCode]]:
    facts = tier_facts(patient, month)
    tiers = rules.apcm_tiers()
    if facts is None or not tiers:
        return [], []
    code = next(
        (c for c, tier in tiers if tier.fits(len(facts.conditions), facts.qmb)), tiers[0][0]
    )
    said = facts.explain()
    if rules.rule_year != month[0]:
        said += f" (CY{rules.rule_year} rules: no CY{month[0]} rule file)"
    enrollment = facts.enrollment
    practitioner = enrollment.billing_practitioner_id
    reason = _blocker(rules, patient, enrollment, month)
    if reason is None and practitioner is not None:
        reason = _excluded_by(rules, code, practitioner, kept)
    if reason is not None or practitioner is None:
        line = ReportLine(
            patient.patient_id,
            Program.APCM,
            code,
            earned=False,
            practitioner_id=practitioner,
            explanation=f"{reason}; tier: {said}",
        )
        lines = [line]
        lines.extend(_add_on_lines(rules, month, patient, code, None, kept, []))
        return lines, []
    earned = ReportLine(
        patient.patient_id,
        Program.APCM,
        code,
        earned=True,
        units=1,
        practitioner_id=practitioner,
        explanation=said,
    )
    billed = [BilledCode(code, practitioner)]
    kept.append(billed[0])
    lines = [earned, *_add_on_lines(rules, month, patient, code, practitioner, kept, billed)]
    return lines, billed


def _blocker(
    rules: RuleYear, patient: ApcmPatient, enrollment: Enrollment, month: tuple[int, int]
) -> str | None:
    program_rule = rules.programs.get(Program.APCM)
    if program_rule is None:
        return f"CY{rules.rule_year} rules do not cover APCM"
    _, last = _month_days(month)
    if program_rule.consent_required:
        dates = sorted(
            c.given_on
            for c in patient.consents
            if c.enrollment_id == enrollment.id and c.status == ConsentStatus.ACTIVE
        )
        if not dates:
            return "no consent on file"
        if dates[0] > last:
            return f"consent dated {dates[0].isoformat()}, after this month"
    if not enrollment.billing_practitioner_id:
        return "no billing practitioner on the enrollment"
    return None


def _excluded_by(
    rules: RuleYear, code: str, practitioner: str, kept: Sequence[BilledCode]
) -> str | None:
    # Worded as the time roll-up words its exclusions.
    for other in kept:
        scope = rules.conflicts(code, other.code)
        if scope == ExclusionScope.PATIENT:
            return f"excluded by {other.code} for the same patient"
        if scope == ExclusionScope.SAME_PRACTITIONER and other.practitioner_id == practitioner:
            return f"excluded by {other.code} from the same practitioner"
    return None


def _phase_matches(add_on: ApcmAddOn, enrollment: Enrollment, month: tuple[int, int]) -> bool:
    if add_on.months == MonthPhase.ANY:
        return True
    first = (enrollment.start.year, enrollment.start.month) == month
    return first == (add_on.months == MonthPhase.FIRST)


def _add_on_lines(
    rules: RuleYear,
    month: tuple[int, int],
    patient: ApcmPatient,
    tier_code: str,
    practitioner: str | None,
    kept: list[BilledCode],
    billed: list[BilledCode],
) -> list[ReportLine]:
    """The add-ons' lines; earned ones are appended to ``billed`` and ``kept``."""
    first, last = _month_days(month)
    lines: list[ReportLine] = []
    for code, add_on in rules.apcm_add_ons():
        service = [
            e
            for e in patient.enrollments
            if e.program in add_on.service_programs and _counts_in(e, first, last)
        ]
        phased = [e for e in service if _phase_matches(add_on, e, month)]
        if not phased:
            continue
        programs = "/".join(p.value for p in add_on.service_programs)

        def missed(reason: str, *, code: str = code) -> ReportLine:
            return ReportLine(
                patient.patient_id,
                Program.APCM,
                code,
                earned=False,
                practitioner_id=practitioner,
                explanation=reason,
            )

        if practitioner is None or tier_code not in add_on.with_codes:
            lines.append(missed(f"needs APCM billed by the same practitioner: {tier_code} is not"))
            continue
        same = [e for e in phased if e.billing_practitioner_id == practitioner]
        if not same:
            others = sorted({e.billing_practitioner_id or "nobody" for e in phased})
            lines.append(
                missed(
                    f"{programs} is billed by {', '.join(others)}, not by the APCM "
                    f"practitioner {practitioner}"
                )
            )
            continue
        minutes = {e.id: patient.service_minutes.get(e.id, 0) for e in same}
        best = max(same, key=lambda e: (minutes[e.id], e.id))
        if minutes[best.id] < add_on.service_minutes:
            lines.append(
                missed(
                    f"{minutes[best.id]} of {add_on.service_minutes} countable {programs} "
                    "minutes this month"
                )
            )
            continue
        excluded = _excluded_by(rules, code, practitioner, kept)
        if excluded is not None:
            lines.append(missed(excluded))
            continue
        lines.append(
            ReportLine(
                patient.patient_id,
                Program.APCM,
                code,
                earned=True,
                units=1,
                practitioner_id=practitioner,
                minutes=minutes[best.id],
                explanation=(
                    f"with {tier_code} by the same practitioner; {minutes[best.id]} minutes "
                    f"of {best.program.value} service under enrollment {best.id}"
                ),
            )
        )
        billed.append(BilledCode(code, practitioner))
        kept.append(billed[-1])
    return lines
