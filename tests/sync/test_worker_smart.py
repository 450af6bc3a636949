"""Pushing to a server that requires SMART Backend Services, configured as an operator would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from typer.testing import CliRunner

from fhirbridge.caseload import load_caseload
from fhirbridge.cli import app
from fhirbridge.config import PROJECT_ROOT
from fhirbridge.fhir import SigningKey
from fhirbridge.localserver import LocalFhirServer
from fhirbridge.persistence import (
    OutboxState,
    Store,
    make_engine,
    migrate,
    unit_of_work,
)
from fhirbridge.services.caseload import store_caseload
from tests.sessions import session_factory

pytestmark = pytest.mark.integration
CLIENT_ID = "fhirbridge-sync"
runner = CliRunner()


def _rsa_key(path: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


@pytest.fixture(scope="module")
def registered_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _rsa_key(tmp_path_factory.mktemp("keys") / "registered.pem")


@pytest.fixture(scope="module")
def smart_server(
    tmp_path_factory: pytest.TempPathFactory, registered_key: Path
) -> Iterator[LocalFhirServer]:
    jwk = SigningKey.from_pem(registered_key).public_jwk()
    server = LocalFhirServer(
        workdir=tmp_path_factory.mktemp("sekmet-smart-sync"),
        server_auth={
            "types": ["smart"],
            "smart_clients": [
                {"client_id": CLIENT_ID, "jwks": {"keys": [jwk]}, "scopes": "system/*.*"}
            ],
            "token_lifetime": 300,
        },
    )
    with server:
        yield server


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'smart.db'}"
    migrate(url)
    engine = make_engine(url)
    with unit_of_work(session_factory(engine)) as session:
        store_caseload(
            store=Store(session),
            caseload=load_caseload(PROJECT_ROOT / "fixtures" / "demo" / "caseload.yaml"),
        )
    engine.dispose()
    monkeypatch.setenv("FHIRBRIDGE_DATABASE_URL", url)
    monkeypatch.setenv("FHIRBRIDGE_IDENTIFIER_SYSTEM", f"urn:fhirbridge:smart-{tmp_path.name}")
    monkeypatch.setenv("FHIRBRIDGE_FHIR_AUTH", "smart")
    monkeypatch.setenv("FHIRBRIDGE_SMART_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("FHIRBRIDGE_SMART_SCOPES", "system/*.*")
    return url


def _pending(url: str) -> int:
    engine = make_engine(url)
    with session_factory(engine)() as session:
        counts = Store(session).outbox.counts()
    engine.dispose()
    return counts[OutboxState.PENDING]


def test_sync_push_authenticates_with_the_registered_key(
    database: str,
    registered_key: Path,
    smart_server: LocalFhirServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FHIRBRIDGE_SMART_PRIVATE_KEY_PATH", str(registered_key))

    result = runner.invoke(app, ["sync", "push", "--once", "--fhir-url", smart_server.base_url])

    assert result.exit_code == 0, result.output
    assert "pushed 27" in result.output
    assert _pending(database) == 0


def test_sync_push_with_a_wrong_key_fails_clearly_and_keeps_every_record(
    database: str,
    tmp_path: Path,
    smart_server: LocalFhirServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FHIRBRIDGE_SMART_PRIVATE_KEY_PATH", str(_rsa_key(tmp_path / "wrong.pem")))

    result = runner.invoke(app, ["sync", "push", "--once", "--fhir-url", smart_server.base_url])

    assert result.exit_code == 3
    assert "refused our credentials" in result.output
    assert "invalid_client" in result.output
    assert _pending(database) > 0


def _states(url: str) -> dict[OutboxState, int]:
    engine = make_engine(url)
    with session_factory(engine)() as session:
        counts = Store(session).outbox.counts()
    engine.dispose()
    return counts


def test_a_wrong_key_with_two_batches_in_flight_leaves_every_entry_pending_none_in_flight(
    database: str,
    tmp_path: Path,
    registered_key: Path,
    smart_server: LocalFhirServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FHIRBRIDGE_SMART_PRIVATE_KEY_PATH", str(_rsa_key(tmp_path / "wrong.pem")))
    entries = sum(_states(database).values())

    result = runner.invoke(
        app,
        ["sync", "push", "--once", "--batch-size", "10", "--fhir-url", smart_server.base_url],
    )

    assert result.exit_code == 3, result.output
    states = _states(database)
    assert (states[OutboxState.IN_FLIGHT], states[OutboxState.DEAD]) == (0, 0)
    assert states[OutboxState.PENDING] == entries
    # Once the key is fixed, everything goes, once.
    monkeypatch.setenv("FHIRBRIDGE_SMART_PRIVATE_KEY_PATH", str(registered_key))
    fixed = runner.invoke(app, ["sync", "push", "--once", "--fhir-url", smart_server.base_url])
    assert fixed.exit_code == 0, fixed.output
    assert f"pushed {entries}" in fixed.output
    assert _states(database)[OutboxState.DONE] == entries
