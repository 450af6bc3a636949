"""Reading discharge Encounters: golden cases (fixtures/transitional_care/expected.yaml), the
rules file checked with file:line errors, and a property: any qualifying Encounter built from
parts reads back as the parts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from fhirbridge.config import PROJECT_ROOT
from fhirbridge.datafiles import DataFileError
from fhirbridge.domain.transitional_care import Discharge, DischargeSetting
from fhirbridge.mapping.discharge import NotADischarge, load_discharge_rules
from tests.sessions import shipped_mappings

RULES = load_discharge_rules(PROJECT_ROOT / "mappings", shipped_mappings().terminology)
CASES = yaml.safe_load((PROJECT_ROOT / "fixtures/transitional_care/expected.yaml").read_text())
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
DISPOSITION = "http://terminology.hl7.org/CodeSystem/discharge-disposition"


@pytest.mark.parametrize("case", CASES["cases"], ids=lambda c: Path(c["input"]).name)
def test_golden_discharges(case: dict[str, Any]) -> None:
    resource = json.loads((PROJECT_ROOT / case["input"]).read_text())

    read = RULES.read(resource)

    if "skipped" in case:
        assert read == NotADischarge(case["skipped"])
    else:
        wanted = case["discharge"]
        assert read == Discharge(
            discharge_key=wanted["discharge_key"],
            patient_reference=wanted["patient_reference"],
            discharged_at=datetime.fromisoformat(wanted["discharged_at"]),
            setting=DischargeSetting(wanted["setting"]),
            disposition=wanted["disposition"],
        )


def test_an_unfinished_stay_is_no_discharge() -> None:
    resource = json.loads(
        (PROJECT_ROOT / "fixtures/transitional_care/discharge-home.json").read_text()
    )
    resource["status"] = "in-progress"

    assert RULES.read(resource) == NotADischarge("Encounter: status in-progress, not finished")


def test_a_discharge_without_time_zone_is_refused() -> None:
    resource = json.loads(
        (PROJECT_ROOT / "fixtures/transitional_care/discharge-home.json").read_text()
    )
    resource["period"]["end"] = "2026-03-06"

    assert RULES.read(resource) == NotADischarge("Encounter: no period.end (discharge time)")


def test_an_unknown_code_system_alias_names_its_line(tmp_path: Path) -> None:
    (tmp_path / "discharge.yaml").write_text(
        "resource: Encounter\nclasses:\n  v3-ActCode: {IMP: inpatient-hospital}\n"
        "community_dispositions:\n  no-such-system: [home]\n",
        encoding="utf-8",
    )

    with pytest.raises(DataFileError, match=r"discharge.yaml:5: unknown code system"):
        load_discharge_rules(tmp_path, shipped_mappings().terminology)


def test_an_unknown_setting_names_its_line(tmp_path: Path) -> None:
    (tmp_path / "discharge.yaml").write_text(
        "resource: Encounter\nclasses:\n  v3-ActCode:\n    IMP: hotel\n"
        "community_dispositions:\n  discharge-disposition: [home]\n",
        encoding="utf-8",
    )

    with pytest.raises(DataFileError, match=r"discharge.yaml:4: "):
        load_discharge_rules(tmp_path, shipped_mappings().terminology)


SETTINGS = {
    "IMP": "inpatient-hospital",
    "OBSENC": "observation",
    "NONAC": "skilled-nursing-facility",
}


@given(
    server_id=st.from_regex(r"[A-Za-z0-9\-.]{1,64}", fullmatch=True),
    patient=st.from_regex(r"[A-Za-z0-9\-.]{1,64}", fullmatch=True),
    minutes=st.integers(min_value=0, max_value=60 * 24 * 365 * 50),
    offset=st.integers(min_value=-12, max_value=14),
    class_code=st.sampled_from(sorted(SETTINGS)),
    disposition=st.sampled_from(["home", "alt-home"]),
)
def test_a_qualifying_encounter_reads_back_as_its_parts(
    server_id: str, patient: str, minutes: int, offset: int, class_code: str, disposition: str
) -> None:
    discharged = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)
    local = discharged.astimezone(timezone(timedelta(hours=offset)))
    resource = {
        "resourceType": "Encounter",
        "id": server_id,
        "status": "finished",
        "class": {"system": ACT_CODE, "code": class_code},
        "subject": {"reference": f"Patient/{patient}"},
        "period": {"end": local.isoformat()},
        "hospitalization": {
            "dischargeDisposition": {"coding": [{"system": DISPOSITION, "code": disposition}]}
        },
    }

    assert RULES.read(resource) == Discharge(
        discharge_key=f"Encounter/{server_id}",
        patient_reference=f"Patient/{patient}",
        discharged_at=discharged,
        setting=DischargeSetting(SETTINGS[class_code]),
        disposition=disposition,
    )
