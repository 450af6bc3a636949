"""An element validated once is not validated again, and that changes no finding."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from fhirbridge.conformance import ConformanceChecker, Severity, load_profiles
from tests.conformance.conftest import CONFORMANCE_FIXTURES, read_resource

LoadResource = Callable[[str], dict[str, Any]]

FIXTURES = sorted(path.name for path in CONFORMANCE_FIXTURES.glob("*.json"))


def r4b_findings(checker: ConformanceChecker, resource: dict[str, Any]) -> list[tuple[str, str]]:
    return [(f.element, f.rule) for f in checker.check(resource) if f.rule.startswith("r4b:")]


@pytest.fixture(scope="module")
def seasoned() -> ConformanceChecker:
    """A checker that has already validated every fixture once."""
    checker = ConformanceChecker(load_profiles())
    for name in FIXTURES:
        checker.check(read_resource(name))
    return checker


@pytest.mark.parametrize("name", FIXTURES)
def test_a_resource_has_the_same_findings_after_others_sharing_its_elements(
    seasoned: ConformanceChecker, resource: LoadResource, name: str
) -> None:
    fresh = ConformanceChecker(load_profiles())

    assert seasoned.check(resource(name)) == fresh.check(resource(name))


def test_a_refused_element_is_refused_again_where_it_recurs(resource: LoadResource) -> None:
    checker = ConformanceChecker(load_profiles())

    first = r4b_findings(checker, resource("careplan-malformed-period.json"))
    again = r4b_findings(checker, resource("careplan-malformed-period.json"))

    assert first == again == [("period.start", "r4b:value_error")]


def test_elements_validated_before_do_not_hide_an_error_beside_them(
    resource: LoadResource,
) -> None:
    checker = ConformanceChecker(load_profiles())
    checker.ensure_conformant(resource("encounter-time-entry.json"))
    broken = resource("encounter-time-entry.json")
    broken["length"] = {"value": "twenty-two", "unit": "min"}

    assert ("length.value", "r4b:value_error") in r4b_findings(checker, broken)


def test_an_element_valid_as_one_type_is_still_checked_as_another(
    resource: LoadResource,
) -> None:
    checker = ConformanceChecker(load_profiles())
    encounter = resource("encounter-time-entry.json")
    checker.ensure_conformant(encounter)
    encounter["period"] = dict(encounter["subject"])  # a valid Reference, no Period

    assert ("period.reference", "r4b:extra_forbidden") in r4b_findings(checker, encounter)


def test_a_repeated_valid_element_leaves_the_resource_conformant(
    resource: LoadResource,
) -> None:
    checker = ConformanceChecker(load_profiles())
    for _ in range(3):
        assert [
            f
            for f in checker.check(resource("encounter-time-entry.json"))
            if f.severity is Severity.ERROR
        ] == []


# Elements laid out like one that passed (same keys, same JSON types) are passed on their values
# alone; a value that fails must still be reported by the model, word for word.


def test_a_bad_value_in_an_element_laid_out_like_a_valid_one_is_still_refused(
    resource: LoadResource,
) -> None:
    fresh = ConformanceChecker(load_profiles())
    seasoned = ConformanceChecker(load_profiles())
    seasoned.ensure_conformant(resource("encounter-time-entry.json"))
    broken = resource("encounter-time-entry.json")
    broken["period"] = {"start": "2025-03-05T15:30:00Z", "end": "2025-13-05T15:52:00Z"}

    assert ("period.end", "r4b:value_error") in r4b_findings(seasoned, broken)
    assert seasoned.check(broken) == fresh.check(broken)


def test_other_values_in_an_element_laid_out_like_a_valid_one_pass(
    resource: LoadResource,
) -> None:
    checker = ConformanceChecker(load_profiles())
    checker.ensure_conformant(resource("encounter-time-entry.json"))
    other = resource("encounter-time-entry.json")
    other["identifier"] = [{"system": "https://fhirbridge.example.org/ids", "value": "te-2"}]
    other["period"] = {"start": "2025-04-01T09:00:00Z", "end": "2025-04-01T09:20:00Z"}

    assert r4b_findings(checker, other) == []


def test_a_value_of_another_json_type_is_left_to_the_model(resource: LoadResource) -> None:
    fresh = ConformanceChecker(load_profiles())
    seasoned = ConformanceChecker(load_profiles())
    seasoned.ensure_conformant(resource("encounter-time-entry.json"))
    broken = resource("encounter-time-entry.json")
    broken["identifier"] = [{"system": "https://fhirbridge.example.org/ids", "value": 7}]

    assert r4b_findings(seasoned, broken) == r4b_findings(fresh, broken) != []


def test_a_bad_value_deep_in_an_element_laid_out_like_a_valid_one_is_still_refused(
    resource: LoadResource,
) -> None:
    fresh = ConformanceChecker(load_profiles())
    seasoned = ConformanceChecker(load_profiles())
    seasoned.ensure_conformant(resource("goal-us-core.json"))
    broken = resource("goal-us-core.json")
    broken["target"][0]["dueDate"] = "2025-02-30"

    assert seasoned.check(broken) == fresh.check(broken)
    assert any(rule.startswith("r4b:") for _, rule in r4b_findings(seasoned, broken))
