"""The month-end billing report: per patient and program, the codes earned and why others were
not, as CSV or JSON.

CSV columns, always in this order (one row per code judged; ``entry_ids`` space-separated)::

    month, patient_id, program, code, outcome, units, practitioner_id, minutes, entry_ids,
    explanation

``outcome`` is ``earned``, ``not-earned`` or ``set-aside``; ``explanation`` is the reason a code
was not earned, a note on an earned one (an add-on cap that left minutes unbilled), or why a
set-aside time entry counts for nothing ("before consent on 2026-10-06", "entered in error").
A set-aside row names one entry in ``entry_ids`` and the entry's program; its code, units,
practitioner and minutes are empty. Empty cells are empty strings. Rows are ordered by patient
id; a patient's code rows come first, by program, then the rule file's code order; then the
entries set aside, oldest first.

JSON has the same content nested (``patients[].programs[].earned[] / not_earned[]`` and
``patients[].set_aside[]``), with keys in a fixed order, two-space indentation and a final
newline, so files can be diffed.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TextIO

from fhirbridge.billing.aggregate import PracticeMonth
from fhirbridge.billing.result import MonthlyResult
from fhirbridge.billing.rollup import display_order
from fhirbridge.billing.rules import RuleYear
from fhirbridge.domain.enrollment import Program

__all__ = [
    "CSV_COLUMNS",
    "Outcome",
    "Report",
    "ReportLine",
    "build_report",
    "report_json",
    "write_csv",
    "write_json",
]

CSV_COLUMNS = (
    "month",
    "patient_id",
    "program",
    "code",
    "outcome",
    "units",
    "practitioner_id",
    "minutes",
    "entry_ids",
    "explanation",
)


class Outcome(StrEnum):
    EARNED = "earned"
    NOT_EARNED = "not-earned"
    SET_ASIDE = "set-aside"


@dataclass(frozen=True, slots=True)
class ReportLine:
    patient_id: str
    program: Program | None
    code: str
    earned: bool
    units: int = 0
    practitioner_id: str | None = None
    minutes: int | None = None
    entry_ids: tuple[str, ...] = ()
    explanation: str | None = None
    set_aside: bool = False  # a time entry that counts for nothing (``code`` is empty)

    @property
    def outcome(self) -> Outcome:
        if self.set_aside:
            return Outcome.SET_ASIDE
        return Outcome.EARNED if self.earned else Outcome.NOT_EARNED


@dataclass(frozen=True, slots=True)
class Report:
    month: tuple[int, int]
    time_zone: str
    rule_year: int
    lines: tuple[ReportLine, ...]

    @property
    def month_label(self) -> str:
        return f"{self.month[0]:04d}-{self.month[1]:02d}"

    @property
    def earned(self) -> tuple[ReportLine, ...]:
        return tuple(line for line in self.lines if line.earned)

    @property
    def set_aside(self) -> tuple[ReportLine, ...]:
        return tuple(line for line in self.lines if line.set_aside)

    def for_patient(self, patient_id: str) -> tuple[ReportLine, ...]:
        return tuple(line for line in self.lines if line.patient_id == patient_id)


def build_report(
    practice: PracticeMonth,
    *,
    rules: RuleYear,
    time_zone: str,
    extra_lines: Iterable[ReportLine] = (),
) -> Report:
    """The report of the roll-up's month, with ``extra_lines`` from programs judged outside it
    (RPM device days, TCM, APCM) in the same order: by patient, program, rule-file order."""
    order = display_order(rules)
    lines = [line for result in practice.results for line in _lines(result, practice)]
    lines.extend(extra_lines)
    # Stable: set-aside entries keep the roll-up's order (oldest first).
    lines.sort(
        key=lambda line: (
            line.patient_id,
            line.set_aside,
            "" if line.set_aside or line.program is None else line.program.value,
            order.get(line.code, len(order)),
        )
    )
    return Report(practice.month, time_zone, rules.rule_year, tuple(lines))


def _lines(result: MonthlyResult, practice: PracticeMonth) -> Iterable[ReportLine]:
    def program(code: str) -> Program | None:
        return practice.programs.get((result.patient_id, code))

    for earned in result.earned:
        yield ReportLine(
            patient_id=result.patient_id,
            program=program(earned.code),
            code=earned.code,
            earned=True,
            units=earned.units,
            practitioner_id=earned.practitioner_id,
            minutes=earned.minutes,
            entry_ids=earned.entry_ids,
            explanation=earned.note,
        )
    for missed in result.not_earned:
        yield ReportLine(
            patient_id=result.patient_id,
            program=program(missed.code),
            code=missed.code,
            earned=False,
            explanation=missed.reason,
        )
    for aside in result.set_aside:
        yield ReportLine(
            patient_id=result.patient_id,
            program=practice.entry_programs.get(aside.entry_id),
            code="",
            earned=False,
            entry_ids=(aside.entry_id,),
            explanation=aside.reason,
            set_aside=True,
        )


# -- writers -----------------------------------------------------------------------------


def write_csv(report: Report, out: TextIO) -> None:
    """Write the report as CSV (header row, ``\\n`` line ends) to a text stream."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for line in report.lines:
        writer.writerow(
            (
                report.month_label,
                line.patient_id,
                line.program.value if line.program else "",
                line.code,
                line.outcome,
                line.units if line.earned else "",
                line.practitioner_id or "",
                "" if line.minutes is None else line.minutes,
                " ".join(line.entry_ids),
                line.explanation or "",
            )
        )


def report_json(report: Report) -> dict[str, Any]:
    patients: dict[str, dict[str, dict[str, Any]]] = {}
    set_aside: dict[str, list[dict[str, Any]]] = {}
    for line in report.lines:
        program = line.program.value if line.program else None
        if line.set_aside:
            patients.setdefault(line.patient_id, {})
            set_aside.setdefault(line.patient_id, []).append(
                {"entry_id": line.entry_ids[0], "program": program, "reason": line.explanation}
            )
            continue
        block = patients.setdefault(line.patient_id, {}).setdefault(
            program or "", {"program": program, "earned": [], "not_earned": []}
        )
        if line.earned:
            block["earned"].append(
                {
                    "code": line.code,
                    "units": line.units,
                    "practitioner_id": line.practitioner_id,
                    "minutes": line.minutes,
                    "entry_ids": list(line.entry_ids),
                    "note": line.explanation,
                }
            )
        else:
            block["not_earned"].append({"code": line.code, "reason": line.explanation})
    return {
        "month": report.month_label,
        "time_zone": report.time_zone,
        "rule_year": report.rule_year,
        "patients": [
            {
                "patient_id": patient_id,
                "programs": list(programs.values()),
                "set_aside": set_aside.get(patient_id, []),
            }
            for patient_id, programs in patients.items()
        ],
    }


def write_json(report: Report, out: TextIO) -> None:
    """Write the report as indented JSON with a final newline to a text stream."""
    json.dump(report_json(report), out, indent=2, ensure_ascii=False)
    out.write("\n")
