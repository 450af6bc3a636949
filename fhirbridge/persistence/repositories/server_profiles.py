"""Server profiles: what the push learned about a FHIR server, kept across runs.

Keyed by the server's base URL (trailing slash ignored). Today one fact: the largest number of
entries the server accepts in one transaction, learned when it refused a bigger one for its
size. A worker reads it at start so the next run does not have to be refused again.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case
from sqlalchemy.orm import Session

from fhirbridge.persistence.repositories._upsert import insert_on_conflict
from fhirbridge.persistence.repositories.outbox import Clock, utc_now
from fhirbridge.persistence.tables import ServerProfileRow

__all__ = ["ServerProfile", "ServerProfiles"]


@dataclass(frozen=True)
class ServerProfile:
    base_url: str
    max_transaction_entries: int | None = None


def _key(base_url: str) -> str:
    return base_url.rstrip("/")


class ServerProfiles:
    def __init__(self, session: Session, *, clock: Clock = utc_now) -> None:
        self._session = session
        self._clock = clock

    def get(self, base_url: str) -> ServerProfile | None:
        row = self._session.get(ServerProfileRow, _key(base_url), populate_existing=True)
        if row is None:
            return None
        return ServerProfile(row.base_url, row.max_transaction_entries)

    def set_max_transaction_entries(self, base_url: str, entries: int | None) -> None:
        """Remember the largest transaction the server accepts (None: forget the limit).

        A learned limit only ever shrinks: workers on several hosts learn at once, and the one
        that was refused at 4 must not be overwritten by another that saw 8 work earlier. The
        database decides, in the upsert itself, so no read-then-write race can raise it.
        """
        if entries is not None and entries < 1:
            raise ValueError("a transaction holds at least one entry")
        statement = insert_on_conflict(self._session, ServerProfileRow).values(
            base_url=_key(base_url), max_transaction_entries=entries, updated_at=self._clock()
        )
        held = ServerProfileRow.max_transaction_entries
        learned = statement.excluded.max_transaction_entries
        smaller = (
            learned
            if entries is None
            else case((held.is_(None), learned), (learned < held, learned), else_=held)
        )
        self._session.execute(
            statement.on_conflict_do_update(
                index_elements=["base_url"],
                set_={
                    "max_transaction_entries": smaller,
                    "updated_at": statement.excluded.updated_at,
                },
            )
        )
