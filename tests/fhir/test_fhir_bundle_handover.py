"""TransactionBuilder: resources handed over are not copied; building rewrites without changing
what the entries hold."""

from __future__ import annotations

from typing import Any

from fhirbridge.fhir import TransactionBuilder

PATIENT = {"resourceType": "Patient", "id": "p1", "name": [{"family": "Doe"}]}


def goal_for(builder: TransactionBuilder) -> dict[str, Any]:
    return {
        "resourceType": "Goal",
        "subject": {"reference": builder.ref("patient")},
        "target": [{"measure": {"text": "HbA1c"}}],
    }


def test_a_handed_over_resource_is_the_entrys_own() -> None:
    builder = TransactionBuilder()
    builder.update(PATIENT, key="patient")
    goal = goal_for(builder)
    builder.create(goal, key="goal", handed_over=True)

    built = builder.build()["entry"][1]["resource"]

    assert built["target"] is goal["target"]


def test_building_rewrites_references_in_a_new_copy_and_leaves_the_entry_as_it_was() -> None:
    builder = TransactionBuilder()
    builder.update(PATIENT, key="patient")
    goal = goal_for(builder)
    placeholder = goal["subject"]["reference"]
    builder.create(goal, key="goal", handed_over=True)

    built = builder.build()["entry"][1]["resource"]

    assert built["subject"] == {"reference": "Patient/p1"}
    assert goal["subject"] == {"reference": placeholder}


def test_building_twice_gives_the_same_bundle() -> None:
    builder = TransactionBuilder()
    builder.update(PATIENT, key="patient")
    builder.create(goal_for(builder), key="goal", handed_over=True)

    assert builder.build() == builder.build()


def test_a_resource_not_handed_over_is_copied() -> None:
    builder = TransactionBuilder()
    builder.update(PATIENT, key="patient")
    goal = goal_for(builder)
    builder.create(goal, key="goal")
    goal["target"][0]["measure"]["text"] = "changed"

    built = builder.build()["entry"][1]["resource"]

    assert built["target"] == [{"measure": {"text": "HbA1c"}}]


def test_without_a_placeholder_of_an_update_handed_out_no_resource_is_rewritten() -> None:
    builder = TransactionBuilder()
    builder.update(PATIENT, key="patient")  # its placeholder is never asked for
    goal = {"resourceType": "Goal", "subject": {"reference": "Patient/p1"}}
    builder.create(goal, key="goal", handed_over=True)

    built = builder.build()["entry"]

    assert built[1]["resource"] is goal
    assert built[1]["fullUrl"] == builder.ref("goal")


def test_a_placeholder_of_an_update_asked_for_before_the_update_is_added_is_rewritten() -> None:
    builder = TransactionBuilder()
    goal = goal_for(builder)  # refers to the patient before its entry exists
    builder.create(goal, key="goal", handed_over=True)
    builder.update(PATIENT, key="patient")

    built = builder.build()["entry"][0]["resource"]

    assert built["subject"] == {"reference": "Patient/p1"}
