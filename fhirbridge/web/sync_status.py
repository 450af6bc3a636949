"""Sync status for admins: the outbox by state, dead letters with the server's reason (retry or
discard), and open conflicts with both versions side by side (keep local / take remote), resolved by
``sync.conflicts.resolve_conflict`` as the command line does."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel

from fhirbridge.api.access import require_role
from fhirbridge.api.auth import Role
from fhirbridge.fhir import Outcome
from fhirbridge.persistence import (
    Conflict,
    ConflictNotFound,
    ConflictResolved,
    OutboxEntry,
    OutboxEntryNotFound,
    OutboxStateError,
    Resolution,
    Store,
)
from fhirbridge.services.dead_letters import discard_dead_letter
from fhirbridge.sync.conflicts import resolve_conflict
from fhirbridge.web.pages import PageRoute, error_page, page, page_work
from fhirbridge.web.session import CheckedSession, SignedIn

__all__ = ["router"]

router = APIRouter(prefix="/app/sync", route_class=PageRoute, include_in_schema=False)
ADMINS = frozenset({Role.ADMIN})
# What a person may choose here; a manual merge needs the record edited, not a button.
CHOICES = (Resolution.KEEP_LOCAL, Resolution.TAKE_REMOTE)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    entry: OutboxEntry

    @property
    def reason(self) -> str:
        return self.entry.last_error or "no reason recorded"

    @property
    def server_says(self) -> str:
        outcome = Outcome.from_json(self.entry.last_outcome) if self.entry.last_outcome else None
        return outcome.summary() if outcome is not None else ""


@dataclass(frozen=True, slots=True)
class SideBySide:
    conflict: Conflict

    @property
    def local(self) -> str:
        return json.dumps(self.conflict.local, indent=2, sort_keys=True)

    @property
    def remote(self) -> str:
        return json.dumps(self.conflict.remote, indent=2, sort_keys=True)


class _Done(BaseModel):
    id: int


@router.get("")
def sync_page(request: Request, session: SignedIn, message: str | None = None) -> Response:
    require_role(session.principal, ADMINS)

    def build(store: Store) -> Mapping[str, Any]:
        return {
            "counts": store.outbox.counts(),
            "dead": [DeadLetter(e) for e in store.outbox.dead_letters()],
            "conflicts": [SideBySide(c) for c in store.conflicts.open()],
            "choices": CHOICES,
        }

    return page(request, session, "sync.html", build, extra={"message": message})


@router.post("/dead-letters/{entry_id}/retry")
def retry_dead_letter(entry_id: int, request: Request, session: CheckedSession) -> Response:
    require_role(session.principal, ADMINS)
    work = page_work(request, session)
    try:
        work.write(lambda store: _Done(id=store.outbox.retry(entry_id, now=work.now())))
    except OutboxEntryNotFound:
        return error_page(request, 404)
    except OutboxStateError:
        return RedirectResponse("/app/sync?message=already-retried", status_code=303)
    return RedirectResponse("/app/sync?message=retried", status_code=303)


@router.post("/dead-letters/{entry_id}/discard")
def discard(entry_id: int, request: Request, session: CheckedSession) -> Response:
    require_role(session.principal, ADMINS)
    work = page_work(request, session)

    def run(store: Store) -> _Done:
        entry = discard_dead_letter(store=store, entry_id=entry_id, by=session.principal.id)
        return _Done(id=entry.id)

    try:
        work.write(run)
    except OutboxEntryNotFound:
        # Two admins discarding the same entry: the second finds it gone.
        return RedirectResponse("/app/sync?message=already-discarded", status_code=303)
    except OutboxStateError:
        return RedirectResponse("/app/sync?message=already-retried", status_code=303)
    return RedirectResponse("/app/sync?message=discarded", status_code=303)


@router.post("/conflicts/{conflict_id}")
def resolve(
    conflict_id: int,
    request: Request,
    session: CheckedSession,
    resolution: Annotated[Resolution, Form()],
) -> Response:
    require_role(session.principal, ADMINS)
    if resolution not in CHOICES:
        return error_page(request, 403)
    work = page_work(request, session)

    def run(store: Store) -> _Done:
        resolved = resolve_conflict(
            store=store,
            conflict_id=conflict_id,
            resolution=resolution,
            by=session.principal.id,
            mappings=work.mappings,
            identifier_system=work.identifier_system,
            now=work.now(),
        )
        return _Done(id=resolved.id)

    try:
        work.write(run)
    except ConflictNotFound:
        return error_page(request, 404)
    except ConflictResolved:
        return RedirectResponse("/app/sync?message=already-resolved", status_code=303)
    return RedirectResponse("/app/sync?message=resolved", status_code=303)
