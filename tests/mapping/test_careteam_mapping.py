"""A patient's care team <-> US Core CareTeam (mappings/resources/careteam.yaml): each team maps
to its reviewed resource under fixtures/golden/careteam and back; the resources conform to US
Core CareTeam; an inbound CareTeam written elsewhere reads as a team; any team survives the
round trip (hypothesis)."""

from __future__ import annotations

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
from fhirbridge.domain import CareTeamParticipant, CareTeamRole, CareTeamStatus, PatientCareTeam
from tests.mapping.support import demo, demo_context, map_back, mappings

GOLDEN = PROJECT_ROOT / "fixtures" / "golden" / "careteam"
MAPPING = mappings().get("patient_care_team", "CareTeam")

RECORDS = [
    PatientCareTeam(
        id="team-1001",
        patient_id="p-1001",
        status=CareTeamStatus.ACTIVE,
        name="CoCM team",
        participants=[
            CareTeamParticipant(CareTeamRole.BILLING_PRACTITIONER, member_id="m-md"),
            CareTeamParticipant(
                CareTeamRole.CARE_MANAGER, member_id="m-rn", start=date(2026, 1, 5)
            ),
            CareTeamParticipant(CareTeamRole.BH_CARE_MANAGER, member_id="m-sw"),
            CareTeamParticipant.of_external(
                CareTeamRole.PSYCHIATRIC_CONSULTANT,
                "Practitioner/psych-77",
                start=date(2026, 2, 1),
                end=date(2026, 12, 31),
            ),
        ],
    ),
    PatientCareTeam(
        id="team-1002",
        patient_id="p-1002",
        status=CareTeamStatus.PROPOSED,
        participants=[
            CareTeamParticipant(CareTeamRole.CARE_MANAGER, member_id="m-rn"),
            CareTeamParticipant.of_external(
                CareTeamRole.PSYCHIATRIC_CONSULTANT, "Organization/telepsych"
            ),
            CareTeamParticipant.of_external(CareTeamRole.CARE_MANAGER, "RelatedPerson/daughter"),
        ],
    ),
]


def golden(record: PatientCareTeam) -> Path:
    return GOLDEN / f"CareTeam-care-team-{record.id}.json"


def parsed(data: dict[str, Any]) -> dict[str, Any]:
    model = get_fhir_model_class("CareTeam").model_validate(data)
    result: dict[str, Any] = json.loads(model.model_dump_json(exclude_none=True))
    return result


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.id)
def test_team_maps_to_its_golden_careteam(record: PatientCareTeam) -> None:
    produced = MAPPING.to_fhir(record, demo_context())

    assert parsed(produced) == parsed(json.loads(golden(record).read_text()))


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.id)
def test_golden_careteam_maps_back_to_the_team(record: PatientCareTeam) -> None:
    resource = json.loads(golden(record).read_text())

    assert map_back("patient_care_team", {"CareTeam": resource}, demo_context()) == record


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.id)
def test_golden_careteam_conforms_to_us_core(record: PatientCareTeam) -> None:
    resource = json.loads(golden(record).read_text())

    assert [f for f in check(resource) if f.severity is Severity.ERROR] == []
    assert MAPPING.profile in resource["meta"]["profile"]


def test_roles_carry_snomed_where_known_and_our_code_always() -> None:
    resource = json.loads(golden(RECORDS[0]).read_text())

    roles = [p["role"][0]["coding"] for p in resource["participant"]]
    assert [c["code"] for c in roles[0]] == ["446050000", "billing-practitioner"]
    assert [c["code"] for c in roles[2]] == ["bh-care-manager"]


def test_a_careteam_without_participants_breaks_us_core() -> None:
    resource = MAPPING.to_fhir(PatientCareTeam(id="empty", patient_id="p-1001"), demo_context())

    rules = {f.rule for f in check(resource) if f.severity is Severity.ERROR}
    assert "us-core-careteam:participant-required" in rules


def test_an_inbound_careteam_reads_as_a_team_with_its_members() -> None:
    resource = json.loads((PROJECT_ROOT / "fixtures" / "inbound" / "careteam-ehr.json").read_text())

    team = map_back("patient_care_team", {"CareTeam": resource}, demo_context())

    assert team.patient_id == "p-1003"
    assert [(p.role, p.member_id, p.external) for p in team.participants] == [
        (CareTeamRole.CARE_MANAGER, "m-rn", None),
        (CareTeamRole.PSYCHIATRIC_CONSULTANT, None, "Organization/psych-group"),
    ]


ids = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=24)
patients = st.sampled_from([p.id for p in demo().patients])
members = st.sampled_from([m.id for m in demo().members])
dates = st.dates(date(2000, 1, 1), date(2040, 12, 31))


@st.composite
def participants(draw: st.DrawFn) -> CareTeamParticipant:
    role = draw(st.sampled_from(CareTeamRole))
    start = draw(st.none() | dates)
    end = draw(st.none() | dates.filter(lambda d: start is None or d >= start))
    if draw(st.booleans()):
        return CareTeamParticipant(role, member_id=draw(members), start=start, end=end)
    kind = draw(st.sampled_from(["Practitioner", "Organization", "RelatedPerson"]))
    return CareTeamParticipant.of_external(role, f"{kind}/{draw(ids)}", start=start, end=end)


teams = st.builds(
    PatientCareTeam,
    id=ids,
    patient_id=patients,
    status=st.sampled_from(CareTeamStatus),
    name=st.none() | st.text("abc XYZ-", min_size=1, max_size=20).filter(lambda s: s.strip() == s),
    participants=st.lists(participants(), max_size=5),
)


@settings(deadline=None)  # the first example pays for loading the mappings
@given(teams)
def test_any_team_survives_the_round_trip(team: PatientCareTeam) -> None:
    ctx = demo_context()

    back = map_back("patient_care_team", {"CareTeam": MAPPING.to_fhir(team, ctx)}, ctx)

    assert back == team
