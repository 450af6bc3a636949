"""Which resources of other systems a Bulk import adopts (``mappings/inbound.yaml``): referrals
and their trackers, never ordinary EHR orders; the rest is skipped and counted by reason. And
staff: the export's Practitioners become care-team members when asked, otherwise a line that
needs one names it and how to onboard it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import respx
from bulk_support import BULK, SYSTEM, Sessions, seed_caseload, seed_people
from typer.testing import CliRunner, Result

from fhirbridge.bulk import (
    ImportOptions,
    ImportSummary,
    export_own_data,
    import_ndjson,
    ndjson_files,
)
from fhirbridge.caseload import Caseload
from fhirbridge.cli import app
from fhirbridge.config import Settings
from fhirbridge.datafiles import DataFileError
from fhirbridge.domain import StaffRole, TaskStatus
from fhirbridge.mapping.inbound import Skip, load_inbound
from fhirbridge.mapping.loader import Mappings, load_mappings
from fhirbridge.persistence import Store, make_engine
from fhirbridge.services.referral import SDOH_CATEGORIES
from tests.sessions import session_factory

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


# -- staff: a fresh installation's first import ----------------------------------------------

EHR = Path(__file__).resolve().parents[2] / "fixtures" / "demo" / "ehr"


@pytest.fixture
def own_export(
    new_database: Callable[[], Sessions],
    demo_caseload: Caseload,
    mappings: Mappings,
    tmp_path: Path,
) -> Path:
    """The demo caseload exported as NDJSON, with the EHR's Practitioners beside it, as an
    EHR's Bulk export holds them."""
    source = new_database()
    seed_caseload(source, demo_caseload, mappings)
    folder = tmp_path / "export"
    export_own_data(sessions=source, mappings=mappings, identifier_system=SYSTEM, folder=folder)
    practitioners = [
        json.dumps(json.loads(path.read_text()), separators=(",", ":"))
        for path in sorted(EHR.glob("Practitioner-*.json"))
    ]
    (folder / "Practitioner.ndjson").write_text("\n".join(practitioners) + "\n")
    return folder


def _import(sessions: Sessions, folder: Path, mappings: Mappings, **options: Any) -> ImportSummary:
    return import_ndjson(
        sessions=sessions,
        files=ndjson_files(folder),
        mappings=mappings,
        identifier_system=SYSTEM,
        options=ImportOptions(**options),
    )


def test_a_consent_recorded_by_an_unknown_practitioner_fails_naming_it_and_the_onboarding(
    new_database: Callable[[], Sessions], own_export: Path, mappings: Mappings
) -> None:
    summary = _import(new_database(), own_export, mappings, team="north")

    [first, *_] = [e for e in summary.errors if e.file.name == "Consent.ndjson"]
    assert "Practitioner/ehr-pr-201: not a care-team member" in first.reason
    assert "`fhirbridge people import FILE --team north`" in first.reason
    assert "`--adopt-practitioners --team north`" in first.reason


def test_without_adoption_the_practitioner_file_is_not_read(
    new_database: Callable[[], Sessions], own_export: Path, mappings: Mappings
) -> None:
    summary = _import(new_database(), own_export, mappings)

    assert own_export / "Practitioner.ndjson" in summary.skipped_files


def test_references_to_practitioners_that_are_no_members_are_counted(
    new_database: Callable[[], Sessions], own_export: Path, mappings: Mappings
) -> None:
    summary = _import(new_database(), own_export, mappings)

    assert set(summary.unknown_practitioners) == {
        "Practitioner/ehr-pr-100",
        "Practitioner/ehr-pr-201",
        "Practitioner/ehr-pr-305",
        "Practitioner/ehr-pr-410",
    }
    assert "4 Practitioner(s) not care-team members" in str(summary)


def test_adopting_practitioners_imports_the_export_without_errors(
    new_database: Callable[[], Sessions], own_export: Path, mappings: Mappings
) -> None:
    summary = _import(new_database(), own_export, mappings, adopt_practitioners=True, team="north")

    assert not summary.errors
    assert not summary.unknown_practitioners
    assert summary.by_type["Practitioner"] == 4


def test_adopted_practitioners_are_members_of_the_team_with_the_role_their_title_says(
    new_database: Callable[[], Sessions], own_export: Path, mappings: Mappings
) -> None:
    target = new_database()
    _import(target, own_export, mappings, adopt_practitioners=True, team="north")

    with target() as session:
        members = {m.id: m for m in Store(session).care_team.list_for_team("north")}
    assert {m.id: m.role for m in members.values()} == {
        "ehr-pr-100": StaffRole.PHYSICIAN,
        "ehr-pr-201": StaffRole.RN,
        "ehr-pr-305": StaffRole.LCSW,
        "ehr-pr-410": StaffRole.CHW,
    }
    assert members["ehr-pr-201"].practitioner_reference == "Practitioner/ehr-pr-201"


def test_a_consent_points_at_the_adopted_member(
    new_database: Callable[[], Sessions], own_export: Path, mappings: Mappings
) -> None:
    target = new_database()
    _import(target, own_export, mappings, adopt_practitioners=True, team="north")

    with target() as session:
        consent = Store(session).consents.require("cs-1001")
    assert consent.recorded_by_id == "ehr-pr-201"


def test_importing_again_with_adoption_changes_nothing(
    new_database: Callable[[], Sessions], own_export: Path, mappings: Mappings
) -> None:
    target = new_database()
    first = _import(target, own_export, mappings, adopt_practitioners=True, team="north")

    again = _import(target, own_export, mappings, adopt_practitioners=True, team="north")

    assert (again.created, again.updated, again.errors) == (0, 0, [])
    assert again.unchanged == first.created + first.updated + first.unchanged


def test_a_practitioner_already_onboarded_keeps_its_local_member(
    new_database: Callable[[], Sessions],
    own_export: Path,
    mappings: Mappings,
    demo_caseload: Caseload,
) -> None:
    target = new_database()
    seed_people(target, demo_caseload)  # m-rn is Practitioner/ehr-pr-201

    _import(target, own_export, mappings, adopt_practitioners=True, team="north")

    with target() as session:
        store = Store(session)
        assert store.care_team.get("ehr-pr-201") is None
        assert store.consents.require("cs-1001").recorded_by_id == "m-rn"


def test_a_practitioner_whose_title_says_no_role_takes_the_role_given(
    new_database: Callable[[], Sessions], mappings: Mappings, tmp_path: Path
) -> None:
    (tmp_path / "Practitioner.ndjson").write_text(
        '{"resourceType":"Practitioner","id":"ehr-pr-9","name":[{"text":"Pat Guide"}]}\n'
    )
    target = new_database()

    _import(
        target,
        tmp_path,
        mappings,
        adopt_practitioners=True,
        practitioner_role=StaffRole.NAVIGATOR,
    )

    with target() as session:
        assert Store(session).care_team.require("ehr-pr-9").role is StaffRole.NAVIGATOR


def test_a_practitioner_whose_role_is_unknown_is_a_line_error(
    new_database: Callable[[], Sessions], mappings: Mappings, tmp_path: Path
) -> None:
    (tmp_path / "Practitioner.ndjson").write_text(
        '{"resourceType":"Practitioner","id":"ehr-pr-9","name":[{"text":"Pat Guide"}]}\n'
    )

    summary = _import(new_database(), tmp_path, mappings, adopt_practitioners=True)

    assert [(e.file.name, e.line) for e in summary.errors] == [("Practitioner.ndjson", 1)]
    assert "--role" in summary.errors[0].reason


# -- the command ---------------------------------------------------------------------------


@pytest.fixture
def cli_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("FHIRBRIDGE_IDENTIFIER_SYSTEM", SYSTEM)
    return f"sqlite:///{tmp_path / 'fresh.db'}"


def test_bulk_import_into_a_fresh_installation_names_the_unknown_practitioner(
    own_export: Path, cli_database: str
) -> None:
    result = CliRunner().invoke(
        app, ["bulk", "import", str(own_export), "--database-url", cli_database]
    )

    assert result.exit_code == 1
    assert "Consent.ndjson:1:" in result.stderr
    assert "Practitioner/ehr-pr-201: not a care-team member" in result.stderr
    assert "fhirbridge people import" in result.stdout


def test_bulk_import_adopting_practitioners_imports_everything(
    own_export: Path, cli_database: str
) -> None:
    result = CliRunner().invoke(
        app,
        [
            *("bulk", "import", str(own_export), "--adopt-practitioners", "--team", "north"),
            *("--database-url", cli_database),
        ],
    )

    assert result.exit_code == 0, result.output
    assert "errors 0" in result.stdout


BASE = "http://127.0.0.1:9/fhir"


@pytest.fixture
def ehr_server(own_export: Path) -> Iterator[respx.MockRouter]:
    """A FHIR server whose $export hands out the files of ``own_export`` at once."""
    status = f"{BASE}/bulk-status/job1"
    output = []
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        for path in sorted(own_export.glob("*.ndjson")):
            url = f"{BASE}/bulk-files/job1/{path.name}"
            count = len(path.read_text().splitlines())
            output.append({"type": path.stem, "url": url, "count": count})
            router.get(url).respond(200, content=path.read_bytes())
        router.get(f"{BASE}/$export").respond(202, headers={"Content-Location": status})
        router.get(status).respond(
            200,
            json={
                "transactionTime": "2026-10-31T12:00:00Z",
                "request": f"{BASE}/$export",
                "requiresAccessToken": False,
                "output": output,
                "error": [],
            },
        )
        yield router


def _export_and_import(cli_database: str, out: Path, *options: str) -> Result:
    return CliRunner().invoke(
        app,
        [
            *("bulk", "export", "--fhir-url", BASE, "--out", str(out), "--max-wait", "1"),
            *("--import", "--database-url", cli_database, *options),
        ],
        env={"COLUMNS": "200"},
    )


def test_bulk_export_importing_with_adoption_makes_the_practitioners_team_members(
    ehr_server: respx.MockRouter, cli_database: str, tmp_path: Path
) -> None:
    result = _export_and_import(
        cli_database, tmp_path / "download", "--adopt-practitioners", "--team", "north"
    )

    assert result.exit_code == 0, result.output
    assert "errors 0" in result.stdout
    engine = make_engine(cli_database)
    with session_factory(engine)() as session:
        members = Store(session).care_team.list_for_team("north")
    engine.dispose()
    assert {m.id for m in members} == {"ehr-pr-100", "ehr-pr-201", "ehr-pr-305", "ehr-pr-410"}


def test_bulk_export_importing_without_adoption_leaves_the_consents_of_unknown_staff_out(
    ehr_server: respx.MockRouter, cli_database: str, tmp_path: Path
) -> None:
    result = _export_and_import(cli_database, tmp_path / "download")

    assert result.exit_code == 1
    assert "Practitioner/ehr-pr-201: not a care-team member" in result.stdout


def test_adoption_options_without_import_are_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["bulk", "export", "--out", str(tmp_path), "--adopt-practitioners", "--team", "north"],
        env={"COLUMNS": "200"},
    )

    assert result.exit_code == 2
    assert "apply to the import" in result.stderr
