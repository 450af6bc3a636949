"""Every finding and every refusal, word for word, over outbound and broken resources.

The resources: every golden outbound resource the mappings produce (``fixtures/**/golden``),
the conformance fixtures, deliberately broken resources (``fixtures/conformance/broken/``:
golden resources with one kind of damage each) and the official R4 examples. The expected
findings and ``ensure_conformant`` messages are in ``fixtures/conformance/expected-findings.json``;
speeding the checker up must not change a single one. After an intended change of rules or
messages, regenerate the file and review its diff::

    .venv/bin/python -m tests.conformance.test_findings_snapshot
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fhirbridge.conformance import ConformanceChecker, NonConformantResource, load_profiles

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
EXPECTED = FIXTURES / "conformance" / "expected-findings.json"


def resource_files() -> list[Path]:
    patterns = [
        "golden/**/*.json",
        "*/golden/**/*.json",
        "conformance/*.json",
        "conformance/broken/*.json",
        "official-r4/*.json",
    ]
    found = {file for pattern in patterns for file in FIXTURES.glob(pattern)}
    return sorted(found - {EXPECTED})


def outcome(checker: ConformanceChecker, file: Path) -> dict[str, Any]:
    resource = json.loads(file.read_text(encoding="utf-8"))
    findings = [
        [f.resource, f.element, f.rule, f.severity.value, f.message]
        for f in checker.check(resource)
    ]
    try:
        checker.ensure_conformant(resource)
    except NonConformantResource as refused:
        return {"findings": findings, "refused": str(refused)}
    return {"findings": findings, "refused": None}


def name_of(file: Path) -> str:
    return file.relative_to(FIXTURES).as_posix()


FILES = resource_files()


@pytest.fixture(scope="module")
def expected() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXPECTED.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def shared() -> ConformanceChecker:
    """One checker for all files, as a worker has: what it remembers must change nothing."""
    return ConformanceChecker(load_profiles())


def test_every_resource_file_has_an_expected_outcome(expected: dict[str, Any]) -> None:
    assert sorted(expected) == [name_of(file) for file in FILES]


def test_most_broken_resources_are_refused(expected: dict[str, Any]) -> None:
    # A few damaged ones stay sendable on purpose: a profile no longer applies, or only
    # must-support warnings are left.
    broken = [name for name in expected if name.startswith("conformance/broken/")]

    assert len([name for name in broken if expected[name]["refused"]]) >= 40


@pytest.mark.parametrize("file", FILES, ids=name_of)
def test_findings_and_refusal_are_unchanged(
    shared: ConformanceChecker, expected: dict[str, Any], file: Path
) -> None:
    assert outcome(shared, file) == expected[name_of(file)]


def main() -> None:
    checker = ConformanceChecker(load_profiles())
    snapshot = {name_of(file): outcome(checker, file) for file in FILES}
    text = json.dumps(snapshot, indent=1, ensure_ascii=False, sort_keys=True)
    EXPECTED.write_text(text + "\n", encoding="utf-8")
    print(f"{EXPECTED}: {len(snapshot)} resources")


if __name__ == "__main__":
    main()
