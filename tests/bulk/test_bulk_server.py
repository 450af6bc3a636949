"""Against a real FHIR server (sekmet, its own instance): records pushed by one fhirbridge come
back through $export into a fresh one, nothing lost, nothing duplicated, and again unchanged."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from bulk_support import SYSTEM, Sessions, seed_caseload, seed_people

from fhirbridge.bulk import (
    BulkClient,
    ExportExpired,
    ExportRequest,
    ImportOptions,
    PollPolicy,
    import_ndjson,
)
from fhirbridge.caseload import Caseload
from fhirbridge.fhir import FhirClient
from fhirbridge.localserver import LocalFhirServer
from fhirbridge.mapping.concepts import concept_of
from fhirbridge.mapping.loader import Mappings
from fhirbridge.persistence import EntityKind, Store
from fhirbridge.sync.worker import SyncWorker

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

TYPES = ("EpisodeOfCare", "Consent", "Goal", "CarePlan", "ServiceRequest", "Task", "Encounter")
FAST = PollPolicy(default_interval=0.2, min_interval=0.05, max_interval=1.0, timeout=60.0)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFhirServer]:
    """A server of this module's own, so that $export sees only what these tests pushed."""
    local = LocalFhirServer(workdir=tmp_path_factory.mktemp("sekmet-bulk"))
    local.start()
    yield local
    local.stop()


@pytest.fixture
async def fhir(server: LocalFhirServer) -> AsyncIterator[FhirClient]:
    async with FhirClient(server.base_url) as client:
        yield client


@pytest.fixture
async def pushed(
    fhir: FhirClient,
    new_database: Callable[[], Sessions],
    demo_caseload: Caseload,
    mappings: Mappings,
) -> Sessions:
    source = new_database()
    seed_caseload(source, demo_caseload, mappings)
    worker = SyncWorker(
        sessions=source, client=fhir, mappings=mappings, identifier_system=SYSTEM, worker_id="t"
    )
    stats = await worker.drain()
    assert stats.dead == 0
    return source


def records(sessions: Sessions, caseload: Caseload) -> dict[tuple[str, str], Any]:
    with sessions() as session:
        store = Store(session)
        found = {}
        for record in caseload.care_records():
            concept = concept_of(record)
            mine = store.repository(EntityKind(concept)).require(record.id)
            if concept == "time_entry":
                mine = dataclasses.replace(mine, notes=None)  # notes never leave fhirbridge
            found[(concept, record.id)] = mine
        return found


async def test_records_come_back_through_export_into_a_fresh_database_unchanged(
    fhir: FhirClient,
    pushed: Sessions,
    new_database: Callable[[], Sessions],
    demo_caseload: Caseload,
    mappings: Mappings,
    tmp_path: Path,
) -> None:
    result = await BulkClient(fhir, policy=FAST).export(ExportRequest(types=TYPES), tmp_path)
    fresh = new_database()
    seed_people(fresh, demo_caseload)

    summary = import_ndjson(
        sessions=fresh,
        files=[(f.type, tmp_path / f.name) for f in result.files],
        mappings=mappings,
        identifier_system=SYSTEM,
        options=ImportOptions(link_to_server=True),
    )

    assert not summary.errors
    assert records(fresh, demo_caseload) == records(pushed, demo_caseload)
    with fresh() as session:
        assert len(Store(session).goals.list_for_patient("p-1001")) == len(
            [g for g in demo_caseload.goals if g.patient_id == "p-1001"]
        )


async def test_importing_the_export_a_second_time_changes_nothing(
    fhir: FhirClient,
    pushed: Sessions,
    new_database: Callable[[], Sessions],
    demo_caseload: Caseload,
    mappings: Mappings,
    tmp_path: Path,
) -> None:
    result = await BulkClient(fhir, policy=FAST).export(ExportRequest(types=TYPES), tmp_path)
    files = [(f.type, tmp_path / f.name) for f in result.files]
    fresh = new_database()
    seed_people(fresh, demo_caseload)
    options = ImportOptions(link_to_server=True)
    import_ndjson(
        sessions=fresh, files=files, mappings=mappings, identifier_system=SYSTEM, options=options
    )

    again = import_ndjson(
        sessions=fresh, files=files, mappings=mappings, identifier_system=SYSTEM, options=options
    )

    assert (again.created, again.updated, len(again.errors)) == (0, 0, 0)
    assert again.unchanged == sum(f.lines for f in result.files)


async def test_the_downloaded_files_hold_what_the_manifest_counts(
    fhir: FhirClient, pushed: Sessions, tmp_path: Path
) -> None:
    result = await BulkClient(fhir, policy=FAST).export(ExportRequest(types=("Goal",)), tmp_path)

    (goal,) = result.manifest.output
    assert goal.count == result.files[0].lines
    assert len((tmp_path / result.files[0].name).read_text().splitlines()) == goal.count


async def test_a_status_url_the_server_forgot_is_an_expired_export(
    fhir: FhirClient, server: LocalFhirServer
) -> None:
    with pytest.raises(ExportExpired):
        await BulkClient(fhir, policy=FAST).poll(f"{server.base_url}/bulk-status/no-such-job")
