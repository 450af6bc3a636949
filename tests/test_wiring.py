"""The composition root builds each long-lived object from the settings, once where it can."""

from __future__ import annotations

from pathlib import Path

import pytest

from fhirbridge import wiring
from fhirbridge.caseload import load_caseload
from fhirbridge.config import PROJECT_ROOT, Settings
from fhirbridge.persistence import OutboxState, Store, unit_of_work
from fhirbridge.services.caseload import store_caseload
from fhirbridge.sync.worker import WorkerOptions


def test_fhir_client_takes_the_base_url_and_retries_from_the_settings() -> None:
    settings = Settings(fhir_base_url="http://127.0.0.1:9/fhir/", fhir_max_retries=2)

    client = wiring.fhir_client(settings)

    assert (client.base_url, client.max_retries) == ("http://127.0.0.1:9/fhir", 2)


def test_fhir_client_for_another_server_keeps_the_settings_credentials_and_retries() -> None:
    settings = Settings(fhir_max_retries=4)

    client = wiring.fhir_client(settings, "http://127.0.0.1:9/other", max_retries=1)

    assert (client.base_url, client.max_retries) == ("http://127.0.0.1:9/other", 1)


def test_half_configured_credentials_are_refused_naming_the_missing_variable() -> None:
    settings = Settings(fhir_auth="basic", fhir_username="bridge")

    with pytest.raises(wiring.WiringError, match="FHIRBRIDGE_FHIR_PASSWORD"):
        wiring.fhir_client(settings)


def test_an_unreadable_smart_key_is_refused_before_any_request(tmp_path: Path) -> None:
    settings = Settings(
        fhir_auth="smart",
        smart_client_id="bridge",
        smart_private_key_path=tmp_path / "missing.pem",
    )

    with pytest.raises(wiring.WiringError, match="credentials"):
        wiring.fhir_client(settings)


def test_mapping_files_are_loaded_once_per_process() -> None:
    assert wiring.mappings(Settings()) is wiring.mappings(Settings())


def test_billing_rules_are_loaded_once_per_year() -> None:
    assert wiring.billing_rules(2026) is wiring.billing_rules(2026)
    assert wiring.billing_rules(2026).rule_year == 2026


def test_database_sessions_know_what_each_record_syncs_as(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'w.db'}")
    caseload = load_caseload(PROJECT_ROOT / "fixtures" / "demo" / "caseload.yaml")

    with wiring.database(settings) as sessions:
        with unit_of_work(sessions) as session:
            written = store_caseload(store=Store(session), caseload=caseload)
        with sessions() as session:
            pending = Store(session).outbox.in_state(OutboxState.PENDING)

    referral_targets = {e.resource_type for e in pending if e.local_id == "r-1001-food"}
    assert written == len(pending) > 0
    assert referral_targets == {"ServiceRequest", "Task"}


def test_the_worker_takes_the_transaction_limit_from_the_settings(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'w.db'}", fhir_max_transaction_entries=8
    )
    client = wiring.fhir_client(settings)

    with wiring.database(settings) as sessions:
        worker = wiring.sync_worker(settings, client=client, sessions=sessions, worker_id="w")

    assert worker.options.max_transaction_entries == 8


def test_a_transaction_limit_given_to_the_worker_wins_over_the_settings(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'w.db'}", fhir_max_transaction_entries=8
    )
    client = wiring.fhir_client(settings)
    options = WorkerOptions(max_transaction_entries=3)

    with wiring.database(settings) as sessions:
        worker = wiring.sync_worker(
            settings, client=client, sessions=sessions, worker_id="w", options=options
        )

    assert worker.options.max_transaction_entries == 3
