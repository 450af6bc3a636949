"""Test data: fixtures/persistence/care_records.yaml read into domain objects."""

from __future__ import annotations

import dataclasses
import types
from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

from fhirbridge.domain import (
    CarePlan,
    CareTask,
    CareTeamMember,
    Enrollment,
    Goal,
    PatientLink,
    ProgramConsent,
    Referral,
    TimeEntry,
)
from fhirbridge.persistence import Record, Store


@dataclass(frozen=True)
class World:
    patient_links: list[PatientLink]
    care_team_members: list[CareTeamMember]
    enrollments: list[Enrollment]
    program_consents: list[ProgramConsent]
    goals: list[Goal]
    care_plans: list[CarePlan]
    care_tasks: list[CareTask]
    time_entries: list[TimeEntry]
    referrals: list[Referral]

    def records(self) -> list[Record]:
        """Every record, in an order the database accepts."""
        return [record for field in fields(self) for record in getattr(self, field.name)]

    def one(self, record_id: str) -> Record:
        return next(record for record in self.records() if record.id == record_id)

    def save_all(self, store: Store) -> None:
        for record in self.records():
            store.save(record)


def load_world(path: Path) -> World:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    hints = get_type_hints(World)
    return World(
        **{name: [_build(get_args(hints[name])[0], item) for item in data[name]] for name in data}
    )


def _build(cls: type[Any], data: dict[str, Any]) -> Any:
    hints = get_type_hints(cls)
    return cls(**{name: _convert(hints[name], value) for name, value in data.items()})


def _convert(target: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = get_origin(target)
    if origin in (Union, types.UnionType):
        (inner,) = [arg for arg in get_args(target) if arg is not type(None)]
        return _convert(inner, value)
    if origin is list:
        return [_convert(get_args(target)[0], item) for item in value]
    if dataclasses.is_dataclass(target):
        return _build(target, value)  # type: ignore[arg-type]
    if isinstance(target, type) and issubclass(target, Enum):
        return target(value)
    if target is Decimal:
        return Decimal(value)
    if target is datetime and not isinstance(value, datetime):
        return datetime.fromisoformat(value)
    if target is date and not isinstance(value, date):
        return date.fromisoformat(value)
    return value
