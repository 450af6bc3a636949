"""Device readings <-> FHIR Observations (mappings/readings.yaml): fixtures/observations.

inbound/*.json map to the readings expected.yaml lists; each reading maps to the reviewed
Observation under golden/ (US Core vital signs / lab, valid R4B, no profile errors), and back.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from fhir.resources.R4B import get_fhir_model_class
from hypothesis import given, settings
from hypothesis import strategies as st

from fhirbridge.config import PROJECT_ROOT
from fhirbridge.conformance import Severity, check
from fhirbridge.domain import DeviceReading
from fhirbridge.domain.observation import reading_id
from fhirbridge.mapping.readings import (
    ReadingRefused,
    ReadingRules,
    device_reading,
    load_reading_rules,
    read_observation,
    reading_to_observation,
    source_of,
)

HERE = PROJECT_ROOT / "fixtures" / "observations"
EXPECTED = yaml.safe_load((HERE / "expected.yaml").read_text())
ZONE = ZoneInfo(EXPECTED["practice_timezone"])
BASE = EXPECTED["server_base"]
PATIENTS: dict[str, str] = EXPECTED["patients"]
NAMES = sorted(EXPECTED["readings"])
RULES = load_reading_rules(PROJECT_ROOT / "mappings")


@pytest.fixture(scope="module")
def rules() -> ReadingRules:
    return load_reading_rules(PROJECT_ROOT / "mappings")


def _inbound(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((HERE / "inbound" / f"{name}.json").read_text())
    return data


def _golden_path(name: str) -> Path:
    return HERE / "golden" / f"{name}.json"


def _expected(name: str) -> DeviceReading:
    e = EXPECTED["readings"][name]
    return DeviceReading(
        id=reading_id(e["source_system"], e["source_value"]),
        patient_id="p-example",
        code=e["code"],
        effective_at=datetime.fromisoformat(e["effective_at"]),
        day=date.fromisoformat(e["day"]),
        value=None if e["value"] is None else Decimal(e["value"]),
        second_value=None if e["second_value"] is None else Decimal(e["second_value"]),
        unit=e["unit"],
        device=e["device"],
        manual=e["manual"],
        source_system=e["source_system"],
        source_value=e["source_value"],
    )


def _map_in(resource: dict[str, Any], rules: ReadingRules, base: str | None = BASE) -> Any:
    read = read_observation(resource, rules, ZONE)
    return device_reading(
        read, patient_id=PATIENTS[read.subject], source=source_of(read, server_base=base)
    )


def _parsed(data: dict[str, Any]) -> dict[str, Any]:
    model = get_fhir_model_class("Observation").model_validate(data)
    result: dict[str, Any] = json.loads(model.model_dump_json(exclude_none=True))
    return result


@pytest.mark.parametrize("name", NAMES)
def test_observation_maps_to_the_expected_reading(name: str, rules: ReadingRules) -> None:
    assert _map_in(_inbound(name), rules) == _expected(name)


@pytest.mark.parametrize("name", NAMES)
def test_reading_maps_to_its_golden_observation(name: str, rules: ReadingRules) -> None:
    produced = reading_to_observation(_expected(name), rules, patient_reference="Patient/example")

    assert _parsed(produced) == _parsed(json.loads(_golden_path(name).read_text()))


@pytest.mark.parametrize("name", NAMES)
def test_golden_observation_maps_back_to_the_reading(name: str, rules: ReadingRules) -> None:
    golden = json.loads(_golden_path(name).read_text())

    assert _map_in(golden, rules, base=None) == _expected(name)


@pytest.mark.parametrize("name", NAMES)
def test_golden_observation_passes_r4b_validation_and_profile_rules(name: str) -> None:
    golden = json.loads(_golden_path(name).read_text())

    errors = [f for f in check(golden) if f.severity is Severity.ERROR]

    assert errors == []
    assert golden["meta"]["profile"]


def test_every_golden_file_belongs_to_an_expected_reading() -> None:
    assert {p.stem for p in (HERE / "golden").glob("*.json")} == set(NAMES)


def test_a_pulse_oximetry_reading_is_written_with_both_us_core_codes(rules: ReadingRules) -> None:
    produced = reading_to_observation(
        _expected("r4-spo2"), rules, patient_reference="Patient/example"
    )

    codes = {c["code"] for c in produced["code"]["coding"]}
    assert {"59408-5", "2708-6"} <= codes


def test_a_manual_reading_is_tagged_so_it_stays_manual(rules: ReadingRules) -> None:
    produced = reading_to_observation(
        _expected("hub-glucose-manual"), rules, patient_reference="Patient/example"
    )

    assert produced["meta"]["tag"] == [dict(rules.manual_tag)]
    assert "device" not in produced


def test_a_tagged_observation_with_a_device_is_still_manual(rules: ReadingRules) -> None:
    resource = _inbound("hub-blood-pressure")
    resource["meta"] = {"tag": [dict(rules.manual_tag)]}

    assert _map_in(resource, rules).manual is True


def test_a_contained_device_is_a_device_without_a_name(rules: ReadingRules) -> None:
    resource = _inbound("hub-blood-pressure")
    resource["device"] = {"reference": "#cuff"}

    reading = _map_in(resource, rules)

    assert (reading.device, reading.manual) == (None, False)


def test_the_day_is_taken_in_the_practice_time_zone(rules: ReadingRules) -> None:
    resource = _inbound("hub-blood-pressure")  # 03:30 UTC on March 2nd

    utc_day = read_observation(resource, rules, UTC).day
    new_york_day = read_observation(resource, rules, ZONE).day

    assert (utc_day, new_york_day) == (date(2026, 3, 2), date(2026, 3, 1))


def test_an_effective_period_counts_from_its_start(rules: ReadingRules) -> None:
    resource = _inbound("hub-blood-pressure")
    del resource["effectiveDateTime"]
    resource["effectivePeriod"] = {"start": "2026-03-05T12:00:00Z", "end": "2026-03-05T12:01:00Z"}

    assert _map_in(resource, rules).day == date(2026, 3, 5)


REFUSALS = [
    ("unknown code", ["code", "coding", 0, "code"], "1234-5", "code"),
    ("entered in error", ["status"], "entered-in-error", "status"),
    ("no subject", ["subject"], None, "subject"),
    ("a group subject", ["subject"], {"reference": "Group/1"}, "subject"),
    ("no time", ["effectiveDateTime"], None, "effectiveDateTime"),
    ("a month only", ["effectiveDateTime"], "2026-03", "effectiveDateTime"),
    ("a wrong unit", ["component", 0, "valueQuantity", "code"], "kPa", "component[0]"),
    ("text for a value", ["component", 1, "valueQuantity", "value"], "high", "component[1]"),
    ("a huge value", ["component", 1, "valueQuantity", "value"], 1e15, "component[1]"),
]


@pytest.mark.parametrize(
    ("change", "where", "value", "field"), REFUSALS, ids=[r[0] for r in REFUSALS]
)
def test_an_observation_that_is_no_reading_is_refused_naming_the_element(
    change: str, where: list[Any], value: Any, field: str, rules: ReadingRules
) -> None:
    resource = _inbound("hub-blood-pressure")
    parent: Any = resource
    for key in where[:-1]:
        parent = parent[key]
    if value is None:
        del parent[where[-1]]
    else:
        parent[where[-1]] = value

    with pytest.raises(ReadingRefused) as refused:
        _map_in(resource, rules)

    assert refused.value.field.startswith(field)


def test_an_observation_without_identifier_or_server_is_refused_naming_identifier(
    rules: ReadingRules,
) -> None:
    resource = _inbound("r4-heart-rate")  # has an id, no identifier

    with pytest.raises(ReadingRefused) as refused:
        _map_in(resource, rules, base=None)

    assert refused.value.field == "identifier"


def test_more_decimal_places_than_storage_keeps_are_rounded(rules: ReadingRules) -> None:
    resource = _inbound("r4-body-weight")
    resource["valueQuantity"]["value"] = 81.12345678

    assert _map_in(resource, rules).value == Decimal("81.123457")


def test_a_broken_readings_file_names_file_and_line(tmp_path: Path) -> None:
    text = (PROJECT_ROOT / "mappings" / "readings.yaml").read_text()
    (tmp_path / "readings.yaml").write_text(text.replace("category: laboratory", "category: labs"))

    with pytest.raises(ValueError, match=r"readings\.yaml:\d+: category 'labs'"):
        load_reading_rules(tmp_path)


# -- hypothesis: any reading survives reading -> Observation -> reading --------------------

_values = st.decimals(min_value=Decimal("0"), max_value=Decimal("99999"), places=2).map(
    lambda d: d.normalize() if d == d.to_integral_value() else d
)
_instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2040, 12, 31), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0))
_offsets = st.integers(min_value=-12 * 60, max_value=14 * 60).map(
    lambda m: timezone(timedelta(minutes=m))
)
_text = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.:/", min_size=1, max_size=40)
_fhir_ids = st.from_regex(r"[A-Za-z0-9\-.]{1,64}", fullmatch=True)


@st.composite
def readings(draw: st.DrawFn) -> DeviceReading:
    rules = RULES
    kind = draw(st.sampled_from(rules.kinds))
    at = draw(_instants).astimezone(draw(_offsets))
    value = draw(st.none() | _values)
    second = draw(st.none() | _values) if kind.components and value is not None else None
    manual = draw(st.booleans())
    device = draw(st.none() | _fhir_ids.map(lambda t: f"Device/{t}"))
    system = "https://" + draw(_text)
    source_value = draw(_text)
    return DeviceReading(
        id=reading_id(system, source_value),
        patient_id="p-example",
        code=kind.code,
        effective_at=at,
        day=at.astimezone(ZONE).date(),
        value=value,
        second_value=second,
        unit=None if value is None else draw(st.sampled_from(kind.units)),
        device=device,
        manual=manual,
        source_system=system,
        source_value=source_value,
    )


@settings(max_examples=200, deadline=None)
@given(reading=readings())
def test_any_reading_survives_the_round_trip_through_fhir(reading: DeviceReading) -> None:
    rules = RULES
    resource = reading_to_observation(reading, rules, patient_reference="Patient/example")
    _parsed(copy.deepcopy(resource))  # valid R4B

    assert _map_in(resource, rules, base=None) == reading
