"""Monthly charges: the ChargeItem they map to, and recording a month's charges idempotently
(re-running updates, never duplicates, and queues only what changed)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fhir.resources.R4B import get_fhir_model_class
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.billing import load_rule_year
from fhirbridge.caseload import Caseload, load_caseload
from fhirbridge.conformance import Severity, check
from fhirbridge.domain import ChargeStatus, Code, MonthlyCharge, TimeEntryStatus
from fhirbridge.persistence import OutboxState, Store, unit_of_work
from fhirbridge.services.billing import (
    ChargeRun,
    charge_id,
    charges_of,
    monthly_report,
    record_charges,
)
from tests.billing.billing_db import BACKENDS, billing_database, empty, store_all
from tests.mapping.support import demo_context, map_back, mappings

ROOT = Path(__file__).resolve().parents[2]
REPORTS = ROOT / "fixtures" / "billing" / "reports"
RULES = load_rule_year(2026)
CHICAGO = ZoneInfo("America/Chicago")
OCTOBER = (2026, 10)
CHARGE_GOLDEN = REPORTS / "ChargeItem-charge-p-1001-2026-10-99490.json"
CCM_CHARGE = MonthlyCharge(
    id="p-1001-2026-10-99490",
    patient_id="p-1001",
    code=Code("cpt", "99490"),
    units=1,
    month_start=date(2026, 10, 1),
    month_end=date(2026, 10, 31),
    status=ChargeStatus.BILLABLE,
    practitioner_id="m-md",
    time_entry_ids=["te-1001-01", "te-1001-02"],
)


def _parsed(data: dict[str, Any]) -> dict[str, Any]:
    model = get_fhir_model_class("ChargeItem").model_validate(data)
    result: dict[str, Any] = json.loads(model.model_dump_json(exclude_none=True))
    return result


# -- mapping -----------------------------------------------------------------------------


def test_a_charge_maps_to_its_golden_chargeitem() -> None:
    produced = mappings().get("charge", "ChargeItem").to_fhir(CCM_CHARGE, demo_context())

    assert _parsed(produced) == _parsed(json.loads(CHARGE_GOLDEN.read_text()))


def test_the_golden_chargeitem_maps_back_to_the_charge() -> None:
    resource = json.loads(CHARGE_GOLDEN.read_text())

    assert map_back("charge", {"ChargeItem": resource}, demo_context()) == CCM_CHARGE


@pytest.mark.parametrize("path", sorted(REPORTS.glob("ChargeItem-*.json")), ids=lambda p: p.stem)
def test_golden_chargeitems_pass_r4b_and_the_chargeitem_profile(path: Path) -> None:
    errors = [f for f in check(json.loads(path.read_text())) if f.severity is Severity.ERROR]

    assert errors == []


def test_an_hcpcs_charge_is_coded_in_the_hcpcs_system() -> None:
    charge = replace(CCM_CHARGE, id="p-1001-2026-10-G0019", code=Code("hcpcs", "G0019"))

    resource = mappings().get("charge", "ChargeItem").to_fhir(charge, demo_context())

    assert resource["code"]["coding"] == [
        {"system": "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets", "code": "G0019"}
    ]


def test_charge_ids_are_patient_month_and_code() -> None:
    assert charge_id("p-1001", (2026, 10), "99490") == "p-1001-2026-10-99490"


def test_charge_ids_too_long_for_an_id_column_become_a_stable_uuid() -> None:
    long_patient = "p" * 60

    first = charge_id(long_patient, (2026, 10), "99490")

    assert len(first) <= 64
    assert first == charge_id(long_patient, (2026, 10), "99490")
    assert first != charge_id(long_patient, (2026, 11), "99490")


# -- recording a month -------------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def module_sessions(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[sessionmaker[Session]]:
    with billing_database(request.param, tmp_path_factory.mktemp("charges")) as sessions:
        yield sessions


@pytest.fixture
def caseload() -> Caseload:
    return load_caseload(ROOT / "fixtures" / "demo" / "caseload.yaml")


@pytest.fixture
def sessions(module_sessions: sessionmaker[Session], caseload: Caseload) -> sessionmaker[Session]:
    empty(module_sessions)
    store_all(module_sessions, [*caseload.patients, *caseload.members, *caseload.care_records()])
    return module_sessions


def _close_month(sessions: sessionmaker[Session]) -> ChargeRun:
    with unit_of_work(sessions) as session:
        report = monthly_report(Store(session), month=OCTOBER, tz=CHICAGO, rules=RULES)
        return record_charges(Store(session), report=report)


def _push_everything(sessions: sessionmaker[Session]) -> None:
    """Stand-in for the sync worker: every pending outbox entry is claimed and done."""
    with unit_of_work(sessions) as session:
        store = Store(session)
        for entry in store.outbox.claim(batch_size=10_000, worker_id="test"):
            store.outbox.mark_done(entry.id)


def _pending_charge_items(sessions: sessionmaker[Session]) -> list[str]:
    with unit_of_work(sessions) as session:
        pending = Store(session).outbox.in_state(OutboxState.PENDING)
    return sorted(e.local_id for e in pending if e.resource_type == "ChargeItem")


def _charges(sessions: sessionmaker[Session]) -> list[MonthlyCharge]:
    with unit_of_work(sessions) as session:
        return Store(session).charges.list_for_month(date(2026, 10, 1))


def test_closing_a_month_saves_a_charge_per_earned_code(sessions: sessionmaker[Session]) -> None:
    run = _close_month(sessions)

    assert run.created == ("p-1001-2026-10-99490", "p-1002-2026-10-99424")
    assert _charges(sessions)[0] == CCM_CHARGE


def test_closing_a_month_queues_each_new_charge_as_a_chargeitem(
    sessions: sessionmaker[Session],
) -> None:
    _close_month(sessions)

    assert _pending_charge_items(sessions) == ["p-1001-2026-10-99490", "p-1002-2026-10-99424"]


def test_closing_the_month_again_changes_and_queues_nothing(
    sessions: sessionmaker[Session],
) -> None:
    _close_month(sessions)
    _push_everything(sessions)

    run = _close_month(sessions)

    assert (run.created, run.updated, run.unchanged) == (
        (),
        (),
        ("p-1001-2026-10-99490", "p-1002-2026-10-99424"),
    )
    assert len(_charges(sessions)) == 2
    assert _pending_charge_items(sessions) == []


def test_more_minutes_update_only_the_charge_they_change(
    sessions: sessionmaker[Session], caseload: Caseload
) -> None:
    _close_month(sessions)
    _push_everything(sessions)
    extra = replace(
        caseload.time_entries[0],
        id="te-1001-04",
        start=datetime(2026, 10, 27, 9, 0, tzinfo=CHICAGO),
        end=None,
        minutes=5,  # 37 minutes: still below 99439's 40
        notes=None,
    )
    store_all(sessions, [extra])

    run = _close_month(sessions)

    assert run.updated == ("p-1001-2026-10-99490",)
    assert _pending_charge_items(sessions) == ["p-1001-2026-10-99490"]
    assert _charges(sessions)[0].time_entry_ids == ["te-1001-01", "te-1001-02", "te-1001-04"]


def test_a_code_no_longer_earned_is_withdrawn_not_deleted(
    sessions: sessionmaker[Session], caseload: Caseload
) -> None:
    _close_month(sessions)
    _push_everything(sessions)
    wrong = replace(caseload.time_entries[0], status=TimeEntryStatus.ENTERED_IN_ERROR)
    store_all(sessions, [wrong])

    run = _close_month(sessions)

    assert run.withdrawn == ("p-1001-2026-10-99490",)
    assert _charges(sessions)[0].status is ChargeStatus.NOT_BILLABLE
    assert _pending_charge_items(sessions) == ["p-1001-2026-10-99490"]


def test_a_billed_charge_is_never_rewritten(
    sessions: sessionmaker[Session], caseload: Caseload
) -> None:
    _close_month(sessions)
    with unit_of_work(sessions) as session:
        Store(session).charges.save(replace(CCM_CHARGE, status=ChargeStatus.BILLED))
    _push_everything(sessions)
    store_all(
        sessions, [replace(caseload.time_entries[0], status=TimeEntryStatus.ENTERED_IN_ERROR)]
    )

    run = _close_month(sessions)

    assert run.held == ("p-1001-2026-10-99490",)
    assert _charges(sessions)[0] == replace(CCM_CHARGE, status=ChargeStatus.BILLED)


def test_charges_of_a_report_follow_its_earned_lines(sessions: sessionmaker[Session]) -> None:
    with unit_of_work(sessions) as session:
        report = monthly_report(Store(session), month=OCTOBER, tz=CHICAGO, rules=RULES)

    assert [c.id for c in charges_of(report)] == [
        "p-1001-2026-10-99490",
        "p-1002-2026-10-99424",
    ]
