"""Instrument files are checked at start-up: a wrong one names its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from fhirbridge.config import PROJECT_ROOT
from fhirbridge.datafiles import DataFileError
from fhirbridge.mapping.instruments import load_instruments
from fhirbridge.mapping.loader import load_mappings

GOOD = """\
id: mini
title: Mini
questionnaire: http://example.org/q/mini
panel: {system: loinc, code: 1-1}
total: {system: loinc, code: 1-2}
answer_sets:
  yn:
    - {code: LA32-8, display: "No", score: 0}
    - {code: LA33-6, display: "Yes", score: 1}
items:
  - {link_id: a, code: 2-1, text: A, answers: yn}
  - {link_id: b, code: 2-2, text: B, answers: yn}
bands:
  - {low: 0, high: 0, label: none}
  - {low: 1, high: 2, label: some}
follow_ups:
  - id: any
    description: any yes
    when: {of: total, op: ">=", value: 1}
    task: {kind: follow-up, priority: urgent, due_days: 0}
"""


def _write(tmp_path: Path, text: str, name: str = "mini") -> Path:
    folder = tmp_path / "instruments"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


def _error(tmp_path: Path, text: str) -> DataFileError:
    path = _write(tmp_path, text)
    with pytest.raises(DataFileError) as caught:
        load_instruments(tmp_path)
    assert caught.value.path == path
    return caught.value


def test_a_good_file_loads(tmp_path: Path) -> None:
    _write(tmp_path, GOOD)

    mini = load_instruments(tmp_path).get("mini")

    assert mini is not None
    assert (mini.max_total, [b.label for b in mini.bands]) == (2, ["none", "some"])


def test_the_shipped_instruments_load_with_the_mappings() -> None:
    loaded = load_mappings(PROJECT_ROOT / "mappings").instruments

    assert loaded.ids == ("ahc-hrsn", "gad-7", "phq-2", "phq-9")


def test_a_gap_between_bands_names_the_band_line(tmp_path: Path) -> None:
    error = _error(
        tmp_path, GOOD.replace("{low: 1, high: 2, label: some}", "{low: 2, high: 2, label: some}")
    )

    assert (error.line, error.reason) == (15, "band 'some' starts at 2: a gap (expected 1)")


def test_overlapping_bands_are_refused(tmp_path: Path) -> None:
    error = _error(
        tmp_path, GOOD.replace("{low: 1, high: 2, label: some}", "{low: 0, high: 2, label: some}")
    )

    assert error.line == 15
    assert "an overlap" in error.reason


def test_bands_that_stop_short_of_the_maximum_are_refused(tmp_path: Path) -> None:
    error = _error(
        tmp_path, GOOD.replace("{low: 1, high: 2, label: some}", "{low: 1, high: 1, label: some}")
    )

    assert (error.line, error.reason) == (15, "bands end at 1, the maximum total is 2")


def test_an_answer_without_a_score_in_a_scored_instrument_is_refused(tmp_path: Path) -> None:
    error = _error(tmp_path, GOOD.replace('display: "Yes", score: 1', 'display: "Yes"'))

    assert error.line == 9
    assert "answer 'LA33-6' needs a score" in error.reason


def test_a_repeated_link_id_is_refused(tmp_path: Path) -> None:
    error = _error(tmp_path, GOOD.replace("link_id: b,", "link_id: a,"))

    assert (error.line, error.reason) == (12, "link_id 'a' appears twice")


def test_a_repeated_answer_code_is_refused(tmp_path: Path) -> None:
    error = _error(tmp_path, GOOD.replace("code: LA33-6", "code: LA32-8"))

    assert error.reason == "answer code 'LA32-8' appears twice"
    assert error.line == 9


def test_a_rule_on_an_unknown_item_names_the_rule_line(tmp_path: Path) -> None:
    error = _error(tmp_path, GOOD.replace('{of: total, op: ">=", value: 1}', "{of: item, item: z}"))

    assert (error.line, error.reason) == (19, "no item 'z'")


def test_an_unknown_task_kind_is_refused(tmp_path: Path) -> None:
    error = _error(tmp_path, GOOD.replace("kind: follow-up", "kind: pray"))

    assert (error.line, error.reason) == (20, "'pray' is not a care task kind")


def test_a_rule_doing_two_things_is_refused(tmp_path: Path) -> None:
    error = _error(tmp_path, GOOD + "    propose_instrument: mini\n")

    assert error.line == 17
    assert "does one thing" in error.reason


def test_a_proposed_instrument_must_exist(tmp_path: Path) -> None:
    text = GOOD.replace(
        "    task: {kind: follow-up, priority: urgent, due_days: 0}\n",
        "    propose_instrument: phq-9\n",
    )
    error = _error(tmp_path, text)

    assert (error.line, error.reason) == (20, "no instrument 'phq-9'")


def test_an_unknown_key_is_refused_with_its_line(tmp_path: Path) -> None:
    error = _error(tmp_path, GOOD.replace("title: Mini", "title: Mini\nauthor: me"))

    assert error.line == 3


def test_the_id_must_be_the_file_name(tmp_path: Path) -> None:
    error = _error(tmp_path, GOOD.replace("id: mini", "id: maxi"))

    assert (error.line, error.reason) == (1, "id 'maxi' is not the file name 'mini'")


def test_an_unknown_code_system_is_refused_with_the_mappings(tmp_path: Path) -> None:
    _write(tmp_path, GOOD.replace("panel: {system: loinc", "panel: {system: lonic"))

    with pytest.raises(DataFileError) as caught:
        load_instruments(tmp_path, systems={"loinc"})

    assert (caught.value.line, caught.value.reason) == (4, "unknown code system 'lonic'")
