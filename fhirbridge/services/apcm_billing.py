"""APCM codes of a month (G0556-G0558, and the CY2026 add-ons G0568-G0570), as a billing
program source.

    month = apcm_month(store, month=(2026, 6), tz=tz, rules=rules, patient_ids=None, billed={})

The judgement is ``fhirbridge.billing.apcm`` (tier day, tier, blockers, add-ons); this module
reads its facts: the month's enrollments and consents (``store.month_minutes``), the APCM
enrollments' condition periods and the patients' QMB periods (``store.apcm_facts``), and, when
the rule year has add-ons, the month's countable minutes per enrollment, summed in SQL as the
time roll-up sums them (``store.month_minutes.groups``). Only patients with an APCM enrollment
in the month are read further than their enrollments.

Registered in ``services.billing.PROGRAM_SOURCES`` after TCM and RPM: a TCM code billed earlier
in the month excludes APCM (rule file ``apcm-vs-tcm``), and the codes billed here reach the
time roll-up, whose ``apcm-vs-care-management`` exclusion keeps CCM and PCM out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from zoneinfo import ZoneInfo

from fhirbridge.billing.apcm import ApcmPatient, judge_apcm
from fhirbridge.billing.programs import ProgramMonth
from fhirbridge.billing.result import BilledCode
from fhirbridge.billing.rollup import COUNTING_STATUSES
from fhirbridge.billing.rules import RuleYear
from fhirbridge.domain import Enrollment, Program, ProgramConsent
from fhirbridge.persistence import Store

__all__ = ["apcm_month"]


def apcm_month(
    store: Store,
    *,
    month: tuple[int, int],
    tz: ZoneInfo,
    rules: RuleYear,
    patient_ids: Sequence[str] | None,
    billed: Mapping[str, Sequence[BilledCode]],
) -> ProgramMonth:
    """The month's APCM lines and the codes billed, by patient (see module doc)."""
    enrollments, consents = store.month_minutes.enrollments(month=month, patient_ids=patient_ids)
    apcm_patients = sorted({e.patient_id for e in enrollments if e.program == Program.APCM})
    if not apcm_patients:
        return ProgramMonth()
    wanted = set(apcm_patients)
    by_patient: dict[str, list[Enrollment]] = defaultdict(list)
    for enrollment in enrollments:
        if enrollment.patient_id in wanted:
            by_patient[enrollment.patient_id].append(enrollment)
    consents_of: dict[str, list[ProgramConsent]] = defaultdict(list)
    for consent in consents:
        if consent.patient_id in wanted:
            consents_of[consent.patient_id].append(consent)
    apcm_ids = [e.id for e in enrollments if e.program == Program.APCM and e.patient_id in wanted]
    periods = store.apcm_facts.condition_periods(apcm_ids)
    qmb = store.apcm_facts.qmb_periods(apcm_patients)
    minutes: dict[str, int] = defaultdict(int)
    if rules.apcm_add_ons():
        groups = store.month_minutes.groups(
            month=month, tz=tz, counting=COUNTING_STATUSES, patient_ids=apcm_patients
        )
        for group in groups:
            if group.countable and group.enrollment_id is not None:
                minutes[group.enrollment_id] += group.minutes
    patients = [
        ApcmPatient(
            patient_id=patient_id,
            enrollments=by_patient[patient_id],
            consents=consents_of[patient_id],
            condition_periods={e.id: periods.get(e.id, []) for e in by_patient[patient_id]},
            qmb_periods=qmb.get(patient_id, []),
            service_minutes={e.id: minutes[e.id] for e in by_patient[patient_id]},
        )
        for patient_id in apcm_patients
    ]
    return judge_apcm(rules, month, patients, billed)
