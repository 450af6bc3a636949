from __future__ import annotations

from fhirbridge.api.schemas._base import Outgoing


class PatientRead(Outgoing):
    """A link to the EHR's Patient; demographics stay in the EHR."""

    id: str
    ehr_reference: str
    mrn_system: str | None = None
    mrn_value: str | None = None
    team: str
