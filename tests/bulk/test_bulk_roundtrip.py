"""Our own export and the NDJSON import: one database's records land in another unchanged,
a re-import is a no-op, bad lines are reported by file and line, selections narrow the export."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bulk_support import SYSTEM, Sessions, seed_caseload, seed_people

from fhirbridge.bulk import (
    ExportSelection,
    ImportOptions,
    export_own_data,
    import_ndjson,
    ndjson_files,
)
from fhirbridge.caseload import Caseload
from fhirbridge.domain import Program
from fhirbridge.mapping.concepts import concept_of
from fhirbridge.mapping.loader import Mappings
from fhirbridge.persistence import EntityKind, Store

LOCAL_ONLY = {"time_entry": ("notes",)}  # fields that never leave fhirbridge


def comparable(record: Any) -> Any:
    hidden = LOCAL_ONLY.get(concept_of(record), ())
    return dataclasses.replace(record, **dict.fromkeys(hidden))


def records_of(sessions: Sessions, caseload: Caseload) -> dict[tuple[str, str], Any]:
    with sessions() as session:
        store = Store(session)
        return {
            (concept_of(r), r.id): comparable(
                store.repository(EntityKind(concept_of(r))).require(r.id)
            )
            for r in caseload.care_records()
        }


def export_and_import(
    source: Sessions, target: Sessions, mappings: Mappings, folder: Path
) -> tuple[Any, Any]:
    exported = export_own_data(
        sessions=source, mappings=mappings, identifier_system=SYSTEM, folder=folder
    )
    imported = import_ndjson(
        sessions=target, files=ndjson_files(folder), mappings=mappings, identifier_system=SYSTEM
    )
    return exported, imported


def test_records_exported_from_one_database_are_equal_after_import_into_another(
    new_database: Callable[[], Sessions],
    demo_caseload: Caseload,
    mappings: Mappings,
    tmp_path: Path,
) -> None:
    source, target = new_database(), new_database()
    seed_caseload(source, demo_caseload, mappings)
    seed_people(target, demo_caseload)

    exported, imported = export_and_import(source, target, mappings, tmp_path / "out")

    assert not exported.rejected
    assert not imported.errors
    assert records_of(target, demo_caseload) == records_of(source, demo_caseload)


def test_importing_the_same_export_again_changes_nothing(
    new_database: Callable[[], Sessions],
    demo_caseload: Caseload,
    mappings: Mappings,
    tmp_path: Path,
) -> None:
    source, target = new_database(), new_database()
    seed_caseload(source, demo_caseload, mappings)
    seed_people(target, demo_caseload)
    exported, _ = export_and_import(source, target, mappings, tmp_path / "out")
    before = records_of(target, demo_caseload)

    again = import_ndjson(
        sessions=target,
        files=ndjson_files(tmp_path / "out"),
        mappings=mappings,
        identifier_system=SYSTEM,
    )

    assert (again.created, again.updated, again.unchanged) == (0, 0, sum(exported.counts.values()))
    assert records_of(target, demo_caseload) == before


def test_the_export_writes_one_ndjson_file_per_type_with_a_manifest_of_counts(
    new_database: Callable[[], Sessions],
    demo_caseload: Caseload,
    mappings: Mappings,
    tmp_path: Path,
) -> None:
    source = new_database()
    seed_caseload(source, demo_caseload, mappings)

    report = export_own_data(
        sessions=source, mappings=mappings, identifier_system=SYSTEM, folder=tmp_path
    )

    manifest = json.loads((tmp_path / "manifest.json").read_text())
    listed = {o["type"]: o["count"] for o in manifest["output"]}
    lines = {t: len(p.read_text().splitlines()) for t, p in report.files().items()}
    assert listed == lines == dict(report.counts)
    assert {"EpisodeOfCare", "Consent", "CarePlan", "Goal", "Task", "Encounter"} <= set(lines)


def test_the_bundle_option_writes_a_transaction_of_idempotent_puts(
    new_database: Callable[[], Sessions],
    demo_caseload: Caseload,
    mappings: Mappings,
    tmp_path: Path,
) -> None:
    source = new_database()
    seed_caseload(source, demo_caseload, mappings)

    report = export_own_data(
        sessions=source, mappings=mappings, identifier_system=SYSTEM, folder=tmp_path, bundle=True
    )

    assert report.bundle is not None
    bundle = json.loads(report.bundle.read_text())
    assert bundle["type"] == "transaction"
    assert len(bundle["entry"]) == sum(report.counts.values())
    first = bundle["entry"][0]
    resource = first["resource"]
    assert first["request"] == {
        "method": "PUT",
        "url": f"{resource['resourceType']}/{resource['id']}",
    }


def test_program_narrows_the_export_to_patients_enrolled_in_it(
    new_database: Callable[[], Sessions],
    demo_caseload: Caseload,
    mappings: Mappings,
    tmp_path: Path,
) -> None:
    source = new_database()
    seed_caseload(source, demo_caseload, mappings)

    report = export_own_data(
        sessions=source,
        mappings=mappings,
        identifier_system=SYSTEM,
        folder=tmp_path,
        selection=ExportSelection(program=Program.BHI),
    )

    subjects = {
        json.loads(line)["patient"]["reference"]
        for line in (tmp_path / "EpisodeOfCare.ndjson").read_text().splitlines()
    }
    assert report.patients == 1
    assert subjects == {"Patient/ehr-88403"}


def test_since_keeps_only_records_changed_since_then(
    new_database: Callable[[], Sessions],
    demo_caseload: Caseload,
    mappings: Mappings,
    tmp_path: Path,
) -> None:
    source = new_database()
    seed_caseload(source, demo_caseload, mappings)
    tomorrow = datetime.now(UTC) + timedelta(days=1)

    report = export_own_data(
        sessions=source,
        mappings=mappings,
        identifier_system=SYSTEM,
        folder=tmp_path,
        selection=ExportSelection(since=tomorrow),
    )

    assert sum(report.counts.values()) == 0
    assert report.patients == len(demo_caseload.patients)


def test_a_csv_roster_selects_patients_by_id_or_ehr_reference(
    new_database: Callable[[], Sessions],
    demo_caseload: Caseload,
    mappings: Mappings,
    bulk_fixtures: Path,
    tmp_path: Path,
) -> None:
    source = new_database()
    seed_caseload(source, demo_caseload, mappings)

    report = export_own_data(
        sessions=source,
        mappings=mappings,
        identifier_system=SYSTEM,
        folder=tmp_path,
        roster=bulk_fixtures / "roster.csv",
    )

    episodes = (tmp_path / "EpisodeOfCare.ndjson").read_text().splitlines()
    assert {json.loads(e)["id"] for e in episodes} == {"en-1001-ccm", "en-1003-bhi"}
    assert report.roster_unmatched == 1


def test_a_group_roster_selects_its_member_references(
    new_database: Callable[[], Sessions],
    demo_caseload: Caseload,
    mappings: Mappings,
    bulk_fixtures: Path,
    tmp_path: Path,
) -> None:
    source = new_database()
    seed_caseload(source, demo_caseload, mappings)

    report = export_own_data(
        sessions=source,
        mappings=mappings,
        identifier_system=SYSTEM,
        folder=tmp_path,
        roster=bulk_fixtures / "roster_group.json",
    )

    episodes = (tmp_path / "EpisodeOfCare.ndjson").read_text().splitlines()
    assert [json.loads(e)["id"] for e in episodes] == ["en-1002-pcm"]
    assert report.roster_unmatched == 1


def test_bad_lines_are_reported_with_file_and_line_and_the_rest_is_imported(
    new_database: Callable[[], Sessions],
    mappings: Mappings,
    bulk_fixtures: Path,
    tmp_path: Path,
) -> None:
    target = new_database()
    goals = shutil.copy(bulk_fixtures / "Goal-with-bad-lines.ndjson", tmp_path / "Goal.ndjson")

    summary = import_ndjson(
        sessions=target,
        files=[("Goal", Path(goals))],
        mappings=mappings,
        identifier_system=SYSTEM,
    )

    assert [(e.file.name, e.line) for e in summary.errors] == [
        ("Goal.ndjson", 2),
        ("Goal.ndjson", 3),
    ]
    assert summary.created == 2


def test_resources_of_other_systems_are_adopted_under_their_server_ids(
    new_database: Callable[[], Sessions], mappings: Mappings, bulk_fixtures: Path
) -> None:
    target = new_database()

    summary = import_ndjson(
        sessions=target,
        files=[
            ("CarePlan", bulk_fixtures / "CarePlan.ndjson"),
            ("Goal", bulk_fixtures / "Goal.ndjson"),
        ],
        mappings=mappings,
        identifier_system=SYSTEM,
        options=ImportOptions(adopt_patients=True),
    )

    with target() as session:
        store = Store(session)
        plan = store.care_plans.require("srv-cp1")
        patient = store.patients.require("ehr-9001")
    assert summary.created == 4
    assert plan.goal_ids == ["srv-g1", "srv-g2"]  # goals read after the plan still linked
    assert patient.ehr_reference == "Patient/ehr-9001"
