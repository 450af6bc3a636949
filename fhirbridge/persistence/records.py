"""Sync bookkeeping as plain records: which local record maps to which server resource, and
which local changes still have to reach the server.

Callers never see ORM rows; the repositories return these.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class EntityKind(StrEnum):
    """The kinds of local record that can be synced; stored in ``fhir_links`` and ``outbox``."""

    PATIENT_LINK = "patient_link"
    CARE_TEAM_MEMBER = "care_team_member"
    ENROLLMENT = "enrollment"
    PROGRAM_CONSENT = "program_consent"
    CARE_PLAN = "care_plan"
    GOAL = "goal"
    CARE_TASK = "care_task"
    TIME_ENTRY = "time_entry"
    REFERRAL = "referral"
    CHARGE = "charge"
    ASSESSMENT = "assessment"
    SCREENING_OBSERVATION = "screening_observation"
    HEALTH_CONCERN = "health_concern"
    TCM_PERIOD = "tcm_period"
    TCM_CONTACT = "tcm_contact"
    PATIENT_CARE_TEAM = "patient_care_team"


class OutboxOperation(StrEnum):
    UPSERT = "upsert"
    DELETE = "delete"


class OutboxState(StrEnum):
    PENDING = "pending"  # waiting for next_attempt_at
    IN_FLIGHT = "in_flight"  # claimed by a worker
    DONE = "done"
    DEAD = "dead"  # gave up: needs a person (see dead_letters / retry)


@dataclass(frozen=True, slots=True)
class SyncTarget:
    """One server resource a local record is pushed as (a referral is two: the order and its
    fulfilment tracker)."""

    entity_kind: EntityKind
    local_id: str
    resource_type: str


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    id: int
    entity_kind: EntityKind
    local_id: str
    resource_type: str
    operation: OutboxOperation
    state: OutboxState
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    updated_at: datetime
    claimed_by: str | None = None
    claimed_at: datetime | None = None
    last_error: str | None = None
    last_outcome: dict[str, Any] | None = None  # the server's OperationOutcome, as JSON

    @property
    def target(self) -> SyncTarget:
        return SyncTarget(self.entity_kind, self.local_id, self.resource_type)


@dataclass(frozen=True, slots=True)
class FhirLink:
    """What we know of the server copy of one local record as one resource type."""

    entity_kind: EntityKind
    local_id: str
    resource_type: str
    server_id: str
    synced_at: datetime
    version_id: str | None = None
    etag: str | None = None
    content_hash: str | None = None  # of what we last pushed or pulled, to skip no-op pushes
    # The resource as last read from or written to the server: elements we do not map are
    # owned by others and are carried over from here on the next update.
    server_json: dict[str, Any] | None = None

    @property
    def target(self) -> SyncTarget:
        return SyncTarget(self.entity_kind, self.local_id, self.resource_type)

    @property
    def reference(self) -> str:
        return f"{self.resource_type}/{self.server_id}"
