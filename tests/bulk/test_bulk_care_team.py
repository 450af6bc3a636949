"""Patients' care teams in our export (CareTeam.ndjson) and in the NDJSON import: a team lands in
another database unchanged, and importing it again changes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

from bulk_support import SYSTEM, Sessions, seed_caseload, seed_people

from fhirbridge.bulk import ImportOutcome, export_own_data, import_ndjson, ndjson_files
from fhirbridge.caseload import Caseload
from fhirbridge.domain import CareTeamParticipant, CareTeamRole, PatientCareTeam
from fhirbridge.mapping.loader import Mappings
from fhirbridge.persistence import Store, unit_of_work

TEAM = PatientCareTeam(
    id="team-p-1002",
    patient_id="p-1002",
    name="Care team",
    participants=[
        CareTeamParticipant(CareTeamRole.BILLING_PRACTITIONER, member_id="m-md"),
        CareTeamParticipant(CareTeamRole.CARE_MANAGER, member_id="m-rn", start=date(2026, 3, 1)),
        CareTeamParticipant.of_external(
            CareTeamRole.PSYCHIATRIC_CONSULTANT, "Practitioner/outside-psych"
        ),
    ],
)


def _source(
    new_database: Callable[[], Sessions], caseload: Caseload, mappings: Mappings
) -> Sessions:
    source = new_database()
    seed_caseload(source, caseload, mappings)
    with unit_of_work(source) as session:
        Store(session).save(TEAM)
    return source


def test_a_care_team_is_exported_as_one_conformant_careteam(
    new_database: Callable[[], Sessions],
    demo_caseload: Caseload,
    mappings: Mappings,
    tmp_path: Path,
) -> None:
    source = _source(new_database, demo_caseload, mappings)

    report = export_own_data(
        sessions=source, mappings=mappings, identifier_system=SYSTEM, folder=tmp_path / "out"
    )

    assert not report.rejected
    assert report.counts["CareTeam"] == 1
    (line,) = (tmp_path / "out" / "CareTeam.ndjson").read_text().splitlines()
    resource = json.loads(line)
    assert resource["subject"]["reference"] == "Patient/ehr-88402"
    assert {"system": SYSTEM, "value": f"care-team/{TEAM.id}"} in resource["identifier"]


def test_an_imported_care_team_equals_the_exported_one_and_a_reimport_changes_nothing(
    new_database: Callable[[], Sessions],
    demo_caseload: Caseload,
    mappings: Mappings,
    tmp_path: Path,
) -> None:
    source, target = _source(new_database, demo_caseload, mappings), new_database()
    seed_people(target, demo_caseload)
    folder = tmp_path / "out"
    export_own_data(sessions=source, mappings=mappings, identifier_system=SYSTEM, folder=folder)
    careteam = [f for f in ndjson_files(folder) if f[0] == "CareTeam"]

    first = import_ndjson(
        sessions=target, files=careteam, mappings=mappings, identifier_system=SYSTEM
    )
    again = import_ndjson(
        sessions=target, files=careteam, mappings=mappings, identifier_system=SYSTEM
    )

    assert not first.errors
    assert first.counts[ImportOutcome.CREATED] == 1
    assert again.counts[ImportOutcome.UNCHANGED] == 1
    with target() as session:
        assert Store(session).patient_care_teams.get(TEAM.id) == TEAM
