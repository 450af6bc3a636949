"""TCM contacts, attempts and visits <-> US Core Encounter (mappings/resources/tcm_contact.yaml):
each record maps to its reviewed resource under fixtures/golden/transitional_care and back; the
resources conform to US Core Encounter; any contact survives the round trip (hypothesis).

The period id and the note stay local: reading a resource back applies it to the stored contact
(as the pull does), which keeps them."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from hypothesis import given
from hypothesis import strategies as st

from fhirbridge.config import PROJECT_ROOT
from fhirbridge.conformance import Severity, check
from fhirbridge.domain import ContactMode
from fhirbridge.domain.transitional_care import TcmContact, TcmContactKind
from fhirbridge.mapping.engine import apply_resource
from tests.mapping.support import mappings, open_context

GOLDEN = PROJECT_ROOT / "fixtures" / "golden" / "transitional_care"
MAPPING = mappings().get("tcm_contact", "Encounter")

RECORDS = [
    TcmContact(
        id="tcm-c-1001-call",
        period_id="tcm-1001",
        patient_id="pat-1001",
        kind=TcmContactKind.INTERACTIVE_CONTACT,
        occurred_on=date(2026, 3, 9),
        occurred_at=datetime(2026, 3, 9, 14, 30, tzinfo=UTC),
        staff_id="cm-1",
        mode=ContactMode.VIRTUAL,
        minutes=12,
    ),
    TcmContact(
        id="tcm-c-1001-attempt",
        period_id="tcm-1001",
        patient_id="pat-1001",
        kind=TcmContactKind.UNSUCCESSFUL_ATTEMPT,
        occurred_on=date(2026, 3, 9),
        occurred_at=datetime(2026, 3, 9, 9, 0, tzinfo=UTC),
        staff_id="cm-1",
        mode=ContactMode.VIRTUAL,
    ),
    TcmContact(
        id="tcm-c-1001-visit",
        period_id="tcm-1001",
        patient_id="pat-1001",
        kind=TcmContactKind.FACE_TO_FACE_VISIT,
        occurred_on=date(2026, 3, 13),
        occurred_at=datetime(2026, 3, 13, 10, 0, tzinfo=UTC),
        staff_id="doc-1",
        mode=ContactMode.IN_PERSON,
        minutes=40,
    ),
]


def golden(record: TcmContact) -> Path:
    return GOLDEN / f"Encounter-tcm-contact-{record.id}.json"


def parsed(data: dict[str, Any]) -> dict[str, Any]:
    model = get_fhir_model_class("Encounter").model_validate(data)
    result: dict[str, Any] = json.loads(model.model_dump_json(exclude_none=True))
    return result


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.id)
def test_contact_maps_to_its_golden_encounter(record: TcmContact) -> None:
    produced = MAPPING.to_fhir(record, open_context())

    assert parsed(produced) == parsed(json.loads(golden(record).read_text()))


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.id)
def test_golden_encounter_maps_back_to_the_contact(record: TcmContact) -> None:
    resource = json.loads(golden(record).read_text())

    assert apply_resource(_stale(record), MAPPING, resource, open_context()) == record


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.id)
def test_golden_encounters_conform_to_us_core(record: TcmContact) -> None:
    resource = json.loads(golden(record).read_text())

    assert [f for f in check(resource) if f.severity is Severity.ERROR] == []


def test_the_note_never_leaves_the_practice() -> None:
    record = RECORDS[0]
    private = TcmContact(**{**_fields(record), "note": "daughter answered, lives at ..."})

    produced = json.dumps(MAPPING.to_fhir(private, open_context()))

    assert "daughter" not in produced


def _fields(record: TcmContact) -> dict[str, Any]:
    return {name: getattr(record, name) for name in TcmContact.__slots__}


ids = st.from_regex(r"[A-Za-z0-9\-]{1,40}", fullmatch=True)


@given(
    contact_id=ids,
    period_id=ids,
    patient_id=ids,
    staff_id=ids,
    kind=st.sampled_from(list(TcmContactKind)),
    mode=st.sampled_from(list(ContactMode)),
    minutes=st.none() | st.integers(min_value=0, max_value=24 * 60),
    seconds=st.integers(min_value=0, max_value=60 * 60 * 24 * 365 * 30),
    day_shift=st.integers(min_value=-1, max_value=1),
)
def test_any_contact_survives_the_round_trip(
    contact_id: str,
    period_id: str,
    patient_id: str,
    staff_id: str,
    kind: TcmContactKind,
    mode: ContactMode,
    minutes: int | None,
    seconds: int,
    day_shift: int,
) -> None:
    at = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    record = TcmContact(
        id=contact_id,
        period_id=period_id,
        patient_id=patient_id,
        kind=kind,
        occurred_on=at.date() + timedelta(days=day_shift),  # practice-local: may differ from UTC
        occurred_at=at,
        staff_id=staff_id,
        mode=mode,
        minutes=minutes,
    )

    resource = MAPPING.to_fhir(record, open_context())

    assert apply_resource(_stale(record), MAPPING, resource, open_context()) == record


def _stale(record: TcmContact) -> TcmContact:
    """The stored contact before the resource is applied: same id and period, all else other."""
    return TcmContact(
        id=record.id,
        period_id=record.period_id,
        patient_id="someone-else",
        kind=TcmContactKind.UNSUCCESSFUL_ATTEMPT,
        occurred_on=date(1999, 1, 1),
        minutes=999,
    )
