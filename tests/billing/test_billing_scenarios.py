"""Every scenario under fixtures/billing/cyYYYY/ rolled up against that year's rule file."""

from __future__ import annotations

from pathlib import Path

import pytest

from fhirbridge.billing import load_rule_year, roll_up
from tests.billing.billing_scenarios import PATIENT, Scenario, load_scenarios

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "billing"
SCENARIOS = load_scenarios(FIXTURES)


def test_every_rule_year_has_at_least_forty_scenarios() -> None:
    per_year: dict[int, int] = {}
    for scenario in SCENARIOS:
        per_year[scenario.rule_year] = per_year.get(scenario.rule_year, 0) + 1
    assert per_year.keys() == {2025, 2026}
    assert min(per_year.values()) >= 40


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_scenario(scenario: Scenario) -> None:
    result = roll_up(
        rules=load_rule_year(scenario.rule_year),
        month=scenario.month,
        patient_id=PATIENT,
        enrollments=scenario.enrollments,
        consents=scenario.consents,
        entries=scenario.entries,
        tz=scenario.tz,
        billed_elsewhere=scenario.billed_elsewhere,
    )
    expected = scenario.expected

    assert {e.code: e.units for e in result.earned} == expected.earned
    assert {n.code: n.reason for n in result.not_earned} == expected.not_earned
    assert {s.entry_id: s.reason for s in result.set_aside} == expected.set_aside
    if expected.entry_ids is not None:
        got = {e.code: list(e.entry_ids) for e in result.earned if e.code in expected.entry_ids}
        assert got == expected.entry_ids
    if expected.notes is not None:
        assert {e.code: e.note for e in result.earned if e.note} == expected.notes
