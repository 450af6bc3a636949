"""Which patients and records an export covers, read in pages.

The exporter needs ids first (a page of patients, then their records' ids, then the records by
id), so memory stays one page deep. The statements are the store's export-selection read model
(``fhirbridge.persistence.readmodels.export_selection``); what is decided here is which
patients a roster names.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from fhirbridge.domain import Program
from fhirbridge.persistence import EntityKind, Store

__all__ = ["changed_since", "patient_page", "patients_matching", "record_ids"]


def patient_page(
    store: Store,
    *,
    after: str | None,
    limit: int,
    program: Program | None = None,
    team: str | None = None,
) -> list[str]:
    """The next ``limit`` patient ids after ``after`` (keyset pagination by id)."""
    return store.export_selection.patient_page(after=after, limit=limit, program=program, team=team)


def patients_matching(
    store: Store,
    *,
    ids: Collection[str] = (),
    references: Collection[str] = (),
    identifiers: Collection[tuple[str | None, str]] = (),
    program: Program | None = None,
    team: str | None = None,
) -> set[str]:
    """Patient ids among those named by local id, EHR reference or identifier (the MRN); an
    identifier without a system matches the value under any system."""
    candidates = store.export_selection.patients_named(
        ids=ids,
        references=references,
        mrn_values={value for _, value in identifiers},
        program=program,
        team=team,
    )
    wanted_ids, wanted_refs = set(ids), set(references)
    found: set[str] = set()
    for patient in candidates:
        by_identifier = any(
            v == patient.mrn_value and s in (None, patient.mrn_system) for s, v in identifiers
        )
        if patient.id in wanted_ids or patient.ehr_reference in wanted_refs or by_identifier:
            found.add(patient.id)
    return found


def record_ids(store: Store, kind: EntityKind, patient_ids: Sequence[str]) -> list[str]:
    """Ids of ``kind`` records about the given patients, sorted."""
    return store.export_selection.record_ids(kind, patient_ids)


def changed_since(
    store: Store, kind: EntityKind, local_ids: Sequence[str], since: datetime
) -> set[str]:
    """Which of ``local_ids`` changed at or after ``since``: a local change queued in the
    outbox then (every save through the Store queues one), or a server copy synced then."""
    return store.export_selection.changed_since(kind, local_ids, since)
