"""Who may do what to whose records.

- ``care-manager``: the patients of their own team (the ``team`` claim); records time only as
  themselves (``staff_id`` claim), edits or deletes only their own time entries, and changes a
  care task only if they own it or nobody does.
- ``supervisor``: everything for their team's patients, including time for any staff member of
  their team.
- ``billing``: the reports only (all teams unless the credential names one); nothing else.
- ``admin``: everything, every team.

Another team's patient, and every record about them, answers 404 exactly as a record that does
not exist (``no <kind> '<the requested id>'``, through ``visible_record``): a caller cannot learn
which patients or records other teams have. A role that may not perform an action at all
answers 403.

References in a request body (an owner, a goal, a care plan...) are the services' to check:
they must exist and belong to the patient's team, else 422 naming the field, with the same
reason whether the record is missing or another team's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from fhirbridge.api.auth import Principal, Role
from fhirbridge.api.problems import Forbidden
from fhirbridge.domain import CareTask, PatientLink, TimeEntry
from fhirbridge.persistence import Store
from fhirbridge.services.errors import FieldError, NotFound, Rejected

__all__ = [
    "CLINICAL",
    "REPORTING",
    "acting_staff",
    "check_may_change_entry",
    "check_may_change_task",
    "require_role",
    "sees_team",
    "visible_patient",
    "visible_record",
]

CLINICAL = frozenset({Role.CARE_MANAGER, Role.SUPERVISOR, Role.ADMIN})
REPORTING = frozenset({Role.BILLING, Role.SUPERVISOR, Role.ADMIN})


def require_role(principal: Principal, allowed: frozenset[Role]) -> None:
    if not principal.has(*allowed):
        raise Forbidden("this role may not do that")


def sees_team(principal: Principal, team: str) -> bool:
    if principal.has(Role.ADMIN):
        return True
    if principal.team is None:
        # Credentials without a team exist only for billing (see auth): all teams' reports.
        return principal.roles <= {Role.BILLING}
    return principal.team == team


def visible_patient(store: Store, principal: Principal, patient_id: str | None) -> PatientLink:
    patient = None if patient_id is None else store.patient_access.patient(patient_id)
    if patient is None or not sees_team(principal, patient.team):
        raise NotFound("patient", patient_id or "")
    return patient


class AboutPatient(Protocol):
    @property
    def patient_id(self) -> str | None: ...


R = TypeVar("R", bound=AboutPatient)


def visible_record(
    store: Store, principal: Principal, kind: str, record_id: str, find: Callable[[str], R | None]
) -> R:
    """The record ``find`` returns for ``record_id`` if its patient is visible to the caller.

    Missing and not visible raise the same ``NotFound(kind, record_id)``: the answer never tells
    another team's record from one that does not exist.
    """
    record = find(record_id)
    if record is None or not _sees_patient(store, principal, record.patient_id):
        raise NotFound(kind, record_id)
    return record


def _sees_patient(store: Store, principal: Principal, patient_id: str | None) -> bool:
    patient = None if patient_id is None else store.patient_access.patient(patient_id)
    return patient is not None and sees_team(principal, patient.team)


def acting_staff(store: Store, principal: Principal, staff_id: str | None) -> str:
    """The staff member whose time is recorded: the caller, unless a supervisor or admin
    names a member of the team."""
    if principal.has(Role.SUPERVISOR, Role.ADMIN):
        chosen = staff_id or principal.staff_id
        if chosen is None:
            raise Rejected("time entry", [FieldError("staff_id", "required")])
        member = store.care_team.get(chosen)
        if member is None or not sees_team(principal, member.team):
            raise Rejected("time entry", [FieldError("staff_id", "no such care team member")])
        return chosen
    if principal.staff_id is None:
        raise Forbidden("the credential names no staff member (staff_id claim)")
    if staff_id is not None and staff_id != principal.staff_id:
        raise Forbidden("care managers record only their own time")
    return principal.staff_id


def check_may_change_entry(principal: Principal, entry: TimeEntry) -> None:
    if principal.has(Role.SUPERVISOR, Role.ADMIN):
        return
    if entry.staff_id is None or entry.staff_id != principal.staff_id:
        raise Forbidden("care managers change only their own time entries")


def check_may_change_task(principal: Principal, task: CareTask) -> None:
    if principal.has(Role.SUPERVISOR, Role.ADMIN):
        return
    if task.owner_id is not None and task.owner_id != principal.staff_id:
        raise Forbidden("care managers change only the tasks they own or unowned ones")
