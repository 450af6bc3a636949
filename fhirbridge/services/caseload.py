"""Bring a caseload into storage, each record with its pending push in the same transaction."""

from __future__ import annotations

from typing import Any

from fhirbridge.caseload import Caseload
from fhirbridge.persistence import Store

__all__ = ["store_caseload"]


def store_caseload(*, store: Store, caseload: Caseload) -> int:
    """Save every record; returns how many outbox entries were written."""
    for patient in caseload.patients:
        store.save(patient)
    for member in caseload.members:
        store.save(member)
    entries = 0
    # Patient by patient, as care managers create them: a plan and the tasks it lists are then
    # claimed together by the push worker and reference each other in one transaction.
    by_patient: dict[str | None, list[Any]] = {}
    for record in caseload.care_records():
        by_patient.setdefault(getattr(record, "patient_id", None), []).append(record)
    for record in (r for records in by_patient.values() for r in records):
        entries += len(store.save(record))
    return entries
