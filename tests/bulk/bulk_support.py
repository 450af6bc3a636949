"""Helpers the bulk tests share (a module of its own: ``conftest`` names collide across folders)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.caseload import Caseload
from fhirbridge.mapping.loader import Mappings
from fhirbridge.persistence import Store, unit_of_work
from fhirbridge.services.caseload import store_caseload

BULK = Path(__file__).resolve().parents[2] / "fixtures" / "bulk"
DEMO = Path(__file__).resolve().parents[2] / "fixtures" / "demo" / "caseload.yaml"
SYSTEM = "urn:fhirbridge:bulk-test"

Sessions = sessionmaker[Session]


def seed_people(sessions: Sessions, caseload: Caseload) -> None:
    """Patients and staff as the EHR knows them: what a fresh installation starts with."""
    with unit_of_work(sessions) as session:
        store = Store(session)
        for patient in caseload.patients:
            store.save(patient)
        for member in caseload.members:
            store.save(member)


def seed_caseload(sessions: Sessions, caseload: Caseload, mappings: Mappings) -> None:
    with unit_of_work(sessions) as session:
        store_caseload(store=Store(session), caseload=caseload)
