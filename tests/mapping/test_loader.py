"""Mapping files are checked at start-up; a bad one fails naming its file and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fhirbridge.config import PROJECT_ROOT
from fhirbridge.datafiles import DataFileError
from fhirbridge.mapping.context import MappingContext
from fhirbridge.mapping.loader import load_mappings
from tests.mapping.support import IDENTIFIER_SYSTEM, demo

BAD = PROJECT_ROOT / "fixtures" / "mapping" / "bad"


def _mappings_with(tmp_path: Path, bad_file: str, folder: str) -> Path:
    root = tmp_path / "mappings"
    shutil.copytree(PROJECT_ROOT / "mappings", root)
    shutil.copy(BAD / bad_file, root / folder / bad_file)
    return root


def test_the_shipped_mappings_load() -> None:
    loaded = load_mappings(PROJECT_ROOT / "mappings")

    assert {(m.concept, m.resource) for m in loaded.resources} == {
        ("enrollment", "EpisodeOfCare"),
        ("program_consent", "Consent"),
        ("care_plan", "CarePlan"),
        ("goal", "Goal"),
        ("care_task", "Task"),
        ("time_entry", "Encounter"),
        ("referral", "ServiceRequest"),
        ("referral", "Task"),
        ("charge", "ChargeItem"),
        ("tcm_contact", "Encounter"),
        ("assessment", "QuestionnaireResponse"),
        ("screening_observation", "Observation"),
        ("health_concern", "Condition"),
        ("patient_care_team", "CareTeam"),
    }


@pytest.mark.parametrize(
    ("bad_file", "folder", "line", "reason"),
    [
        ("unknown-field.yaml", "resources", 7, "Goal has no field 'mood'"),
        ("unknown-element.yaml", "resources", 6, "Goal has no element 'lifecycleStatuss'"),
        ("unknown-code-system.yaml", "resources", 7, "unknown code system 'snomed-ct'"),
        ("unknown-transform.yaml", "resources", 6, "transform"),
        ("list-into-single.yaml", "resources", 6, "a list field needs a list element"),
        ("table-not-covering-enum.yaml", "codes", 5, "no entry for RiskLevel member(s)"),
        ("table-unknown-system.yaml", "codes", 6, "unknown code system 'hl7-actcode'"),
    ],
    ids=lambda v: v if isinstance(v, str) and v.endswith(".yaml") else "",
)
def test_bad_mapping_file_fails_naming_file_and_line(
    tmp_path: Path, bad_file: str, folder: str, line: int, reason: str
) -> None:
    root = _mappings_with(tmp_path, bad_file, folder)

    with pytest.raises(DataFileError) as raised:
        load_mappings(root)

    assert raised.value.path == root / folder / bad_file
    assert raised.value.line == line
    assert reason in raised.value.reason


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    root = tmp_path / "mappings"
    shutil.copytree(PROJECT_ROOT / "mappings", root)
    (root / "resources" / "broken.yaml").write_text("concept: goal\nfields: [\n  {a: 1\n")

    with pytest.raises(DataFileError) as raised:
        load_mappings(root)

    assert raised.value.path.name == "broken.yaml"
    assert raised.value.line is not None


def test_two_files_mapping_the_same_pair_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "mappings"
    shutil.copytree(PROJECT_ROOT / "mappings", root)
    shutil.copy(root / "resources" / "goal.yaml", root / "resources" / "goal-copy.yaml")

    with pytest.raises(DataFileError, match="also mapped in"):
        load_mappings(root)


def test_referral_tracker_progress_is_owned_by_the_performer() -> None:
    mapping = load_mappings(PROJECT_ROOT / "mappings").get("referral", "Task")

    assert mapping.remote_fields == {
        "task_status",
        "task_status_reason",
        "task_owner_reference",
        "outcomes",
        "outcome_references",
    }


def _shipped_with(tmp_path: Path, file: str, old: str, new: str) -> Path:
    """A copy of the shipped mappings with ``old`` replaced by ``new`` in one resource file."""
    root = tmp_path / "mappings"
    shutil.copytree(PROJECT_ROOT / "mappings", root)
    path = root / "resources" / file
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{file} no longer contains {old!r}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return root


def _line_of(path: Path, text: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(number for number, line in enumerate(lines, 1) if line.startswith(text))


def test_the_shipped_plan_pushes_each_concept_after_what_it_references() -> None:
    plan = load_mappings(PROJECT_ROOT / "mappings").plan

    assert plan.concepts == (
        "assessment",
        "enrollment",
        "patient_care_team",
        "tcm_contact",
        "program_consent",
        "screening_observation",
        "health_concern",
        "goal",
        "care_plan",
        "referral",
        "care_task",
        "time_entry",
        "charge",
    )


def test_a_referral_syncs_as_its_service_request_then_its_task() -> None:
    plan = load_mappings(PROJECT_ROOT / "mappings").plan

    assert plan.targets("referral") == ("ServiceRequest", "Task")
    assert plan.primary("referral") == "ServiceRequest"


def test_people_sync_as_nothing() -> None:
    plan = load_mappings(PROJECT_ROOT / "mappings").plan

    assert plan.targets("patient") == ()
    assert plan.targets("member") == ()


@pytest.mark.parametrize(
    ("file", "old", "new", "reason"),
    [
        pytest.param(
            "referral_task.yaml",
            "primary: false",
            "primary: true",
            "concept 'referral' already has its primary resource in",
            id="two-primaries",
        ),
        pytest.param(
            "referral.yaml",
            "identifier_prefix: referral\n",
            "identifier_prefix: referral\nprimary: false\n",
            "concept 'referral' has no mapping with 'primary: true'",
            id="no-primary",
        ),
        pytest.param(
            "goal.yaml",
            "after: [enrollment, health_concern]",
            "after: [enrollment, health_concern, diet_plan]",
            "'after' names unmapped concept 'diet_plan'",
            id="after-unknown-concept",
        ),
        pytest.param(
            "goal.yaml",
            "after: [enrollment, health_concern]",
            "after: [goal]",
            "'goal' cannot come after itself",
            id="after-itself",
        ),
        pytest.param(
            "enrollment.yaml",
            "identifier_prefix: enrollment\n",
            "identifier_prefix: enrollment\nafter: [goal]\n",
            "'after' keys form a cycle: enrollment after goal after enrollment",
            id="cycle",
        ),
    ],
)
def test_bad_sync_plan_keys_fail_naming_file_and_line(
    tmp_path: Path, file: str, old: str, new: str, reason: str
) -> None:
    root = _shipped_with(tmp_path, file, old, new)
    path = root / "resources" / file

    with pytest.raises(DataFileError) as raised:
        load_mappings(root)

    assert raised.value.path == path
    assert raised.value.line == _line_of(path, new.splitlines()[-1])
    assert reason in raised.value.reason


class _Placeholders:
    """Every local record is a ``urn:uuid:`` placeholder, as inside a transaction."""

    def reference(self, concept: str, local_id: str) -> str:
        return f"urn:uuid:{concept}-{local_id}"

    def local_id(self, concept: str, reference: str) -> str | None:
        return None


def _referral_activity_types(root: Path) -> set[str]:
    loaded = load_mappings(root)
    plan = next(p for p in demo().care_plans if p.referral_ids)
    ctx = MappingContext(IDENTIFIER_SYSTEM, _Placeholders(), loaded.terminology)
    resource = loaded.get("care_plan", "CarePlan").to_fhir(plan, ctx)
    references = [activity["reference"] for activity in resource["activity"]]
    return {r["type"] for r in references if r["reference"].startswith("urn:uuid:referral-")}


def test_a_reference_placeholder_is_typed_as_the_referenced_concepts_primary_resource() -> None:
    assert _referral_activity_types(PROJECT_ROOT / "mappings") == {"ServiceRequest"}


def test_the_placeholder_type_follows_the_primary_key_of_the_files(tmp_path: Path) -> None:
    root = _shipped_with(tmp_path, "referral_task.yaml", "primary: false", "primary: true")
    order = root / "resources" / "referral.yaml"
    text = order.read_text(encoding="utf-8")
    order.write_text(
        text.replace(
            "identifier_prefix: referral\n", "identifier_prefix: referral\nprimary: false\n"
        )
    )

    assert _referral_activity_types(root) == {"Task"}
