"""A goal addressing our own health concern (the Gravity chain Condition -> Goal): the concern
is referenced by its Condition's server id beside the EHR's Conditions in Goal.addresses
(fixtures/golden/goal_concerns), reads back into ``concern_ids`` while the EHR's stay in
``addresses``, survives rewriting over the server's copy, and waits when not yet pushed."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from hypothesis import given, settings
from hypothesis import strategies as st

from fhirbridge.config import PROJECT_ROOT
from fhirbridge.conformance import Severity, check
from fhirbridge.domain import Code, Goal, GoalLifecycle
from fhirbridge.mapping.context import MappingContext, MissingReference
from fhirbridge.mapping.references import StaticReferences
from tests.mapping import assessment_records
from tests.mapping.support import IDENTIFIER_SYSTEM, map_back, mappings

GOLDEN = PROJECT_ROOT / "fixtures" / "golden" / "goal_concerns"
MAPPING = mappings().get("goal", "Goal")
CONCERN_SERVER_IDS = {"hc-food-1": "cond-81", "hc-housing-1": "cond-82"}

RECORDS = [
    # What a positive food screening proposes: the goal addresses the concern it found.
    Goal(
        id="g-food-1",
        patient_id="pat-a1",
        lifecycle_status=GoalLifecycle.PROPOSED,
        description="Food security",
        description_code=Code("snomed", "1078229009", "Food security"),
        start=date(2026, 10, 15),
        expressed_by="cm-a1",
        concern_ids=["hc-food-1"],
    ),
    # Ours and the EHR's side by side.
    Goal(
        id="g-mixed-1",
        patient_id="pat-a1",
        lifecycle_status=GoalLifecycle.ACTIVE,
        description="Stable housing and blood pressure under control",
        start=date(2026, 10, 20),
        addresses=["Condition/ehr-c-9001"],
        concern_ids=["hc-food-1", "hc-housing-1"],
    ),
]


def context(server_ids: dict[str, str] | None = None) -> MappingContext:
    refs = StaticReferences.of(
        assessment_records.patients(),
        assessment_records.members(),
        primary=mappings().plan.primary_resources,
    )
    known = CONCERN_SERVER_IDS if server_ids is None else server_ids
    refs = dataclasses.replace(refs, server_ids={"health_concern": known})
    return MappingContext(IDENTIFIER_SYSTEM, refs, mappings().terminology)


def golden(record: Goal) -> Path:
    return GOLDEN / f"Goal-goal-{record.id}.json"


def parsed(data: dict[str, Any]) -> dict[str, Any]:
    model = get_fhir_model_class("Goal").model_validate(data)
    result: dict[str, Any] = json.loads(model.model_dump_json(exclude_none=True))
    return result


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.id)
def test_goal_maps_to_its_golden_resource(record: Goal) -> None:
    produced = MAPPING.to_fhir(record, context())

    assert parsed(produced) == parsed(json.loads(golden(record).read_text()))


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.id)
def test_golden_resource_maps_back_to_the_goal(record: Goal) -> None:
    resource = json.loads(golden(record).read_text())

    assert map_back("goal", {"Goal": resource}, context()) == record


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.id)
def test_golden_resource_conforms_to_us_core_goal(record: Goal) -> None:
    resource = json.loads(golden(record).read_text())

    assert [f for f in check(resource) if f.severity is Severity.ERROR] == []
    assert MAPPING.profile in resource["meta"]["profile"]


def test_the_concern_is_addressed_by_its_conditions_server_id() -> None:
    resource = json.loads(golden(RECORDS[0]).read_text())

    assert resource["addresses"] == [{"reference": "Condition/cond-81"}]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.id)
def test_rewriting_over_the_servers_copy_changes_nothing(record: Goal) -> None:
    on_server = json.loads(golden(record).read_text())

    assert MAPPING.to_fhir(record, context(), base=on_server) == on_server


def test_a_condition_we_do_not_own_stays_in_addresses() -> None:
    resource = json.loads(golden(RECORDS[1]).read_text())

    goal = map_back("goal", {"Goal": resource}, context({"hc-food-1": "cond-81"}))

    assert goal.concern_ids == ["hc-food-1"]
    assert goal.addresses == ["Condition/ehr-c-9001", "Condition/cond-82"]


def test_an_unknown_condition_is_never_taken_for_a_concern() -> None:
    resource = {
        "resourceType": "Goal",
        "id": "ehr-g-1",
        "lifecycleStatus": "active",
        "description": {"text": "Walk daily"},
        "subject": {"reference": "Patient/ehr-a1"},
        "addresses": [{"reference": "Condition/ehr-c-5610"}],
    }

    goal = map_back("goal", {"Goal": resource}, context())

    assert (goal.addresses, goal.concern_ids) == (["Condition/ehr-c-5610"], [])


def test_dropping_a_concern_keeps_the_ehrs_conditions() -> None:
    on_server = json.loads(golden(RECORDS[1]).read_text())
    record = dataclasses.replace(RECORDS[1], concern_ids=["hc-housing-1"])

    written = MAPPING.to_fhir(record, context(), base=on_server)

    assert written["addresses"] == [
        {"reference": "Condition/ehr-c-9001"},
        {"reference": "Condition/cond-82"},
    ]


class _NotPushed(StaticReferences):
    """Health concerns without a server id yet: what the sync's resolver says before the
    Condition is pushed."""

    def reference(self, concept: str, local_id: str) -> str:
        if concept == "health_concern":
            raise MissingReference(local_id)
        return super().reference(concept, local_id)


def test_a_concern_not_yet_on_the_server_is_left_out_until_it_is() -> None:
    refs = _NotPushed.of(
        assessment_records.patients(),
        assessment_records.members(),
        primary=mappings().plan.primary_resources,
    )
    ctx = MappingContext(IDENTIFIER_SYSTEM, refs, mappings().terminology)

    written = MAPPING.to_fhir(RECORDS[1], ctx)

    assert written["addresses"] == [{"reference": "Condition/ehr-c-9001"}]


_EHR_REFS = st.lists(st.sampled_from(["ehr-c-1", "ehr-c-2", "ehr-c-3"]), unique=True)
_CONCERNS = st.lists(st.sampled_from(sorted(CONCERN_SERVER_IDS)), unique=True)


@settings(max_examples=50, deadline=None)
@given(ehr=_EHR_REFS, concerns=_CONCERNS)
def test_any_mix_of_addressed_conditions_survives_the_round_trip(
    ehr: list[str], concerns: list[str]
) -> None:
    record = dataclasses.replace(
        RECORDS[1], addresses=[f"Condition/{e}" for e in ehr], concern_ids=concerns
    )

    resource = MAPPING.to_fhir(record, context())

    assert map_back("goal", {"Goal": resource}, context()) == record
