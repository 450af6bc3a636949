"""References through storage: a batch's patients looked up at once, unknown ones still reported."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from fhirbridge.domain import PatientLink
from fhirbridge.persistence import RecordNotFound, Store, make_engine, migrate, unit_of_work
from fhirbridge.sync.references import LinkReferences
from tests.sessions import session_factory, sync_plan

PATIENTS = [PatientLink(id=f"p{i}", ehr_reference=f"Patient/ehr-{i}") for i in range(3)]


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    url = f"sqlite:///{tmp_path / 'refs.db'}"
    migrate(url)
    engine = make_engine(url)
    sessions = session_factory(engine)
    with unit_of_work(sessions) as writing:
        for patient in PATIENTS:
            Store(writing).patients.add(patient)
    with sessions() as reading:
        yield reading
    engine.dispose()


def test_patients_known_in_advance_are_referenced_without_another_query(
    session: Session,
) -> None:
    refs = LinkReferences(Store(session), plan=sync_plan())
    refs.know_patients(p.id for p in PATIENTS)
    queries: list[str] = []
    event.listen(session.get_bind(), "before_cursor_execute", lambda *a: queries.append(a[2]))

    found = [refs.reference("patient", p.id) for p in PATIENTS]

    assert found == [p.ehr_reference for p in PATIENTS]
    assert queries == []


def test_an_unknown_patient_among_those_known_in_advance_is_still_reported(
    session: Session,
) -> None:
    refs = LinkReferences(Store(session), plan=sync_plan())
    refs.know_patients(["p0", "ghost"])

    with pytest.raises(RecordNotFound):
        refs.reference("patient", "ghost")
