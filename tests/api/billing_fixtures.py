"""Billing records for the API tests: fixtures/billing/set-aside/ on top of the API caseload."""

from __future__ import annotations

from pathlib import Path

from fhirbridge.caseload import load_caseload
from fhirbridge.persistence import Store, make_engine, unit_of_work
from tests.sessions import session_factory

SET_ASIDE = (
    Path(__file__).resolve().parents[2]
    / "fixtures"
    / "billing"
    / "set-aside"
    / "north-2-october.yaml"
)


def store_north_2_october(url: str) -> None:
    """pat-north-2's October 2026 (see the fixture's header), without queueing any push."""
    caseload = load_caseload(SET_ASIDE)
    engine = make_engine(url)
    try:
        with unit_of_work(session_factory(engine)) as session:
            store = Store(session)
            # Repositories directly: Store.save would queue them for the FHIR server.
            for enrollment in caseload.enrollments:
                store.enrollments.save(enrollment)
            for consent in caseload.consents:
                store.consents.save(consent)
            for entry in caseload.time_entries:
                store.time_entries.save(entry)
    finally:
        engine.dispose()
