"""Read billing scenario files (fixtures/billing/cyYYYY/*.yaml) into domain objects.

A scenario file states the rule year, the month and time zone its scenarios share, and a list
of scenarios: enrollments, consents, time entries and codes billed outside the roll-up, with the
expected outcome worked out from the rules text. Field defaults here are only the ones that
never change an outcome (staff id, activity, contact mode).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from fhirbridge.billing import BilledCode
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

PATIENT = "patient-1"


@dataclass(frozen=True)
class Expected:
    earned: dict[str, int]
    not_earned: dict[str, str]
    set_aside: dict[str, str]
    entry_ids: dict[str, list[str]] | None = None
    notes: dict[str, str] | None = None


@dataclass(frozen=True)
class Scenario:
    id: str
    rule_year: int
    month: tuple[int, int]
    tz: ZoneInfo
    enrollments: list[Enrollment]
    consents: list[ProgramConsent]
    entries: list[TimeEntry]
    expected: Expected
    billed_elsewhere: list[BilledCode] = field(default_factory=list)


def _month(text: str) -> tuple[int, int]:
    year, month = str(text).split("-")
    return int(year), int(month)


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _moment(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _enrollment(raw: dict[str, Any]) -> Enrollment:
    return Enrollment(
        id=raw["id"],
        patient_id=PATIENT,
        program=Program(raw["program"]),
        status=EnrollmentStatus(raw.get("status", "active")),
        start=_day(raw["start"]),
        end=_day(raw["end"]) if raw.get("end") else None,
        conditions=list(raw.get("conditions", [])),
        billing_practitioner_id=raw.get("billing_practitioner"),
    )


def _consent(raw: dict[str, Any], programs: dict[str, Program]) -> ProgramConsent:
    return ProgramConsent(
        id=f"consent-{raw['enrollment']}-{raw['date']}",
        patient_id=PATIENT,
        enrollment_id=raw["enrollment"],
        program=programs[raw["enrollment"]],
        status=ConsentStatus(raw.get("status", "active")),
        given_on=_day(raw["date"]),
        method=ConsentMethod(raw.get("method", "verbal")),
        recorded_by_id="staff-rn",
    )


def _entry(raw: dict[str, Any], programs: dict[str, Program]) -> TimeEntry:
    role = StaffRole(raw["role"])
    return TimeEntry(
        id=raw["id"],
        patient_id=PATIENT,
        enrollment_id=raw["enrollment"],
        program=Program(raw["program"]) if "program" in raw else programs[raw["enrollment"]],
        staff_id=f"staff-{role.value}",
        staff_role=role,
        activity=TimeEntryActivity.CARE_COORDINATION,
        mode=ContactMode.VIRTUAL,
        status=TimeEntryStatus(raw.get("status", "finished")),
        start=_moment(raw["start"]),
        end=_moment(raw["end"]) if raw.get("end") else None,
        minutes=raw.get("minutes"),
        interactive=bool(raw.get("interactive", False)),
    )


def load_scenarios(directory: Path) -> list[Scenario]:
    scenarios: list[Scenario] = []
    for path in sorted(directory.glob("cy*/*.yaml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        for raw in document["scenarios"]:
            enrollments = [_enrollment(e) for e in raw.get("enrollments", [])]
            programs = {e.id: e.program for e in enrollments}
            expect = raw["expect"]
            scenarios.append(
                Scenario(
                    id=f"{path.parent.name}/{path.stem}/{raw['name']}",
                    rule_year=int(document["rule_year"]),
                    month=_month(raw.get("month", document["month"])),
                    tz=ZoneInfo(raw.get("tz", document["tz"])),
                    enrollments=enrollments,
                    consents=[_consent(c, programs) for c in raw.get("consents", [])],
                    entries=[_entry(t, programs) for t in raw.get("entries", [])],
                    billed_elsewhere=[
                        BilledCode(b["code"], b["practitioner"])
                        for b in raw.get("billed_elsewhere", [])
                    ],
                    expected=Expected(
                        earned={str(k): v for k, v in (expect.get("earned") or {}).items()},
                        not_earned={str(k): v for k, v in (expect.get("not_earned") or {}).items()},
                        set_aside=dict(expect.get("set_aside") or {}),
                        entry_ids=expect.get("entry_ids"),
                        notes=expect.get("notes"),
                    ),
                )
            )
    return scenarios
