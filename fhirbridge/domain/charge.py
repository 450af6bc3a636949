"""A month's billable care-management result: one code for one patient and calendar month."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from fhirbridge.domain.codes import Code


class ChargeStatus(StrEnum):
    """Where the charge stands; the values are FHIR's ChargeItem statuses."""

    PLANNED = "planned"
    BILLABLE = "billable"
    NOT_BILLABLE = "not-billable"
    ABORTED = "aborted"
    BILLED = "billed"
    ENTERED_IN_ERROR = "entered-in-error"
    UNKNOWN = "unknown"


@dataclass(slots=True)
class MonthlyCharge:
    """A CPT/HCPCS code earned by one patient in one calendar month, with the time entries whose
    minutes earned it.

    ``id`` is derived from patient, month and code, so re-running a month finds the charge it
    made before instead of making another. ``month_start`` and ``month_end`` are the first and
    last day of the month in the practice's time zone.
    """

    id: str
    patient_id: str
    code: Code  # system alias "cpt" or "hcpcs"
    units: int
    month_start: date
    month_end: date
    status: ChargeStatus
    practitioner_id: str | None = None  # the billing practitioner
    time_entry_ids: list[str] = field(default_factory=list)
