"""Mapping files are checked at start-up; a bad one fails naming its file and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fhirbridge.config import PROJECT_ROOT
from fhirbridge.datafiles import DataFileError
from fhirbridge.mapping.loader import load_mappings

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
