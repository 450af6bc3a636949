"""Running timers: at most one per staff member, pointing at its in-progress time entry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from fhirbridge.persistence.records import EntityKind
from fhirbridge.persistence.repositories._base import flush
from fhirbridge.persistence.tables import RunningTimerRow

# Built once, columns rather than an ORM row: every recorded entry asks (the overlap check).
_RUNNING = select(RunningTimerRow.time_entry_id, RunningTimerRow.started_at).where(
    RunningTimerRow.staff_id == bindparam("staff_id")
)


@dataclass(frozen=True, slots=True)
class RunningTimer:
    staff_id: str
    time_entry_id: str
    started_at: datetime


class RunningTimers:
    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, staff_id: str) -> RunningTimer | None:
        found = self._session.execute(_RUNNING, {"staff_id": staff_id}).first()
        if found is None:
            return None
        return RunningTimer(staff_id, found.time_entry_id, found.started_at)

    def start(self, timer: RunningTimer) -> None:
        """Raises ConstraintViolation if the staff member already has one running (a
        concurrent start that got there first)."""
        self._session.add(
            RunningTimerRow(
                staff_id=timer.staff_id,
                time_entry_id=timer.time_entry_id,
                started_at=timer.started_at,
            )
        )
        flush(self._session, EntityKind.TIME_ENTRY, timer.time_entry_id)

    def clear(self, staff_id: str) -> None:
        row = self._session.get(RunningTimerRow, staff_id)
        if row is not None:
            self._session.delete(row)
            self._session.flush()
