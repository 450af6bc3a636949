"""Enrollment prerequisites per program are data (mappings/programs.yaml), loaded and checked
with the other mapping files: a bad file fails naming its file and line."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
import yaml

from fhirbridge.caseload import load_caseload
from fhirbridge.config import PROJECT_ROOT
from fhirbridge.datafiles import DataFileError
from fhirbridge.domain import Enrollment, EnrollmentStatus, Program
from fhirbridge.domain.enrollment import EnrollmentPrerequisites
from fhirbridge.mapping.loader import load_mappings
from fhirbridge.mapping.programs import load_programs

MAPPINGS = PROJECT_ROOT / "mappings"
SHIPPED = load_programs(MAPPINGS)


def _enrollment(
    program: Program,
    *,
    status: EnrollmentStatus = EnrollmentStatus.ACTIVE,
    conditions: list[str] | None = None,
    billing_practitioner_id: str | None = None,
) -> Enrollment:
    return Enrollment(
        id="enr-1",
        patient_id="pat-1",
        program=program,
        status=status,
        start=date(2026, 10, 1),
        conditions=conditions or [],
        billing_practitioner_id=billing_practitioner_id,
    )


def _programs_with(tmp_path: Path, old: str, new: str) -> Path:
    root = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, root)
    path = root / "programs.yaml"
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))
    return root


def _line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_the_mappings_carry_the_shipped_prerequisites() -> None:
    assert load_mappings(MAPPINGS).programs == SHIPPED


def test_every_program_has_an_entry() -> None:
    assert set(SHIPPED.programs) == set(Program)


def test_ccm_with_one_condition_and_no_billing_practitioner_falls_short_twice() -> None:
    enrollment = _enrollment(Program.CCM, conditions=["Condition/c-1"])
    assert SHIPPED.shortfalls(enrollment) == [
        ("conditions", "CCM needs at least 2 chronic conditions, got 1"),
        ("billing_practitioner_id", "required for CCM"),
    ]


def test_pcm_needs_one_condition() -> None:
    enrollment = _enrollment(Program.PCM, billing_practitioner_id="doc-1")
    assert SHIPPED.shortfalls(enrollment) == [
        ("conditions", "PCM needs at least 1 high-risk condition, got 0")
    ]


def test_cocm_needs_its_behavioural_health_care_manager() -> None:
    enrollment = _enrollment(Program.COCM, billing_practitioner_id="doc-1")
    assert SHIPPED.shortfalls(enrollment) == [("care_manager_id", "required for CoCM")]


@pytest.mark.parametrize("status", [EnrollmentStatus.PLANNED, EnrollmentStatus.WAITLIST])
def test_a_planned_or_waitlisted_enrollment_may_lack_them(status: EnrollmentStatus) -> None:
    assert SHIPPED.shortfalls(_enrollment(Program.CCM, status=status)) == []


def test_the_demo_caseload_meets_them() -> None:
    caseload = load_caseload(PROJECT_ROOT / "fixtures" / "demo" / "caseload.yaml")
    assert [SHIPPED.shortfalls(e) for e in caseload.enrollments] == [[]] * 3


def test_the_api_caseload_meets_them() -> None:
    data = yaml.safe_load((PROJECT_ROOT / "fixtures" / "api" / "caseload.yaml").read_text())
    enrollments = [
        _enrollment(
            Program(e["program"]),
            status=EnrollmentStatus(e["status"]),
            conditions=e.get("conditions", []),
            billing_practitioner_id=e.get("billing_practitioner_id"),
        )
        for e in data["enrollments"]
    ]
    assert [SHIPPED.shortfalls(e) for e in enrollments] == [[]] * len(enrollments)


def test_a_changed_file_changes_the_rule(tmp_path: Path) -> None:
    root = _programs_with(
        tmp_path,
        "conditions: {at_least: 2, named: chronic conditions}",
        "conditions: {at_least: 3, named: chronic conditions}",
    )
    enrollment = _enrollment(
        Program.CCM, conditions=["Condition/c-1", "Condition/c-2"], billing_practitioner_id="d"
    )
    changed: EnrollmentPrerequisites = load_programs(root)
    assert SHIPPED.shortfalls(enrollment) == []
    assert changed.shortfalls(enrollment) == [
        ("conditions", "CCM needs at least 3 chronic conditions, got 2")
    ]


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        pytest.param("  BHI:\n", "  BHX:\n", "'BHX' is not a program", id="unknown-program"),
        pytest.param(
            "required: [billing_practitioner_id, care_manager_id]",
            "required: [billing_practitioner_id, consent_id]",
            "cannot require 'consent_id'",
            id="unknown-field",
        ),
        pytest.param(
            "required: [billing_practitioner_id, care_manager_id]",
            "required: [billing_practitioner_id, billing_practitioner_id]",
            "'billing_practitioner_id' is required twice",
            id="required-twice",
        ),
        pytest.param(
            "conditions: {at_least: 1, named: high-risk condition}",
            "conditions: {at_least: 0, named: high-risk condition}",
            "greater than or equal to 1",
            id="no-conditions",
        ),
        pytest.param(
            "checked_statuses: [active]",
            "checked_statuses: [activ]",
            "checked_statuses.0",
            id="unknown-status",
        ),
        pytest.param(
            "    required: [billing_practitioner_id]\n  CoCM:",
            "    needs: [billing_practitioner_id]\n  CoCM:",
            "Extra inputs are not permitted",
            id="unknown-key",
        ),
    ],
)
def test_a_bad_programs_file_fails_naming_file_and_line(
    tmp_path: Path, old: str, new: str, reason: str
) -> None:
    root = _programs_with(tmp_path, old, new)
    path = root / "programs.yaml"

    with pytest.raises(DataFileError) as raised:
        load_mappings(root)

    assert raised.value.path == path
    assert raised.value.line == _line_of(path, new.splitlines()[0].strip())
    assert reason in raised.value.reason


def test_a_program_without_an_entry_fails_naming_the_programs_key(tmp_path: Path) -> None:
    root = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, root)
    path = root / "programs.yaml"
    text = path.read_text()
    path.write_text(text[: text.index("  TCM:")] + text[text.index("  APCM:") :])

    with pytest.raises(DataFileError) as raised:
        load_mappings(root)

    assert raised.value.line == _line_of(path, "programs:")
    assert "no entry for program(s) TCM" in raised.value.reason


def test_a_missing_programs_file_fails(tmp_path: Path) -> None:
    root = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, root)
    (root / "programs.yaml").unlink()

    with pytest.raises(DataFileError, match=r"programs\.yaml: cannot read"):
        load_mappings(root)
