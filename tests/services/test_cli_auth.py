"""``fhirbridge auth issue-key`` and ``auth dev-token``: the credentials they print are accepted
by the API with the role, team and staff member asked for; a role the API does not know, or a
staff member who is not in the key's team, is a usage error."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner, Result

from fhirbridge.api import create_app
from fhirbridge.cli import app
from fhirbridge.config import PROJECT_ROOT, Settings
from fhirbridge.domain import CareTeamMember, PatientLink, StaffRole
from fhirbridge.persistence import Store, make_engine, migrate, unit_of_work
from tests.api.support import load_caseload, time_entry_body
from tests.sessions import session_factory

runner = CliRunner()


@pytest.fixture(autouse=True)
def no_jwt_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FHIRBRIDGE_JWT_AUDIENCE", "FHIRBRIDGE_JWT_ISSUER", "FHIRBRIDGE_JWT_JWKS_PATH"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'auth.db'}"
    migrate(url)
    engine = make_engine(url)
    with unit_of_work(session_factory(engine)) as session:
        store = Store(session)
        store.patients.save(PatientLink("pat-north-1", "Patient/ehr-1", team="north"))
        store.patients.save(PatientLink("pat-south-1", "Patient/ehr-2", team="south"))
        store.care_team.save(CareTeamMember("cm-north", "Nora North", StaffRole.RN, team="north"))
        store.care_team.save(CareTeamMember("cm-south", "Sue South", StaffRole.RN, team="south"))
    engine.dispose()
    return url


@pytest.fixture
def caseload(tmp_path: Path) -> str:
    """Enrolled, consenting patients and their teams (fixtures/api/caseload.yaml)."""
    url = f"sqlite:///{tmp_path / 'caseload.db'}"
    migrate(url)
    load_caseload(url)
    return url


def _client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def api(database: str) -> Iterator[TestClient]:
    yield from _client(Settings(database_url=database))


def _issue(database: str, *options: str) -> Result:
    return runner.invoke(
        app,
        ["auth", "issue-key", *options, "--database-url", database],
        env={"COLUMNS": "200"},  # usage errors unwrapped
    )


def _dev_token(folder: Path, *options: str) -> Result:
    return runner.invoke(app, ["auth", "dev-token", "--dir", str(folder), *options])


def _exports(output: str) -> dict[str, str]:
    """The ``export NAME=value`` lines a shell would evaluate."""
    found = {}
    for line in output.splitlines():
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            found[name] = value.strip("'")
    return found


# -- API keys ------------------------------------------------------------------------------


def test_an_issued_key_reads_its_teams_patients(database: str, api: TestClient) -> None:
    key = _issue(database, "--role", "supervisor", "--team", "north").stdout.strip()

    response = api.get("/patients", headers={"X-API-Key": key})

    assert response.status_code == 200, response.text
    assert [p["id"] for p in response.json()] == ["pat-north-1"]


def test_an_issued_key_has_only_the_role_asked_for(database: str, api: TestClient) -> None:
    key = _issue(database, "--role", "billing").stdout.strip()

    response = api.get("/patients", headers={"X-API-Key": key})

    assert response.status_code == 403


def test_the_key_is_printed_once_alone_on_stdout_and_what_it_grants_on_stderr(
    database: str,
) -> None:
    result = _issue(database, "--role", "admin", "--key-id", "ops")

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("fbk_ops.")
    assert len(result.stdout.splitlines()) == 1
    assert "role admin, every team" in result.stderr
    assert result.stdout.strip() not in result.stderr


def test_only_the_keys_hash_is_stored(database: str) -> None:
    key = _issue(database, "--role", "admin", "--key-id", "ops").stdout.strip()

    engine = make_engine(database)
    with engine.connect() as connection:
        rows = [tuple(r) for r in connection.execute(text("SELECT * FROM api_keys"))]
    engine.dispose()
    stored = " ".join(str(cell) for cell in rows[0])
    assert hashlib.sha256(key.encode()).hexdigest() in stored
    assert key.partition(".")[2] not in stored


def test_a_role_the_api_does_not_know_is_a_usage_error(database: str) -> None:
    result = _issue(database, "--role", "nurse", "--team", "north")

    assert result.exit_code == 2


def test_a_supervisor_key_without_a_team_is_a_usage_error(database: str) -> None:
    result = _issue(database, "--role", "supervisor")

    assert result.exit_code == 2
    assert "required for the supervisor role" in result.output


def test_a_key_id_already_in_use_is_a_usage_error(database: str) -> None:
    _issue(database, "--role", "admin", "--key-id", "ops")

    again = _issue(database, "--role", "admin", "--key-id", "ops")

    assert again.exit_code == 2
    assert again.stderr.startswith("error: an API key with id 'ops' is already stored")


def test_a_care_manager_key_with_a_staff_id_records_time_as_that_member(caseload: str) -> None:
    key = _issue(
        caseload, "--role", "care-manager", "--team", "north", "--staff-id", "cm-north"
    ).stdout.strip()

    with TestClient(create_app(Settings(database_url=caseload))) as api:
        response = api.post("/time-entries", json=time_entry_body(), headers={"X-API-Key": key})

    assert response.status_code == 201, response.text
    assert response.json()["staff_id"] == "cm-north"


def test_a_staff_id_of_another_team_is_a_usage_error_naming_the_option(database: str) -> None:
    result = _issue(database, "--role", "care-manager", "--team", "north", "--staff-id", "cm-south")

    assert result.exit_code == 2
    assert "--staff-id" in result.stderr
    assert "'cm-south' is no care-team member of team north" in result.stderr


def test_an_unknown_staff_id_is_a_usage_error_and_stores_no_key(database: str) -> None:
    result = _issue(
        database,
        "--role",
        "care-manager",
        "--team",
        "north",
        "--staff-id",
        "nobody",
        "--key-id",
        "k",
    )

    assert result.exit_code == 2
    assert "--staff-id" in result.stderr
    assert _issue(database, "--role", "admin", "--key-id", "k").exit_code == 0


# -- development tokens ----------------------------------------------------------------------


def test_a_dev_token_is_accepted_by_a_server_with_the_settings_printed(
    database: str, tmp_path: Path
) -> None:
    result = _dev_token(
        tmp_path / "dev", "--role", "care-manager", "--team", "north", "--staff-id", "cm-1"
    )
    env = _exports(result.stdout)
    settings = Settings(
        database_url=database,
        jwt_jwks_path=Path(env["FHIRBRIDGE_JWT_JWKS_PATH"]),
        jwt_audience=env["FHIRBRIDGE_JWT_AUDIENCE"],
        jwt_issuer=env["FHIRBRIDGE_JWT_ISSUER"],
    )

    with TestClient(create_app(settings)) as client:
        response = client.get(
            "/patients", headers={"Authorization": f"Bearer {env['FHIRBRIDGE_DEV_TOKEN']}"}
        )

    assert response.status_code == 200, response.text
    assert [p["id"] for p in response.json()] == ["pat-north-1"]


def test_a_dev_token_carries_the_role_team_and_staff_id_asked_for(tmp_path: Path) -> None:
    result = _dev_token(
        tmp_path / "dev", "--role", "supervisor", "--team", "north", "--staff-id", "sup-1"
    )

    token = _exports(result.stdout)["FHIRBRIDGE_DEV_TOKEN"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["roles"], claims["team"], claims["staff_id"]) == (
        ["supervisor"],
        "north",
        "sup-1",
    )


def test_the_signing_key_is_made_once_so_earlier_tokens_stay_valid(
    database: str, tmp_path: Path
) -> None:
    first = _exports(_dev_token(tmp_path / "dev", "--role", "admin").stdout)
    second = _exports(_dev_token(tmp_path / "dev", "--role", "admin").stdout)
    settings = Settings(
        database_url=database,
        jwt_jwks_path=Path(second["FHIRBRIDGE_JWT_JWKS_PATH"]),
        jwt_audience=second["FHIRBRIDGE_JWT_AUDIENCE"],
        jwt_issuer=second["FHIRBRIDGE_JWT_ISSUER"],
    )

    with TestClient(create_app(settings)) as client:
        response = client.get(
            "/patients", headers={"Authorization": f"Bearer {first['FHIRBRIDGE_DEV_TOKEN']}"}
        )

    assert response.status_code == 200, response.text


def test_the_dev_signing_key_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    _dev_token(tmp_path / "dev", "--role", "admin")

    [private] = [p for p in (tmp_path / "dev").iterdir() if p.suffix == ".pem"]
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o600


def test_a_dev_key_folder_inside_the_repository_is_refused(tmp_path: Path) -> None:
    inside = PROJECT_ROOT / f"dev-keys-{tmp_path.name}"

    result = _dev_token(inside, "--role", "admin")

    assert result.exit_code == 2
    assert not inside.exists()


def test_a_dev_token_for_a_role_the_api_does_not_know_is_a_usage_error(tmp_path: Path) -> None:
    result = _dev_token(tmp_path / "dev", "--role", "nurse", "--team", "north")

    assert result.exit_code == 2
    assert not (tmp_path / "dev").exists()


def test_a_care_manager_dev_token_without_a_team_is_a_usage_error(tmp_path: Path) -> None:
    result = _dev_token(tmp_path / "dev", "--role", "care-manager")

    assert result.exit_code == 2
