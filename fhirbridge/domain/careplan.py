"""The comprehensive care plan CMS requires for CCM and PCM."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum


class CarePlanStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    ON_HOLD = "on-hold"
    REVOKED = "revoked"
    COMPLETED = "completed"
    ENTERED_IN_ERROR = "entered-in-error"
    UNKNOWN = "unknown"


@dataclass(slots=True)
class CarePlan:
    id: str
    patient_id: str
    status: CarePlanStatus
    title: str | None = None
    narrative: str | None = None  # plain text; rendered as the resource's XHTML narrative
    enrollment_id: str | None = None
    author_id: str | None = None
    start: date | None = None
    end: date | None = None
    problems: list[str] = field(default_factory=list)  # "Condition/..." references on the EHR
    goal_ids: list[str] = field(default_factory=list)
    task_ids: list[str] = field(default_factory=list)
    referral_ids: list[str] = field(default_factory=list)
    contributor_ids: list[str] = field(default_factory=list)
