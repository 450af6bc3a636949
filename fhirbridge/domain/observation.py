"""Device readings for remote physiologic monitoring (RPM): one measurement from one device.

A reading arrives as a FHIR Observation (pulled, posted by a device hub, or bulk-imported) and
is kept compactly: what was measured (a LOINC code), when, the value (two for a blood-pressure
panel), and where it came from. ``source_system``/``source_value`` name it on the system that
sent it, so receiving it again updates the same reading instead of adding a second one.

``day`` is the calendar day of ``effective_at`` in the practice's time zone, fixed at ingest:
device days (99454/99445) count days, and a reading must not move between days when a server
or a report runs in another zone. ``manual`` readings were typed in by the patient; they are
kept but never count towards a device day.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

# US Core vital signs and lab codes a device sends (see shared/reference/programs.md, RPM).
BLOOD_PRESSURE_PANEL = "85354-9"
SYSTOLIC = "8480-6"
DIASTOLIC = "8462-4"
BODY_WEIGHT = "29463-7"
HEART_RATE = "8867-4"
OXYGEN_SATURATION = "59408-5"  # by pulse oximetry
OXYGEN_SATURATION_ARTERIAL = "2708-6"
GLUCOSE = "2339-0"

DEVICE_READING_CODES = frozenset(
    {
        BLOOD_PRESSURE_PANEL,
        BODY_WEIGHT,
        HEART_RATE,
        OXYGEN_SATURATION,
        OXYGEN_SATURATION_ARTERIAL,
        GLUCOSE,
    }
)


@dataclass(slots=True)
class DeviceReading:
    id: str
    patient_id: str
    code: str  # LOINC
    effective_at: datetime  # timezone-aware
    day: date  # effective_at in the practice time zone
    value: Decimal | None = None  # systolic for a blood-pressure panel
    second_value: Decimal | None = None  # diastolic for a blood-pressure panel
    unit: str | None = None  # UCUM
    device: str | None = None  # "Device/..."
    manual: bool = False  # entered by the patient: kept, but no device day
    source_system: str = ""
    source_value: str = ""

    def __post_init__(self) -> None:
        if self.effective_at.tzinfo is None or self.effective_at.utcoffset() is None:
            raise ValueError("a reading's effective_at must be timezone-aware")
        if not self.source_system or not self.source_value:
            raise ValueError("a reading needs the identifier it has on its source")
        if self.second_value is not None and self.value is None:
            raise ValueError("a reading's second value needs a first one")

    @property
    def counts_for_device_day(self) -> bool:
        return not self.manual


def reading_id(source_system: str, source_value: str) -> str:
    """Our id for the reading a source names ``source_system|source_value``.

    Derived from the source identifier, so receiving a reading again (from a retrying device
    hub, a re-run import, or a second pull) names the same reading without looking it up.
    """
    return uuid.uuid5(uuid.NAMESPACE_URL, f"fhirbridge:reading:{source_system}|{source_value}").hex
