"""Loading profile rule files: the shipped ones load, broken ones fail naming file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from fhirbridge.conformance import (
    DEFAULT_PROFILES_DIR,
    ProfileFileError,
    load_profile_file,
    load_profiles,
)

BAD = Path(__file__).resolve().parents[2] / "fixtures" / "conformance" / "bad"
MARKER = "# expected-error"


def marked_line(file: Path) -> int:
    """The 1-based line the fixture marks as the one the error must point at."""
    lines = file.read_text(encoding="utf-8").splitlines()
    marked = [number for number, line in enumerate(lines, start=1) if MARKER in line]
    assert len(marked) == 1, f"{file.name} must mark exactly one line"
    return marked[0]


def test_every_shipped_profile_file_loads() -> None:
    profiles = load_profiles(DEFAULT_PROFILES_DIR)

    assert {p.id for p in profiles.profiles} == {
        "us-core-careplan",
        "us-core-goal",
        "us-core-servicerequest",
        "us-core-encounter",
        "sdohcc-servicerequest",
        "sdohcc-task-referral",
        "fhirbridge-episodeofcare",
        "fhirbridge-consent",
        "fhirbridge-care-task",
        "fhirbridge-chargeitem",
        "fhirbridge-time-entry",
        "fhirbridge-tcm-contact",
        "us-core-questionnaireresponse",
        "us-core-observation-screening-assessment",
        "sdohcc-observation-screening-response",
        "sdohcc-condition",
        "sdohcc-goal",
        "us-core-careteam",
        # RPM device readings (mappings/readings.yaml)
        "us-core-vital-signs",
        "us-core-blood-pressure",
        "us-core-body-weight",
        "us-core-heart-rate",
        "us-core-pulse-oximetry",
        "us-core-observation-lab",
    }


def test_profiles_are_found_by_the_resource_type_they_constrain() -> None:
    profiles = load_profiles(DEFAULT_PROFILES_DIR)

    assert {p.id for p in profiles.for_type("Task")} == {
        "sdohcc-task-referral",
        "fhirbridge-care-task",
    }


def test_must_support_entries_are_listed_with_their_alternatives() -> None:
    encounter = load_profiles(DEFAULT_PROFILES_DIR).by_id("us-core-encounter")

    assert ["reasonCode", "reasonReference"] in encounter.must_support_paths()
    assert ["location.location", "serviceProvider"] in encounter.must_support_paths()


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("unknown-element.yaml", "unknown element CarePlan.categry"),
        ("unknown-rule-kind.yaml", "'cardinality'"),
        ("missing-key.yaml", "rules[0].values: Field required"),
        ("duplicate-rule-id.yaml", "rule id 'status-required' is already used"),
        ("duplicate-key.yaml", "key 'path' appears twice"),
        ("wrong-element-type.yaml", "CarePlan.status is code, but the rule needs Reference"),
        ("id-mismatch.yaml", "must equal the file name 'id-mismatch'"),
        ("not-yaml.yaml", "not valid YAML"),
        ("unknown-resource-type.yaml", "'CarePlot' is not an R4B resource type"),
        ("unknown-target-type.yaml", "'Patiant' is not an R4B resource type"),
        ("bad-path-syntax.yaml", "invalid element path"),
        ("fixed-without-expectation.yaml", "exactly one of 'value' or 'coding'"),
    ],
)
def test_a_broken_file_fails_naming_the_file_the_line_and_the_reason(
    name: str, reason: str
) -> None:
    file = BAD / name

    with pytest.raises(ProfileFileError) as raised:
        load_profile_file(file)

    error = raised.value
    assert error.file == file
    assert error.line == marked_line(file)
    assert reason in error.reason
    assert str(error).startswith(f"{file}:{error.line}: ")


def test_loading_a_folder_stops_at_the_first_broken_file() -> None:
    with pytest.raises(ProfileFileError) as raised:
        load_profiles(BAD)

    assert raised.value.file == sorted(BAD.glob("*.yaml"))[0]


def test_a_folder_without_profile_files_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ProfileFileError, match="no profile files"):
        load_profiles(tmp_path)


def test_an_empty_file_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")

    with pytest.raises(ProfileFileError, match="empty"):
        load_profile_file(empty)
