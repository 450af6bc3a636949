"""Sync cursors: small named positions a pull resumes from (``key -> value``).

Written in the same unit of work as the changes they account for, so a crash never moves a
cursor past a change that was not stored.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from fhirbridge.persistence.repositories._upsert import insert_on_conflict
from fhirbridge.persistence.repositories.outbox import Clock, utc_now
from fhirbridge.persistence.tables import SyncCursorRow

__all__ = ["SyncCursors"]


class SyncCursors:
    def __init__(self, session: Session, *, clock: Clock = utc_now) -> None:
        self._session = session
        self._clock = clock

    def get(self, key: str) -> str | None:
        row = self._session.get(SyncCursorRow, key, populate_existing=True)
        return None if row is None else row.value

    def set(self, key: str, value: str) -> None:
        statement = insert_on_conflict(self._session, SyncCursorRow).values(
            key=key, value=value, updated_at=self._clock()
        )
        self._session.execute(
            statement.on_conflict_do_update(
                index_elements=["key"],
                set_={
                    "value": statement.excluded.value,
                    "updated_at": statement.excluded.updated_at,
                },
            )
        )
