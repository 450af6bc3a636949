"""The official R4 examples go through the checker: no US Core profile claimed, no crash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fhirbridge.conformance import ConformanceChecker, Finding

EXAMPLES = Path(__file__).resolve().parents[2] / "fixtures" / "official-r4"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.json"))


@pytest.mark.parametrize("example", EXAMPLE_FILES, ids=[file.name for file in EXAMPLE_FILES])
def test_an_official_example_is_checked_against_base_r4b_and_unprofiled_rules_only(
    checker: ConformanceChecker, example: Path
) -> None:
    resource = json.loads(example.read_text(encoding="utf-8"))

    findings = checker.check(resource)

    assert all(isinstance(finding, Finding) for finding in findings)
    assert [f for f in findings if f.rule.startswith("r4b:")] == []
    applied = {f.rule.split(":", 1)[0] for f in findings}
    assert not {p for p in applied if p.startswith(("us-core-", "sdohcc-servicerequest"))}
