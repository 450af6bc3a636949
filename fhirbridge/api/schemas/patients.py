from __future__ import annotations

from fhirbridge.api.schemas._base import Code, Id, Incoming, Name, Outgoing

# Teams, like ids, are at most 64 characters (the columns' size).
Team = Code


class PatientCreate(Incoming):
    """A link to the EHR's Patient (``ehr_reference``, e.g. ``Patient/123``); ``team`` defaults
    to the caller's."""

    id: Id
    ehr_reference: Name
    mrn_system: Name | None = None
    mrn_value: Code | None = None
    team: Team | None = None


class PatientUpdate(Incoming):
    """Fields to change; an optional field sent as null is emptied."""

    ehr_reference: Name | None = None
    mrn_system: Name | None = None
    mrn_value: Code | None = None
    team: Team | None = None


class PatientRead(Outgoing):
    """A link to the EHR's Patient; demographics stay in the EHR."""

    id: str
    ehr_reference: str
    mrn_system: str | None = None
    mrn_value: str | None = None
    team: str
