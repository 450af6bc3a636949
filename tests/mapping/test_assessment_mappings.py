"""Assessment mappings: the golden records (fixtures/assessments) map to their reviewed FHIR
JSON and back, pass the profile rules, and any record we can hold survives domain -> FHIR ->
domain (hypothesis). The QuestionnaireResponse's repeating items use ``transform: record``."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhirbridge.conformance import Severity, check
from fhirbridge.domain import (
    AssessmentAnswer,
    AssessmentResponse,
    AssessmentStatus,
    Code,
    ConcernStatus,
    HealthConcern,
    ScreeningObservation,
    ScreeningStatus,
)
from fhirbridge.mapping.concepts import CONCEPTS
from fhirbridge.mapping.engine import build_entity
from tests.mapping.assessment_records import (
    GOLDEN,
    context,
    golden_path,
    members,
    parsed,
    patients,
    records,
)
from tests.mapping.support import mappings

CASES = [
    pytest.param(concept, record, id=f"{concept}-{record.id}") for concept, record in records()
]


def _owned(concept: str, record: Any) -> dict[str, Any]:
    """The fields the mappings carry (scores and question codes stay local)."""
    [mapping] = mappings().for_concept(concept)
    values = {name: getattr(record, name) for name in mapping.owned_fields}
    if concept == "assessment":
        values["answers"] = [(a.link_id, a.answer) for a in record.answers]
    return values


@pytest.mark.parametrize(("concept", "record"), CASES)
def test_record_maps_to_its_golden_resource(concept: str, record: Any) -> None:
    [mapping] = mappings().for_concept(concept)
    expected = json.loads(golden_path(mapping, record).read_text())

    produced = mapping.to_fhir(record, context())

    assert parsed(mapping.resource, produced) == parsed(mapping.resource, expected)


@pytest.mark.parametrize(("concept", "record"), CASES)
def test_golden_resource_maps_back_to_the_record(concept: str, record: Any) -> None:
    [mapping] = mappings().for_concept(concept)
    golden = json.loads(golden_path(mapping, record).read_text())

    values = mapping.from_fhir(golden, context())

    for name, value in _owned(concept, record).items():
        found = values[name]
        if concept == "assessment" and name == "answers":
            found = [(a.link_id, a.answer) for a in found]
        assert found == value, name


@pytest.mark.parametrize(("concept", "record"), CASES)
def test_golden_resource_meets_its_profiles(concept: str, record: Any) -> None:
    [mapping] = mappings().for_concept(concept)
    golden = json.loads(golden_path(mapping, record).read_text())

    errors = [f for f in check(golden) if f.severity is Severity.ERROR]

    assert errors == []


def test_every_golden_file_belongs_to_a_record() -> None:
    expected = {golden_path(mappings().for_concept(c)[0], r).name for c, r in records()}

    assert {p.name for p in GOLDEN.glob("*.json")} == expected


def test_a_screening_observation_without_subject_breaks_the_profile() -> None:
    [mapping] = mappings().for_concept("screening_observation")
    _, record = next((c, r) for c, r in records() if c == "screening_observation")
    resource = mapping.to_fhir(record, context())
    del resource["subject"]

    rules = {f.rule for f in check(resource) if f.severity is Severity.ERROR}

    assert "us-core-observation-screening-assessment:subject-required" in rules


# -- round trips ----------------------------------------------------------------------------

ids = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=24)
patient_ids = st.sampled_from([p.id for p in patients()])
member_ids = st.none() | st.sampled_from([m.id for m in members()])
times = st.datetimes(datetime(2000, 1, 1), datetime(2040, 1, 1), timezones=st.just(UTC)).map(
    lambda t: t.replace(microsecond=0)
)
texts = st.none() | st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=40
).filter(lambda s: s.strip() == s)


def codes(system: str) -> st.SearchStrategy[Code]:
    return st.builds(
        Code,
        system=st.just(system),
        code=st.text("ABCDEFGHIJLA0123456789-", min_size=1, max_size=12),
        display=texts,
    )


answers = st.lists(
    st.builds(AssessmentAnswer, link_id=ids, answer=codes("loinc")),
    max_size=12,
    unique_by=lambda a: a.link_id,
)
assessments = st.builds(
    AssessmentResponse,
    id=ids,
    patient_id=patient_ids,
    questionnaire=st.sampled_from(["http://loinc.org/q/44249-1", "http://loinc.org/q/96777-8"]),
    authored=times,
    status=st.sampled_from(AssessmentStatus),
    author_id=member_ids,
    answers=answers,
)
observations = st.builds(
    ScreeningObservation,
    id=ids,
    patient_id=patient_ids,
    code=codes("loinc"),
    effective=times,
    status=st.sampled_from(ScreeningStatus),
    assessment_id=st.none() | ids,
    categories=st.lists(
        codes("observation-category") | codes("sdohcc"), max_size=3, unique_by=lambda c: c.code
    ),
    value_code=st.none() | codes("loinc"),
    value_integer=st.none() | st.integers(0, 1000),
    performer_id=member_ids,
)
concerns = st.builds(
    HealthConcern,
    id=ids,
    patient_id=patient_ids,
    code=codes("snomed"),
    clinical_status=st.sampled_from(ConcernStatus),
    categories=st.lists(
        codes("condition-category") | codes("sdohcc"), max_size=3, unique_by=lambda c: c.code
    ),
    recorded=st.none() | st.dates(date(2000, 1, 1), date(2040, 12, 31)),
    recorder_id=member_ids,
    evidence_ids=st.lists(ids, max_size=4, unique=True),
)


def _round_trip(concept: str, record: Any, **local: Any) -> Any:
    """``local``: fields no resource carries, as the stored record has them."""
    [mapping] = mappings().for_concept(concept)
    resource = mapping.to_fhir(record, context())
    values = {**mapping.from_fhir(resource, context()), **local}
    return build_entity(CONCEPTS[concept], values, label=concept)


@settings(max_examples=60, deadline=None)
@given(assessments)
def test_any_assessment_round_trips(record: AssessmentResponse) -> None:
    back = _round_trip("assessment", record)

    # Scores, totals and question codes stay local (the QuestionnaireResponse
    # says linkId and answer); everything the resource carries comes back.
    expected = dataclasses.replace(
        record,
        answers=[AssessmentAnswer(a.link_id, a.answer) for a in record.answers],
    )
    assert back == expected


@settings(max_examples=60, deadline=None)
@given(observations)
def test_any_screening_observation_round_trips(record: ScreeningObservation) -> None:
    assert _round_trip("screening_observation", record) == record


@settings(max_examples=60, deadline=None)
@given(concerns)
def test_any_health_concern_round_trips(record: HealthConcern) -> None:
    assert _round_trip("health_concern", record) == record
