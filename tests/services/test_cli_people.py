"""``fhirbridge people import``: patients and care-team members from CSV or from an EHR's FHIR
Patient / Practitioner NDJSON, idempotent, a bad line reported by number without stopping the
others, exit codes as for every command. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from fhirbridge.cli import app
from fhirbridge.config import PROJECT_ROOT
from fhirbridge.domain import CareTeamMember, PatientLink, StaffRole
from fhirbridge.persistence import Store, make_engine, unit_of_work
from fhirbridge.persistence.scratch import Backend, DatabaseUnavailable, scratch_database
from tests.conftest import POSTGRES_URL
from tests.sessions import session_factory

PEOPLE = PROJECT_ROOT / "fixtures" / "people"

runner = CliRunner()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated database on each backend: every line is applied in a savepoint."""
    backend: Backend = request.param
    try:
        with scratch_database(backend, workdir=tmp_path, postgres_url=POSTGRES_URL) as url:
            yield url
    except DatabaseUnavailable as error:
        pytest.skip(f"PostgreSQL not reachable at {error.url} ({error.reason})")


def _import(database: str, path: Path, *options: str) -> Result:
    return runner.invoke(
        app, ["people", "import", str(path), "--team", "east", "--database-url", database, *options]
    )


def _store_read(url: str) -> tuple[dict[str, PatientLink], dict[str, CareTeamMember]]:
    engine = make_engine(url)
    try:
        with unit_of_work(session_factory(engine)) as session:
            store = Store(session)
            return (
                {p.id: p for p in store.patients.list_all()},
                {m.id: m for m in store.care_team.list_all()},
            )
    finally:
        engine.dispose()


def test_patients_of_a_csv_join_the_team_named(database: str) -> None:
    _import(database, PEOPLE / "patients.csv")

    patients, _ = _store_read(database)
    assert sorted(patients) == ["pat-east-1", "pat-east-2", "pat-east-4"]
    assert {p.team for p in patients.values()} == {"east"}


def test_a_bad_row_is_reported_by_line_and_the_others_are_imported(database: str) -> None:
    result = _import(database, PEOPLE / "patients.csv")

    assert result.exit_code == 1
    assert "created 3, updated 0, unchanged 0, errors 1" in result.stdout
    assert result.stderr.strip() == "patients.csv:4: ehr_reference: a reference like Patient/123"


def test_importing_the_same_file_again_changes_nothing(database: str) -> None:
    _import(database, PEOPLE / "patients.csv")

    again = _import(database, PEOPLE / "patients.csv")

    assert "created 0, updated 0, unchanged 3, errors 1" in again.stdout


def test_a_changed_row_updates_the_stored_patient(database: str, tmp_path: Path) -> None:
    _import(database, PEOPLE / "patients.csv")
    changed = tmp_path / "patients.csv"
    changed.write_text(
        (PEOPLE / "patients.csv").read_text().replace("MRN3002", "MRN3002-B"), encoding="utf-8"
    )

    result = _import(database, changed)

    assert "created 0, updated 1, unchanged 2, errors 1" in result.stdout
    patients, _ = _store_read(database)
    assert patients["pat-east-2"].mrn_value == "MRN3002-B"


def test_care_team_members_of_a_csv_are_imported_with_their_roles(database: str) -> None:
    result = _import(database, PEOPLE / "members.csv")

    _, members = _store_read(database)
    assert {m.id: m.role for m in members.values()} == {
        "cm-east": StaffRole.RN,
        "md-east": StaffRole.PHYSICIAN,
        "chw-east": StaffRole.CHW,
    }
    assert result.stderr.startswith("members.csv:4: role: one of physician, rn,")


def test_fhir_patients_become_patient_links_with_their_mrn(database: str) -> None:
    _import(database, PEOPLE / "ehr.ndjson")

    patients, _ = _store_read(database)
    alma = patients["ehr-4001"]
    assert (alma.ehr_reference, alma.mrn_value) == ("Patient/ehr-4001", "MRN4001")
    assert patients["ehr-4002"].mrn_value is None


def test_fhir_practitioners_become_members_named_and_with_the_role_their_title_says(
    database: str,
) -> None:
    _import(database, PEOPLE / "ehr.ndjson")

    _, members = _store_read(database)
    assert members["ehr-pr-601"] == CareTeamMember(
        id="ehr-pr-601",
        name="Daniel Lee, MD",
        role=StaffRole.PHYSICIAN,
        practitioner_reference="Practitioner/ehr-pr-601",
        npi="1093817744",
        team="east",
    )
    assert members["ehr-pr-602"].role is StaffRole.RN


def test_ndjson_lines_that_are_not_usable_people_are_reported_by_number(database: str) -> None:
    result = _import(database, PEOPLE / "ehr.ndjson")

    assert result.exit_code == 1
    assert "created 4, updated 0, unchanged 0, errors 2" in result.stdout
    assert result.stderr.splitlines() == [
        "ehr.ndjson:5: Practitioner.name: missing",
        "ehr.ndjson:6: expected a Patient or Practitioner, found 'Organization'",
    ]


def test_a_practitioner_already_a_member_updates_that_member_under_its_local_id(
    database: str,
) -> None:
    engine = make_engine(database)
    with unit_of_work(session_factory(engine)) as session:
        Store(session).care_team.save(
            CareTeamMember("m-lee", "D. Lee", StaffRole.PHYSICIAN, "Practitioner/ehr-pr-601")
        )
    engine.dispose()

    result = _import(database, PEOPLE / "ehr.ndjson")

    _, members = _store_read(database)
    assert "ehr-pr-601" not in members
    assert members["m-lee"].name == "Daniel Lee, MD"
    assert "created 3, updated 1" in result.stdout


def test_the_role_option_fills_in_for_practitioners_whose_title_says_none(
    database: str, tmp_path: Path
) -> None:
    file = tmp_path / "navigators.ndjson"
    file.write_text(
        '{"resourceType":"Practitioner","id":"ehr-pr-700","name":[{"text":"Pat Guide"}]}\n'
    )

    result = _import(database, file, "--role", "navigator")

    _, members = _store_read(database)
    assert members["ehr-pr-700"].role is StaffRole.NAVIGATOR
    assert result.exit_code == 0


def test_without_the_role_option_such_a_practitioner_is_refused_naming_the_option(
    database: str, tmp_path: Path
) -> None:
    file = tmp_path / "navigators.ndjson"
    file.write_text(
        '{"resourceType":"Practitioner","id":"ehr-pr-700","name":[{"text":"Pat Guide"}]}\n'
    )

    result = _import(database, file)

    assert result.exit_code == 1
    assert "(--role)" in result.stderr


def test_a_csv_whose_header_names_neither_kind_is_a_usage_error(
    database: str, tmp_path: Path
) -> None:
    file = tmp_path / "staff.csv"
    file.write_text("who,what\nx,y\n")

    result = _import(database, file)

    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {file}:1: the header names patients")


def test_a_missing_file_is_a_usage_error(database: str, tmp_path: Path) -> None:
    result = _import(database, tmp_path / "nobody.csv")

    assert result.exit_code == 2


def test_an_unreachable_database_is_one_line_and_exit_code_4(tmp_path: Path) -> None:
    result = _import("postgresql+psycopg://nobody@127.0.0.1:9/none", PEOPLE / "patients.csv")

    assert result.exit_code == 4
    assert result.stderr.startswith("error: cannot use the database")
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_csv_row_linking_an_ehr_patient_already_linked_under_another_id_is_refused(
    database: str, tmp_path: Path
) -> None:
    _import(database, PEOPLE / "patients.csv")
    file = tmp_path / "again.csv"
    file.write_text("id,ehr_reference\npat-east-1b,Patient/ehr-3001\n")

    result = _import(database, file)

    assert result.stderr.strip() == "again.csv:2: ehr_reference: already in use"
    patients, _ = _store_read(database)
    assert "pat-east-1b" not in patients
