"""Which resources of other systems a Bulk import adopts (``mappings/inbound.yaml``): referrals
and their trackers, never ordinary EHR orders; the rest is skipped and counted by reason."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from bulk_support import BULK, SYSTEM, Sessions

from fhirbridge.bulk import ImportSummary, import_ndjson, ndjson_files
from fhirbridge.config import Settings
from fhirbridge.datafiles import DataFileError
from fhirbridge.domain import TaskStatus
from fhirbridge.mapping.inbound import Skip, load_inbound
from fhirbridge.mapping.loader import Mappings, load_mappings
from fhirbridge.persistence import Store
from fhirbridge.services.referral import SDOH_CATEGORIES

EHR_ORDERS = BULK / "ehr-orders"
NOT_A_REFERRAL = (
    "ServiceRequest: not a referral (no referral or SDOH category,"
    " not based on one of our care plans)"
)


@pytest.fixture
def imported(
    new_database: Callable[[], Sessions], mappings: Mappings
) -> tuple[Sessions, ImportSummary]:
    target = new_database()
    summary = import_ndjson(
        sessions=target, files=ndjson_files(EHR_ORDERS), mappings=mappings, identifier_system=SYSTEM
    )
    return target, summary


def _referral_ids(sessions: Sessions) -> set[str]:
    with sessions() as session:
        return {r.id for r in Store(session).referrals.list_for_patient("ehr-9001")}


def test_ordinary_ehr_orders_are_not_adopted_as_referrals(
    imported: tuple[Sessions, ImportSummary],
) -> None:
    sessions, _ = imported

    assert "ehr-sr-tsh" not in _referral_ids(sessions)
    assert "ehr-sr-colonoscopy" not in _referral_ids(sessions)


def test_an_order_with_an_sdoh_category_is_adopted_as_a_referral(
    imported: tuple[Sessions, ImportSummary],
) -> None:
    sessions, _ = imported

    assert "ehr-sr-food" in _referral_ids(sessions)


def test_an_order_based_on_one_of_our_care_plans_is_adopted(
    imported: tuple[Sessions, ImportSummary],
) -> None:
    sessions, _ = imported

    assert "ehr-sr-education" in _referral_ids(sessions)


def test_a_task_whose_focus_is_one_of_our_orders_tracks_that_referral(
    imported: tuple[Sessions, ImportSummary],
) -> None:
    sessions, _ = imported

    with sessions() as session:
        referral = Store(session).referrals.require("ehr-sr-food")
    assert (referral.task_status, referral.task_owner_reference) == (
        TaskStatus.ACCEPTED,
        "Organization/cbo-foodbank-7",
    )


def test_skipped_resources_are_counted_by_reason(
    imported: tuple[Sessions, ImportSummary],
) -> None:
    _, summary = imported

    assert dict(summary.skipped) == {
        NOT_A_REFERRAL: 2,
        "Task: not tracking one of our orders": 1,
    }
    assert not summary.errors


def test_the_summary_line_names_the_skip_reasons(
    imported: tuple[Sessions, ImportSummary],
) -> None:
    _, summary = imported

    assert f"skipped 3 ({NOT_A_REFERRAL}: 2; Task: not tracking one of our orders: 1)" in str(
        summary
    )


def test_a_type_no_rule_names_is_skipped(
    new_database: Callable[[], Sessions], mappings: Mappings, tmp_path: Path
) -> None:
    charges = tmp_path / "ChargeItem.ndjson"
    charges.write_text(
        '{"resourceType":"ChargeItem","id":"ehr-ci-1","status":"billable",'
        '"code":{"coding":[{"system":"http://www.ama-assn.org/go/cpt","code":"99490"}]},'
        '"subject":{"reference":"Patient/ehr-9001"}}\n'
    )

    summary = import_ndjson(
        sessions=new_database(),
        files=[("ChargeItem", charges)],
        mappings=mappings,
        identifier_system=SYSTEM,
    )

    assert dict(summary.skipped) == {"ChargeItem: no adoption rule": 1}


# -- the file ------------------------------------------------------------------------------


def test_the_sdoh_codes_adopted_are_the_categories_referrals_may_carry(mappings: Mappings) -> None:
    rules = load_inbound(Settings().mappings_dir, mappings)
    sdohcc = mappings.terminology.uri("sdohcc")

    (by_category, _) = rules.rules["ServiceRequest"].conditions
    adopted = {code for system, code in by_category.codings if system == sdohcc}
    assert adopted == set(SDOH_CATEGORIES)


BROKEN = [
    (
        "adopt:\n  - resource: Task\n    as: referral\n    when_any:\n"
        "      - {element: focus, refers_to: referral}\n"
        "      - {element: code, codes: {no-such-system: [x]}}\n",
        6,
        "unknown code system 'no-such-system'",
    ),
    (
        "adopt:\n  - resource: ServiceRequest\n    as: referral\n    when_any:\n"
        "      - {element: catgory, systems: [sdohcc]}\n",
        5,
        "unknown FHIR element",
    ),
    (
        "adopt:\n  - resource: ServiceRequest\n    as: referral\n    when_any:\n"
        "      - {element: basedOn, systems: [sdohcc]}\n",
        5,
        "is a Reference, not a",
    ),
    (
        "adopt:\n  - resource: Observation\n    as: referral\n    always: true\n",
        3,
        "no mapping reads Observation as referral",
    ),
    (
        "adopt:\n  - {resource: Goal, as: goal, always: true}\n"
        "  - {resource: Goal, as: goal, always: true}\n",
        3,
        "a second rule for Goal",
    ),
]


@pytest.mark.parametrize(("text", "line", "reason"), BROKEN, ids=lambda v: str(v)[:20])
def test_a_broken_inbound_file_is_refused_with_file_and_line(
    mappings: Mappings, tmp_path: Path, text: str, line: int, reason: str
) -> None:
    (tmp_path / "inbound.yaml").write_text(text)

    with pytest.raises(DataFileError) as caught:
        load_inbound(tmp_path, mappings)

    assert (caught.value.path.name, caught.value.line) == ("inbound.yaml", line)
    assert reason in caught.value.reason


def test_a_broken_inbound_file_stops_loading_the_mappings_at_start_up(tmp_path: Path) -> None:
    root = tmp_path / "mappings"
    shutil.copytree(Settings().mappings_dir, root)
    (root / "inbound.yaml").write_text(BROKEN[3][0])

    with pytest.raises(DataFileError) as caught:
        load_mappings(root)

    assert (caught.value.path.name, caught.value.line) == ("inbound.yaml", 3)


def test_the_mappings_carry_the_shipped_adoption_rules(mappings: Mappings) -> None:
    assert set(mappings.inbound.rules) >= {"ServiceRequest", "Task"}


def test_without_an_inbound_file_no_other_systems_resource_is_adopted(tmp_path: Path) -> None:
    root = tmp_path / "mappings"
    shutil.copytree(Settings().mappings_dir, root)
    (root / "inbound.yaml").unlink()

    rules = load_mappings(root).inbound

    decision = rules.decide({"resourceType": "Goal"}, lambda concept, reference: False)
    assert isinstance(decision, Skip)
