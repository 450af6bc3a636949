"""Bulk import of Observation.ndjson: device readings, stored once per source identifier.

fixtures/observations/bulk/Observation.ndjson: hr-1, hr-2 carry identifiers; hr-3 only its
server id; hr-4 is about a patient unknown here; line 5 is no JSON; hr-5 has a unit no heart
rate has.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from bulk_support import Sessions

from fhirbridge.bulk import ImportOptions, import_ndjson
from fhirbridge.bulk.exporter import ExportedResource, ExportSelection, iter_export
from fhirbridge.bulk.importer import ImportOutcome, ImportSummary
from fhirbridge.config import PROJECT_ROOT
from fhirbridge.domain import PatientLink
from fhirbridge.mapping.loader import Mappings
from fhirbridge.mapping.readings import load_reading_rules
from fhirbridge.persistence import Store, unit_of_work
from fhirbridge.sync.readings import ReadingImport, ReadingSource

FILE = PROJECT_ROOT / "fixtures" / "observations" / "bulk" / "Observation.ndjson"
SERVER = "http://127.0.0.1:8090/fhir"
READINGS = ReadingImport(
    rules=load_reading_rules(PROJECT_ROOT / "mappings"),
    zone=ZoneInfo("America/New_York"),
    source=ReadingSource(server_base=SERVER),
)


@pytest.fixture
def sessions(new_database: Callable[[], Sessions]) -> Sessions:
    sessions = new_database()
    with unit_of_work(sessions) as session:
        Store(session).save(PatientLink(id="p-1", ehr_reference="Patient/example", team="north"))
    return sessions


def _import(sessions: Sessions, mappings: Mappings, *, link: bool = True) -> ImportSummary:
    return import_ndjson(
        sessions=sessions,
        files=[("Observation", FILE)],
        mappings=mappings,
        identifier_system="https://fhirbridge.example/id",
        options=ImportOptions(link_to_server=link, adopt_patients=False),
        readings=READINGS,
    )


def _stored(sessions: Sessions) -> dict[str, str]:
    with unit_of_work(sessions, read_only=True) as session:
        readings = Store(session).device_readings.for_patient("p-1")
    return {r.source_value: str(r.value) for r in readings}


def test_the_good_lines_are_stored_and_the_bad_ones_reported(
    sessions: Sessions, mappings: Mappings
) -> None:
    summary = _import(sessions, mappings)

    assert _stored(sessions) == {"hr-1": "71", "hr-2": "72", "Observation/hr-3": "73"}
    assert [(e.line, e.reason.split(":")[0]) for e in summary.errors] == [
        (4, "subject"),
        (5, "(line)"),
        (6, "valueQuantity.code"),
    ]


def test_importing_the_same_file_again_changes_nothing(
    sessions: Sessions, mappings: Mappings
) -> None:
    _import(sessions, mappings)

    again = _import(sessions, mappings)

    assert again.counts[ImportOutcome.UNCHANGED] == 3
    assert again.created == 0
    assert len(_stored(sessions)) == 3


def test_files_from_another_system_need_identifiers(sessions: Sessions, mappings: Mappings) -> None:
    summary = _import(sessions, mappings, link=False)

    assert set(_stored(sessions)) == {"hr-1", "hr-2"}
    assert (3, "identifier") in [(e.line, e.reason.split(":")[0]) for e in summary.errors]


def test_stored_readings_are_exported_as_observations_and_import_back_unchanged(
    sessions: Sessions, mappings: Mappings, tmp_path: Path
) -> None:
    _import(sessions, mappings)

    exported = [
        item
        for item in iter_export(
            sessions=sessions,
            mappings=mappings,
            identifier_system="https://fhirbridge.example/id",
            selection=ExportSelection(types=frozenset({"Observation"})),
            readings=READINGS,
        )
        if isinstance(item, ExportedResource)
    ]
    assert len(exported) == 3
    assert all(item.resource["subject"] == {"reference": "Patient/example"} for item in exported)
    (tmp_path / "Observation.ndjson").write_text(
        "".join(json.dumps(item.resource) + "\n" for item in exported)
    )

    again = import_ndjson(
        sessions=sessions,
        files=[("Observation", tmp_path / "Observation.ndjson")],
        mappings=mappings,
        identifier_system="https://fhirbridge.example/id",
        options=ImportOptions(adopt_patients=False),
        readings=READINGS,
    )

    assert (again.unchanged, again.created, again.errors) == (3, 0, [])
