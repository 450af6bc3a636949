"""Transitional care in the NDJSON exchange: our TCM contacts are exported in Encounter.ndjson
(conformant, serviceType TCM); a Bulk download's discharge Encounter of a patient we have opens
a TCM period through the same hook as the pull, and importing it again opens no second one."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bulk_support import SYSTEM, Sessions, seed_caseload, seed_people

from fhirbridge.billing.loader import load_rule_year
from fhirbridge.bulk import ImportOutcome, export_own_data, import_ndjson, ndjson_files
from fhirbridge.caseload import Caseload
from fhirbridge.config import PROJECT_ROOT
from fhirbridge.domain.transitional_care import TcmContactKind
from fhirbridge.mapping.discharge import load_discharge_rules
from fhirbridge.mapping.loader import Mappings
from fhirbridge.persistence import Store, unit_of_work
from fhirbridge.services import transitional_care as tcm

DISCHARGE = json.loads(
    (PROJECT_ROOT / "fixtures" / "transitional_care" / "discharge-home.json").read_text()
)
POLICY = tcm.tcm_policy(load_rule_year(2026), tz=ZoneInfo("UTC"))
NOW = datetime(2026, 3, 6, 18, tzinfo=UTC)


def _hook(mappings: Mappings) -> tcm.NotOursHook:
    rules = load_discharge_rules(PROJECT_ROOT / "mappings", mappings.terminology)
    return tcm.discharge_hook(rules=rules, policy=POLICY, clock=lambda: NOW)


def _discharge_of_p_1001() -> dict[str, object]:
    return {**DISCHARGE, "subject": {"reference": "Patient/ehr-88401"}}


def test_a_tcm_contact_is_exported_as_a_conformant_tcm_encounter(
    new_database: Callable[[], Sessions],
    demo_caseload: Caseload,
    mappings: Mappings,
    tmp_path: Path,
) -> None:
    source = new_database()
    seed_caseload(source, demo_caseload, mappings)
    with unit_of_work(source) as session:
        store = Store(session)
        opening = tcm.receive_discharge(
            store=store,
            resource=_discharge_of_p_1001(),
            rules=load_discharge_rules(PROJECT_ROOT / "mappings", mappings.terminology),
            policy=POLICY,
            now=NOW,
        )
        assert opening.period is not None
        contact = tcm.record_contact(
            store=store,
            period_id=opening.period.id,
            new=tcm.NewTcmContact(
                kind=TcmContactKind.INTERACTIVE_CONTACT,
                occurred_at=datetime(2026, 3, 9, 15, tzinfo=UTC),
                staff_id="m-rn",
            ),
            policy=POLICY,
        )

    report = export_own_data(
        sessions=source, mappings=mappings, identifier_system=SYSTEM, folder=tmp_path / "out"
    )

    assert not report.rejected
    encounters = [
        json.loads(line)
        for line in (tmp_path / "out" / "Encounter.ndjson").read_text().splitlines()
    ]
    (exported,) = [
        e
        for e in encounters
        if {"system": SYSTEM, "value": f"tcm-contact/{contact.id}"} in e["identifier"]
    ]
    assert exported["serviceType"]["coding"][0]["code"] == "TCM"
    assert exported["subject"]["reference"] == "Patient/ehr-88401"


def test_an_imported_discharge_opens_one_period_however_often_it_is_imported(
    new_database: Callable[[], Sessions],
    demo_caseload: Caseload,
    mappings: Mappings,
    tmp_path: Path,
) -> None:
    target = new_database()
    seed_people(target, demo_caseload)
    (tmp_path / "Encounter.ndjson").write_text(json.dumps(_discharge_of_p_1001()) + "\n")
    files = ndjson_files(tmp_path)

    first = import_ndjson(
        sessions=target,
        files=files,
        mappings=mappings,
        identifier_system=SYSTEM,
        not_ours=_hook(mappings),
    )
    again = import_ndjson(
        sessions=target,
        files=files,
        mappings=mappings,
        identifier_system=SYSTEM,
        not_ours=_hook(mappings),
    )

    assert first.counts[ImportOutcome.HANDLED] == 1
    assert again.counts[ImportOutcome.HANDLED] == 1
    with unit_of_work(target, read_only=True) as session:
        (period,) = Store(session).tcm_periods.list_for_patient("p-1001")
    assert period.discharge_key == "Encounter/disch-1001"


def test_without_the_hook_a_discharge_is_skipped_as_before(
    new_database: Callable[[], Sessions],
    demo_caseload: Caseload,
    mappings: Mappings,
    tmp_path: Path,
) -> None:
    target = new_database()
    seed_people(target, demo_caseload)
    (tmp_path / "Encounter.ndjson").write_text(json.dumps(_discharge_of_p_1001()) + "\n")

    summary = import_ndjson(
        sessions=target, files=ndjson_files(tmp_path), mappings=mappings, identifier_system=SYSTEM
    )

    assert summary.skipped == {"Encounter: not care-management time (no care-activity type)": 1}
