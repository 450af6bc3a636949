"""Codes earned outside the time roll-up (RPM device days, TCM, APCM), as one month's lines.

Each such program judges a month from its own facts (readings, discharges, tiers) and hands
back report lines plus the codes it bills, by patient. The time roll-up needs the latter for
exclusions such as "no CCM in a month APCM is billed", so programs run first, each seeing what
the ones before it billed, and the roll-up last.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from fhirbridge.billing.report import ReportLine
from fhirbridge.billing.result import BilledCode

__all__ = ["ProgramMonth", "merge_billed"]


@dataclass(frozen=True, slots=True)
class ProgramMonth:
    """One program's month: a line per code judged (earned or not, with its explanation) and
    the codes billed, by patient id."""

    lines: tuple[ReportLine, ...] = ()
    billed: Mapping[str, tuple[BilledCode, ...]] = field(default_factory=dict)


def merge_billed(
    months: Sequence[ProgramMonth],
) -> dict[str, tuple[BilledCode, ...]]:
    """Every program's billed codes, by patient id, in program order."""
    merged: dict[str, list[BilledCode]] = {}
    for month in months:
        for patient_id, codes in month.billed.items():
            merged.setdefault(patient_id, []).extend(codes)
    return {patient_id: tuple(codes) for patient_id, codes in merged.items()}
