"""Rule years over time: a year without a file is named with the command that starts it, the
newest earlier year stands in where a hint needs some rules, and `fhirbridge billing rules
new-year` starts a year from the latest file with everything to verify."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from fhirbridge.billing import (
    DEFAULT_RULES_DIR,
    RuleFileError,
    RuleYearMissing,
    latest_rule_year,
    load_rule_year,
)
from fhirbridge.billing.rules import TimedCode
from fhirbridge.cli import app

runner = CliRunner()


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    """A copy of the shipped rule files (CY2025 and CY2026)."""
    folder = tmp_path / "billing"
    folder.mkdir()
    for year in (2025, 2026):
        shutil.copy(DEFAULT_RULES_DIR / f"cy{year}.yaml", folder)
    return folder


def test_a_missing_year_names_its_file_and_the_command_that_starts_it(rules_dir: Path) -> None:
    with pytest.raises(RuleYearMissing) as caught:
        load_rule_year(2027, rules_dir=rules_dir)

    assert (caught.value.year, caught.value.path) == (2027, rules_dir / "cy2027.yaml")
    assert "cy2027.yaml" in caught.value.reason
    assert "fhirbridge billing rules new-year 2027" in caught.value.reason


def test_a_missing_year_is_still_a_rule_file_error(rules_dir: Path) -> None:
    with pytest.raises(RuleFileError):
        load_rule_year(2024, rules_dir=rules_dir)


def test_latest_rule_year_of_a_year_without_a_file_is_the_newest_year_before_it(
    rules_dir: Path,
) -> None:
    assert latest_rule_year(2027, rules_dir=rules_dir).rule_year == 2026
    assert latest_rule_year(2031, rules_dir=rules_dir).rule_year == 2026


def test_latest_rule_year_of_a_year_with_a_file_is_that_year(rules_dir: Path) -> None:
    assert latest_rule_year(2025, rules_dir=rules_dir).rule_year == 2025


def test_latest_rule_year_before_every_file_is_missing(rules_dir: Path) -> None:
    with pytest.raises(RuleYearMissing) as caught:
        latest_rule_year(2024, rules_dir=rules_dir)

    assert caught.value.path == rules_dir / "cy2024.yaml"


def test_latest_rule_year_reads_the_shipped_files_by_default() -> None:
    assert latest_rule_year(2026).rule_year == 2026


# -- fhirbridge billing rules new-year -----------------------------------------------------


def _new_year(year: int, rules_dir: Path) -> tuple[int, str]:
    result = runner.invoke(
        app, ["billing", "rules", "new-year", str(year), "--rules-dir", str(rules_dir)]
    )
    return result.exit_code, result.output


def test_new_year_writes_a_file_that_loads_as_that_year(rules_dir: Path) -> None:
    code, _ = _new_year(2027, rules_dir)

    assert code == 0
    rules = load_rule_year(2027, rules_dir=rules_dir)
    assert rules.rule_year == 2027
    assert rules.title.startswith("CY2027 ")


def _facts(rule: BaseModel) -> dict[str, object]:
    """A rule entry without its verification flag and note, add-on included."""
    return rule.model_dump(exclude={"verify": True, "note": True, "add_on": {"verify", "note"}})


def test_new_year_starts_from_the_latest_year_keeping_its_codes_in_order(
    rules_dir: Path,
) -> None:
    _new_year(2027, rules_dir)

    started, latest = (load_rule_year(y, rules_dir=rules_dir) for y in (2027, 2026))
    assert list(started.codes) == list(latest.codes)
    assert list(started.exclusions) == list(latest.exclusions)
    assert [_facts(c) for c in started.codes.values()] == [_facts(c) for c in latest.codes.values()]


def test_new_year_flags_every_program_code_add_on_and_exclusion_for_verification(
    rules_dir: Path,
) -> None:
    _new_year(2027, rules_dir)

    rules = load_rule_year(2027, rules_dir=rules_dir)
    entries = [
        *rules.programs.values(),
        *rules.codes.values(),
        *(c.add_on for c in rules.codes.values() if isinstance(c, TimedCode) and c.add_on),
        *rules.exclusions.values(),
    ]
    assert entries
    assert all(entry.verify for entry in entries)
    assert all("carried over unchecked from CY2026" in (entry.note or "") for entry in entries)


def test_new_year_keeps_the_note_an_entry_had(rules_dir: Path) -> None:
    _new_year(2027, rules_dir)

    before = load_rule_year(2026, rules_dir=rules_dir).exclusions["chi-vs-pin"].note
    after = load_rule_year(2027, rules_dir=rules_dir).exclusions["chi-vs-pin"].note
    assert before
    assert after is not None
    assert after.endswith(before)


def test_new_year_refuses_to_overwrite_an_existing_file(rules_dir: Path) -> None:
    before = (rules_dir / "cy2026.yaml").read_text()

    code, output = _new_year(2026, rules_dir)

    assert code == 2
    assert "cy2026.yaml already exists" in output
    assert (rules_dir / "cy2026.yaml").read_text() == before


def test_new_year_without_any_rule_file_is_a_usage_error(tmp_path: Path) -> None:
    code, output = _new_year(2027, tmp_path)

    assert code == 2
    assert "no billing rules" in output
    assert not (tmp_path / "cy2027.yaml").exists()


def test_new_year_for_a_year_the_schema_refuses_leaves_no_file(rules_dir: Path) -> None:
    code, output = _new_year(1999, rules_dir)

    assert code == 2
    assert "rule_year" in output
    assert not (rules_dir / "cy1999.yaml").exists()


# -- fhirbridge billing report ---------------------------------------------------------------


def test_the_report_of_a_month_without_rules_exits_2_naming_the_file_and_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FHIRBRIDGE_DATABASE_URL", f"sqlite:///{tmp_path / 'unused.db'}")

    result = runner.invoke(app, ["billing", "report", "--month", "2027-01"])

    assert result.exit_code == 2
    assert "cy2027.yaml" in result.output
    assert "fhirbridge billing rules new-year 2027" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
