"""Assessments in our export and in the NDJSON import: a food screen's response, answers and
health concern are exported conformant (QuestionnaireResponse, Observation, Condition), land
in another database as the same records (scores recomputed from the instrument: the resource
carries the answers), and importing them again changes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bulk_support import SYSTEM, Sessions, seed_caseload, seed_people

from fhirbridge.bulk import ImportOutcome, export_own_data, import_ndjson, ndjson_files
from fhirbridge.caseload import Caseload
from fhirbridge.config import PROJECT_ROOT
from fhirbridge.mapping.loader import Mappings
from fhirbridge.persistence import Store, unit_of_work
from fhirbridge.services.assessment import NewAssessment, Recorded, record_assessment, scored_view

REQUEST = PROJECT_ROOT / "fixtures" / "assessments" / "requests" / "hrsn-food.json"
TYPES = ("QuestionnaireResponse", "Observation", "Condition")


def _source(
    new_database: Callable[[], Sessions], caseload: Caseload, mappings: Mappings
) -> tuple[Sessions, Recorded]:
    source = new_database()
    seed_caseload(source, caseload, mappings)
    body = json.loads(REQUEST.read_text())
    with unit_of_work(source) as session:
        recorded = record_assessment(
            store=Store(session),
            instruments=mappings.instruments,
            new=NewAssessment(
                patient_id="p-1002",
                instrument=body["instrument"],
                answers=body["answers"],
                authored=datetime.fromisoformat(body["authored"]).astimezone(UTC),
                author_id="m-rn",
            ),
            tz=ZoneInfo("UTC"),
        )
    return source, recorded


def test_a_screen_is_exported_conformant(
    new_database: Callable[[], Sessions],
    demo_caseload: Caseload,
    mappings: Mappings,
    tmp_path: Path,
) -> None:
    source, recorded = _source(new_database, demo_caseload, mappings)

    report = export_own_data(
        sessions=source, mappings=mappings, identifier_system=SYSTEM, folder=tmp_path / "out"
    )

    assert not report.rejected
    assert [report.counts[t] for t in TYPES] == [1, 9, 1]
    (line,) = (tmp_path / "out" / "Condition.ndjson").read_text().splitlines()
    condition = json.loads(line)
    assert [d["reference"] for d in condition["evidence"][0]["detail"]] == [
        f"Observation/{recorded.concerns[0].evidence_ids[0]}"
    ]


def test_an_imported_screen_equals_the_exported_one_and_a_reimport_changes_nothing(
    new_database: Callable[[], Sessions],
    demo_caseload: Caseload,
    mappings: Mappings,
    tmp_path: Path,
) -> None:
    (source, recorded), target = _source(new_database, demo_caseload, mappings), new_database()
    seed_people(target, demo_caseload)
    folder = tmp_path / "out"
    export_own_data(sessions=source, mappings=mappings, identifier_system=SYSTEM, folder=folder)
    files = [f for f in ndjson_files(folder) if f[0] in TYPES]

    first = import_ndjson(sessions=target, files=files, mappings=mappings, identifier_system=SYSTEM)
    again = import_ndjson(sessions=target, files=files, mappings=mappings, identifier_system=SYSTEM)

    assert not first.errors
    assert first.counts[ImportOutcome.CREATED] == 11
    assert again.counts[ImportOutcome.UNCHANGED] == 11
    with target() as session:
        store = Store(session)
        imported = store.assessments.require(recorded.assessment.id)
        assert scored_view(mappings.instruments, imported) == recorded.assessment
        for observation in recorded.observations:
            assert store.screening_observations.require(observation.id) == observation
        assert store.health_concerns.require(recorded.concerns[0].id) == recorded.concerns[0]
