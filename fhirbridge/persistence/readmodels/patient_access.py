"""Who a patient is, for access checks (``store.patient_access``).

Every request about a patient first checks that the caller sees the patient's team
(``api.access.visible_patient``); this reads the patient's link as one Core row instead of
loading an ORM object into the session, which cost several times the statement on the API's
busiest routes.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.orm import Session

from fhirbridge.domain import PatientLink
from fhirbridge.persistence.tables import PatientLinkRow

__all__ = ["PatientAccess"]

_TABLE = cast(Table, PatientLinkRow.__table__)
# Built once: every request about a patient runs it.
_PATIENT: Any = select(
    _TABLE.c.id, _TABLE.c.ehr_reference, _TABLE.c.mrn_system, _TABLE.c.mrn_value, _TABLE.c.team
).where(_TABLE.c.id == bindparam("patient_id"))


class PatientAccess:
    def __init__(self, session: Session) -> None:
        self._session = session

    def patient(self, patient_id: str) -> PatientLink | None:
        """The patient's link (as ``store.patients.get`` has it), or None."""
        row = self._session.execute(_PATIENT, {"patient_id": patient_id}).first()
        if row is None:
            return None
        return PatientLink(
            id=row[0], ehr_reference=row[1], mrn_system=row[2], mrn_value=row[3], team=row[4]
        )
