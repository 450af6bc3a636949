"""Onboarding: the patients fhirbridge cares for (links to the EHR's Patient) and the care-team
members who do the caring (linked to the EHR's Practitioner).

Both belong to the EHR: neither is pushed to the FHIR server, so saving one queues nothing.
Every use case takes the ``Teams`` its caller works with: a record of another team is reported
exactly as a missing one (``NotFound``), and a record is created in, or moved to, only a team
the caller works with. The same checks serve the API and ``fhirbridge people import``
(``import_people``, which matches records by id and by their EHR reference, so running it
again reports them unchanged).
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar

from fhirbridge.bulk.roster import PersonLine
from fhirbridge.domain import CareTeamMember, PatientLink, StaffRole
from fhirbridge.persistence import Store, unit_of_work
from fhirbridge.persistence.db import SessionFactory
from fhirbridge.services.changes import apply_changes
from fhirbridge.services.errors import Conflict, FieldError, NotFound, Rejected, WorkflowError
from fhirbridge.sync.references import split_reference

__all__ = [
    "EVERY_TEAM",
    "ImportOutcome",
    "MemberChanges",
    "PatientChanges",
    "PeopleImport",
    "PersonError",
    "Teams",
    "add_member",
    "add_patient",
    "change_member",
    "change_patient",
    "get_member",
    "get_patient",
    "import_people",
    "list_members",
    "list_patients",
    "save_person",
]

ID_LENGTH = 64  # the id columns' size
TEAM_LENGTH = 64
NAME_LENGTH = 200
REFERENCE_LENGTH = 255
MRN_LENGTH = 64
_NPI = re.compile(r"\d{10}")
_LOCAL_ID = re.compile(r"[A-Za-z0-9._:-]+")
# A FHIR id: what may follow "Patient/" in a reference.
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


@dataclass(frozen=True, slots=True)
class Teams:
    """The teams a caller works with: one team, or every team (``EVERY_TEAM``)."""

    own: str | None
    every: bool = False

    def include(self, team: str) -> bool:
        return self.every or team == self.own


EVERY_TEAM = Teams(None, every=True)


@dataclass(frozen=True, slots=True)
class PatientChanges:
    """Fields to change; None leaves a field as it is, ``clear`` empties optional ones."""

    ehr_reference: str | None = None
    mrn_system: str | None = None
    mrn_value: str | None = None
    team: str | None = None
    clear: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class MemberChanges:
    """Fields to change; None leaves a field as it is, ``clear`` empties optional ones."""

    name: str | None = None
    role: StaffRole | None = None
    practitioner_reference: str | None = None
    npi: str | None = None
    team: str | None = None
    clear: frozenset[str] = frozenset()


# -- patients and members: one set of use cases over two rosters ---------------------------


P = TypeVar("P", PatientLink, CareTeamMember)


class _People(Protocol[P]):
    def get(self, entity_id: str) -> P | None: ...
    def list_for_team(self, team: str) -> list[P]: ...
    def list_all(self) -> list[P]: ...
    def add(self, entity: P) -> None: ...
    def update(self, entity: P) -> None: ...


@dataclass(frozen=True, slots=True)
class _Roster(Generic[P]):
    """What differs between patients and members: where they are stored, what makes one
    valid, which optional fields a change may empty, and which EHR link no two may share."""

    kind: str
    people: Callable[[Store], _People[P]]
    errors: Callable[[P], list[FieldError]]
    optional: frozenset[str]
    link_field: str
    holder_of_link: Callable[[Store, str], P | None]
    changes: type[PatientChanges] | type[MemberChanges]

    def get(self, store: Store, entity_id: str, teams: Teams) -> P:
        found = self.people(store).get(entity_id)
        if found is None or not teams.include(found.team):
            raise NotFound(self.kind, entity_id)
        return found

    def list(self, store: Store, teams: Teams, team: str | None) -> list[P]:
        chosen = _listed_team(teams, team, kind=f"{self.kind} list")
        people = self.people(store)
        return people.list_all() if chosen is None else people.list_for_team(chosen)

    def add(self, store: Store, person: P, teams: Teams) -> P:
        errors = [*self.errors(person), *_team_errors(person.team, teams)]
        if errors:
            raise Rejected(self.kind, errors)
        if self.people(store).get(person.id) is not None:
            raise _taken(self.kind, "id", person.id)
        self._check_link_free(store, person)
        self.people(store).add(person)
        return person

    def change(self, store: Store, entity_id: str, changes: Any, teams: Teams) -> P:
        stored = self.get(store, entity_id, teams)
        changed = dataclasses.replace(stored)
        apply_changes(changed, changes, skip=frozenset({"clear"}))
        for name in changes.clear & self.optional:
            setattr(changed, name, None)
        errors = self.errors(changed)
        if changed.team != stored.team:
            errors += _team_errors(changed.team, teams)
        if errors:
            raise Rejected(self.kind, errors)
        if getattr(changed, self.link_field) != getattr(stored, self.link_field):
            self._check_link_free(store, changed)
        self.people(store).update(changed)
        return changed

    def save_imported(self, store: Store, person: P, *, from_ehr: bool) -> tuple[ImportOutcome, P]:
        """Create, update or leave ``person`` as read from a file. A record read from the EHR's
        own export also matches an earlier one by its EHR link, and keeps that one's local id."""
        stored = self.people(store).get(person.id)
        link = getattr(person, self.link_field)
        if stored is None and from_ehr and link is not None:
            found = self.holder_of_link(store, link)
            if found is not None:
                stored, person = found, dataclasses.replace(person, id=found.id)
        if stored is None:
            return ImportOutcome.CREATED, self.add(store, person, EVERY_TEAM)
        if stored == person:
            return ImportOutcome.UNCHANGED, stored
        names = [f.name for f in dataclasses.fields(self.changes) if f.name != "clear"]
        changes = self.changes(
            **{name: getattr(person, name) for name in names},
            clear=frozenset(n for n in self.optional if getattr(person, n) is None),
        )
        return ImportOutcome.UPDATED, self.change(store, stored.id, changes, EVERY_TEAM)

    def _check_link_free(self, store: Store, person: P) -> None:
        link = getattr(person, self.link_field)
        if link is None:
            return
        holder = self.holder_of_link(store, link)
        if holder is not None and holder.id != person.id:
            raise _taken(self.kind, self.link_field, link)


def patient_errors(patient: PatientLink) -> list[FieldError]:
    """What is wrong with a patient link, by field (lengths are the columns')."""
    errors = [
        *_id_errors("id", patient.id),
        *_reference_errors("ehr_reference", patient.ehr_reference, "Patient"),
        *_length_errors("team", patient.team, TEAM_LENGTH, required=True),
        *_length_errors("mrn_system", patient.mrn_system, REFERENCE_LENGTH),
        *_length_errors("mrn_value", patient.mrn_value, MRN_LENGTH),
    ]
    if (patient.mrn_system is None) != (patient.mrn_value is None):
        errors.append(FieldError("mrn_value", "mrn_system and mrn_value go together"))
    return errors


def member_errors(member: CareTeamMember) -> list[FieldError]:
    """What is wrong with a care-team member, by field (lengths are the columns')."""
    errors = [
        *_id_errors("id", member.id),
        *_length_errors("name", member.name, NAME_LENGTH, required=True),
        *_length_errors("team", member.team, TEAM_LENGTH, required=True),
    ]
    if member.practitioner_reference is not None:
        errors += _reference_errors(
            "practitioner_reference", member.practitioner_reference, "Practitioner"
        )
    if member.npi is not None and not _NPI.fullmatch(member.npi):
        errors.append(FieldError("npi", "10 digits"))
    return errors


_PATIENTS: _Roster[PatientLink] = _Roster(
    kind="patient",
    people=lambda store: store.patients,
    errors=patient_errors,
    optional=frozenset({"mrn_system", "mrn_value"}),
    link_field="ehr_reference",
    holder_of_link=lambda store, link: store.patients.find_by_ehr_reference(link),
    changes=PatientChanges,
)
_MEMBERS: _Roster[CareTeamMember] = _Roster(
    kind="care-team member",
    people=lambda store: store.care_team,
    errors=member_errors,
    optional=frozenset({"practitioner_reference", "npi"}),
    link_field="practitioner_reference",
    holder_of_link=lambda store, link: store.care_team.find_by_practitioner_reference(link),
    changes=MemberChanges,
)


def get_patient(*, store: Store, patient_id: str, teams: Teams) -> PatientLink:
    return _PATIENTS.get(store, patient_id, teams)


def list_patients(*, store: Store, teams: Teams, team: str | None = None) -> list[PatientLink]:
    """A team's patients (``team``, else the caller's own); every team's for a caller who works
    with every team and names none."""
    return _PATIENTS.list(store, teams, team)


def add_patient(*, store: Store, patient: PatientLink, teams: Teams) -> PatientLink:
    return _PATIENTS.add(store, patient, teams)


def change_patient(
    *, store: Store, patient_id: str, changes: PatientChanges, teams: Teams
) -> PatientLink:
    return _PATIENTS.change(store, patient_id, changes, teams)


def get_member(*, store: Store, member_id: str, teams: Teams) -> CareTeamMember:
    return _MEMBERS.get(store, member_id, teams)


def list_members(*, store: Store, teams: Teams, team: str | None = None) -> list[CareTeamMember]:
    """A team's members (``team``, else the caller's own), by name; every team's for a caller
    who works with every team and names none."""
    return _MEMBERS.list(store, teams, team)


def add_member(*, store: Store, member: CareTeamMember, teams: Teams) -> CareTeamMember:
    return _MEMBERS.add(store, member, teams)


def change_member(
    *, store: Store, member_id: str, changes: MemberChanges, teams: Teams
) -> CareTeamMember:
    return _MEMBERS.change(store, member_id, changes, teams)


# -- shared checks -------------------------------------------------------------------------


def _listed_team(teams: Teams, team: str | None, *, kind: str) -> str | None:
    if team is not None:
        if not teams.include(team):
            raise Rejected(kind, [FieldError("team", "name a team you belong to")])
        return team
    if teams.every:
        return None
    if teams.own is None:
        raise Rejected(kind, [FieldError("team", "name a team you belong to")])
    return teams.own


def _team_errors(team: str, teams: Teams) -> list[FieldError]:
    if teams.include(team):
        return []
    return [FieldError("team", "not a team you manage")]


def _id_errors(name: str, value: str) -> list[FieldError]:
    if not value or not value.strip():
        return [FieldError(name, "required")]
    if len(value) > ID_LENGTH:
        return [FieldError(name, f"at most {ID_LENGTH} characters")]
    if not _LOCAL_ID.fullmatch(value):
        # Ids are path segments of the API (/patients/{id}): no "/", "?", "#" or spaces.
        return [FieldError(name, "letters, digits, '-', '.', '_' and ':' only")]
    return []


def _length_errors(
    name: str, value: str | None, limit: int, *, required: bool = False
) -> list[FieldError]:
    if value is None or not value.strip():
        return [FieldError(name, "required")] if required else []
    if len(value) > limit:
        return [FieldError(name, f"at most {limit} characters")]
    return []


def _reference_errors(name: str, value: str, resource_type: str) -> list[FieldError]:
    parts = split_reference(value)
    if (
        parts is None
        or value != f"{parts[0]}/{parts[1]}"
        or parts[0] != resource_type
        or not _FHIR_ID.fullmatch(parts[1])
    ):
        return [FieldError(name, f"a reference like {resource_type}/123")]
    return []


def _taken(kind: str, name: str, value: str) -> Conflict:
    # Ids and references are safe to show (no demographics); whose record holds it is not said,
    # so another team's records stay unknown.
    return Conflict(
        f"{kind} {name} {value!r} is already in use",
        errors=[FieldError(name, "already in use")],
    )


# -- import --------------------------------------------------------------------------------


class ImportOutcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class PersonError:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class PeopleImport:
    counts: Counter[ImportOutcome] = field(default_factory=Counter)
    errors: list[PersonError] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"created {self.counts[ImportOutcome.CREATED]},"
            f" updated {self.counts[ImportOutcome.UPDATED]},"
            f" unchanged {self.counts[ImportOutcome.UNCHANGED]}, errors {len(self.errors)}"
        )


def save_person(
    *, store: Store, record: PatientLink | CareTeamMember, from_ehr: bool = False
) -> tuple[ImportOutcome, PatientLink | CareTeamMember]:
    """Create ``record`` or bring the stored one to it, whichever applies.

    A stored record is found by id; for a record read from the EHR (``from_ehr``: its id is the
    EHR's, which may differ from the local one given earlier), else by its EHR reference, and
    then it keeps its local id. The caller decides the team (an import works for every team).
    """
    if isinstance(record, PatientLink):
        return _PATIENTS.save_imported(store, record, from_ehr=from_ehr)
    return _MEMBERS.save_imported(store, record, from_ehr=from_ehr)


def import_people(
    *,
    sessions: SessionFactory,
    lines: Iterable[PersonLine],
    chunk_size: int = 500,
) -> PeopleImport:
    """Save the record of each line read from a people file (``bulk.roster.read_people``); a
    line that cannot be read or is refused is reported with its number and reason, and the
    others go on. Each line is applied in a savepoint (a refused one leaves no trace); chunks
    of lines are committed together."""
    summary = PeopleImport()
    chunk: list[PersonLine] = []

    def flush() -> None:
        with unit_of_work(sessions) as session:
            store = Store(session)
            for line in chunk:
                if line.record is None:
                    summary.errors.append(PersonError(line.line, line.error or "unreadable"))
                    continue
                savepoint = session.begin_nested()
                try:
                    outcome, _ = save_person(
                        store=store, record=line.record, from_ehr=line.from_ehr
                    )
                except WorkflowError as error:
                    savepoint.rollback()
                    summary.errors.append(PersonError(line.line, _reason(error)))
                    continue
                savepoint.commit()
                summary.counts[outcome] += 1
        chunk.clear()

    for item in lines:
        chunk.append(item)
        if len(chunk) >= chunk_size:
            flush()
    if chunk:
        flush()
    return summary


def _reason(error: WorkflowError) -> str:
    if error.errors:
        return "; ".join(f"{e.field}: {e.reason}" for e in error.errors)
    return str(error)
