"""Loading rule-year files: the shipped years, installation overrides, and broken files.

Each broken file marks the line the error must point at with ``# error: <expected text>``.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from fhirbridge.billing import RuleFileError, load_rule_year, load_rules
from fhirbridge.billing.rules import DeclaredCode, TimedCode
from fhirbridge.domain import StaffRole

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "billing"
BROKEN = sorted((FIXTURES / "broken").glob("*.yaml"))
MINIMAL = FIXTURES / "minimal.yaml"
OVERRIDES = FIXTURES / "overrides"
MARKER = re.compile(r"#\s*error:\s*(?P<text>.+?)\s*$")


def _marker(path: Path) -> tuple[int, str]:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        found = MARKER.search(line)
        if found:
            return number, found["text"]
    raise AssertionError(f"{path} has no '# error:' marker")


@pytest.mark.parametrize("year", [2025, 2026])
def test_shipped_rule_year_loads(year: int) -> None:
    rules = load_rule_year(year)

    assert rules.rule_year == year


@pytest.mark.parametrize("year", [2025, 2026])
def test_every_required_code_is_computed_not_just_declared(year: int) -> None:
    computed = {
        "99490", "99491", "99487", "99424", "99426", "99484", "99492", "99493",
        "99457", "G0019", "G0023",
    }  # fmt: skip
    rules = load_rule_year(year)

    timed = {code for code, rule in rules.codes.items() if isinstance(rule, TimedCode)}
    assert computed <= timed


def test_99470_is_a_cy2026_code_only() -> None:
    assert "99470" not in load_rule_year(2025).codes
    assert isinstance(load_rule_year(2026).codes["99470"], TimedCode)


@pytest.mark.parametrize("year", [2025, 2026])
def test_declared_codes_say_why_they_are_not_rolled_up(year: int) -> None:
    declared = [r for r in load_rule_year(year).codes.values() if isinstance(r, DeclaredCode)]

    assert {"99495", "99496", "G0556", "G0557", "G0558", "99454"} <= {
        code for code, r in load_rule_year(year).codes.items() if isinstance(r, DeclaredCode)
    }
    # Codes judged by a program of their own (APCM tiers, TCM...) carry that program's data
    # instead of a reason.
    plain = {"kind", "description", "programs", "not_rolled_up_because", "verify", "note"}
    judging = [name for name in DeclaredCode.model_fields if name not in plain | {"sources"}]
    unexplained = [r for r in declared if all(getattr(r, name) is None for name in judging)]
    assert all((r.not_rolled_up_because or "").strip() for r in unexplained)


@pytest.mark.parametrize("year", [2025, 2026])
def test_reference_verify_items_are_flagged(year: int) -> None:
    rules = load_rule_year(year)
    add_on_99490 = rules.codes["99490"]
    assert isinstance(add_on_99490, TimedCode)
    assert add_on_99490.add_on is not None

    assert add_on_99490.add_on.verify
    assert rules.exclusions["apcm-vs-tcm"].verify
    assert rules.exclusions["chi-vs-pin"].verify


def test_missing_year_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(RuleFileError, match=r"cy2031\.yaml: no billing rules for CY2031"):
        load_rule_year(2031, rules_dir=tmp_path)


def test_year_inside_the_file_must_match_its_name(tmp_path: Path) -> None:
    shutil.copy(MINIMAL, tmp_path / "cy2026.yaml")

    with pytest.raises(RuleFileError, match="says 2025, file name says 2026"):
        load_rule_year(2026, rules_dir=tmp_path)


@pytest.mark.parametrize("path", BROKEN, ids=[p.stem for p in BROKEN])
def test_broken_rule_file_names_file_and_line(path: Path) -> None:
    line, text = _marker(path)

    with pytest.raises(RuleFileError) as caught:
        load_rules(path)

    matching = [p for p in caught.value.problems if text in str(p)]
    assert matching, str(caught.value)
    assert matching[0].file == path
    assert matching[0].line == line


def test_override_changes_one_value_and_keeps_the_rest() -> None:
    base = load_rules(MINIMAL)
    merged = load_rules(MINIMAL, override=OVERRIDES / "raise-99439-cap.yaml")
    before, after = base.codes["99490"], merged.codes["99490"]
    assert isinstance(before, TimedCode)
    assert isinstance(after, TimedCode)
    assert before.add_on is not None
    assert after.add_on is not None

    assert after.add_on.max_units_per_month == 3
    assert after.add_on.increment_minutes == before.add_on.increment_minutes
    assert after.counts_time_of == before.counts_time_of
    assert merged.codes["99487"] == base.codes["99487"]


def test_override_replaces_a_list_whole() -> None:
    merged = load_rule_year(2025, override=OVERRIDES / "physician-time-for-99490.yaml")
    rule = merged.codes["99490"]
    assert isinstance(rule, TimedCode)

    assert rule.counts_time_of == (
        StaffRole.RN,
        StaffRole.LCSW,
        StaffRole.CLINICAL_STAFF,
        StaffRole.PHYSICIAN,
    )


@pytest.mark.parametrize(
    "override", ["bad-role.yaml", "change-year.yaml"], ids=["bad-role", "change-year"]
)
def test_broken_override_names_the_override_file_and_line(override: str) -> None:
    path = OVERRIDES / override
    line, text = _marker(path)

    with pytest.raises(RuleFileError) as caught:
        load_rules(MINIMAL, override=path)

    matching = [p for p in caught.value.problems if text in str(p)]
    assert matching, str(caught.value)
    assert (matching[0].file, matching[0].line) == (path, line)


def test_override_that_lets_two_codes_share_minutes_is_rejected() -> None:
    with pytest.raises(RuleFileError, match="would both count complex-CCM time of rn"):
        load_rules(MINIMAL, override=OVERRIDES / "split-ccm-exclusion.yaml")
