"""Patient goals with measurable targets."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum

from fhirbridge.domain.codes import Code


class GoalLifecycle(StrEnum):
    PROPOSED = "proposed"
    PLANNED = "planned"
    ACCEPTED = "accepted"
    ACTIVE = "active"
    ON_HOLD = "on-hold"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    ENTERED_IN_ERROR = "entered-in-error"
    REJECTED = "rejected"


class AchievementStatus(StrEnum):
    IN_PROGRESS = "in-progress"
    IMPROVING = "improving"
    WORSENING = "worsening"
    NO_CHANGE = "no-change"
    ACHIEVED = "achieved"
    SUSTAINING = "sustaining"
    NOT_ACHIEVED = "not-achieved"
    NO_PROGRESS = "no-progress"
    NOT_ATTAINABLE = "not-attainable"


@dataclass(frozen=True, slots=True)
class GoalTarget:
    """What is measured and the value or range aimed for, by when."""

    measure: Code | None = None
    value: Decimal | None = None
    low: Decimal | None = None
    high: Decimal | None = None
    unit: str | None = None  # UCUM
    due: date | None = None

    def __post_init__(self) -> None:
        amounts = (self.value, self.low, self.high)
        if self.unit is not None and all(a is None for a in amounts):
            raise ValueError("a goal target unit needs a value or a range")
        if self.value is not None and (self.low is not None or self.high is not None):
            raise ValueError("a goal target is a value or a range, not both")
        if self.measure is None and self.due is None and all(a is None for a in amounts):
            raise ValueError("an empty goal target says nothing; leave it out")


@dataclass(slots=True)
class Goal:
    id: str
    patient_id: str
    lifecycle_status: GoalLifecycle
    description: str | None = None  # free text; description_code carries the coded form
    achievement_status: AchievementStatus | None = None
    description_code: Code | None = None
    start: date | None = None
    target: GoalTarget | None = None
    expressed_by: str | None = None  # the CareTeamMember who recorded it with the patient
    addresses: list[str] = field(default_factory=list)  # the EHR's "Condition/..." references
    # Our own health concerns (HealthConcern ids) the goal addresses: referenced by their
    # Condition's server id once pushed (Gravity SDOHCC Goal.addresses -> the Condition).
    concern_ids: list[str] = field(default_factory=list)
