"""Import NDJSON files (a Bulk Data download, or fhirbridge's own export) into our records.

Each line is one resource, read through the inbound mappings (``from_fhir``) and stored
idempotently: importing the same files again changes nothing.

* **Which record?** With ``link_to_server`` (the files came from the FHIR server fhirbridge
  syncs with) a resource whose server id is in ``fhir_links`` is that record. Otherwise one
  carrying our business identifier (``<prefix>/<local id>``) is the record with that local id.
  Anything else belongs to another system and is adopted only as ``mappings/inbound.yaml``
  declares (``fhirbridge.mapping.inbound``: a ServiceRequest only with a referral or SDOH
  category or based on one of our care plans, a Task only when its focus is one of our orders,
  ...), as a new record keyed by its server id (a referral's Task joins the referral its
  ``focus`` points at). The rest is skipped and counted by reason (``ImportSummary.skipped``).
  Without ``link_to_server`` the files' ids belong to some other system, so they are never
  looked up in, or written to, ``fhir_links``.
* **Created, updated or unchanged?** An existing record gets the fields the mapping owns
  (``apply_resource``) and is saved only when that changes it. With ``link_to_server``, a
  resource at the version the link already holds is our own data coming back (unchanged), and a
  record with local changes not yet pushed (or an open conflict) is left alone ("held"): the
  next pull reconciles it with the conflict rules.
* **References.** Files are read type by type (enrollments before consents, goals before care
  plans, orders before their Tasks), so most references point at records already imported.
  A reference to a record not imported yet (a care plan listing its tasks) is left out the
  first time; such resources are read once more at the end, when their targets exist. Patients
  not known yet are adopted as patient links (``adopt_patients``).
* **Staff.** A Practitioner is named by care-team members (``practitioner_reference``). Asked
  to (``adopt_practitioners``), the files' ``Practitioner`` resources are read first and become
  members of ``team`` (``bulk.roster.member_from_practitioner``; a Practitioner already a
  member stays as the installation onboarded it). Otherwise, or for a Practitioner the files do
  not hold, a line that needs one fails naming ``Practitioner/<id>`` and how to onboard it
  (``fhirbridge people import``); an optional reference to one is left out and counted
  (``ImportSummary.unknown_practitioners``).
* **Bad lines** are reported with file and line number and the reason (element names and
  kinds, never values); the rest continues. Each line is applied in a savepoint, so a bad one
  leaves no trace, and chunks of lines are committed together.

Files are read line by line; memory holds one chunk, plus a map of the resource ids seen
(type, id -> local id) that references are resolved through.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

from fhirbridge.bulk.roster import member_from_practitioner
from fhirbridge.domain import PatientLink, StaffRole
from fhirbridge.mapping.concepts import CONCEPTS
from fhirbridge.mapping.context import MappingContext, MappingError
from fhirbridge.mapping.engine import ResourceMapping, apply_resource, build_entity
from fhirbridge.mapping.inbound import Adopt, InboundRules, Skip
from fhirbridge.mapping.loader import Mappings
from fhirbridge.persistence import (
    EntityKind,
    FhirLink,
    OutboxState,
    PersistenceError,
    Store,
    SyncTarget,
    unit_of_work,
)
from fhirbridge.persistence.db import SessionFactory
from fhirbridge.sync.pull import NotOurs, link_server_copy
from fhirbridge.sync.readings import ReadingImport, ReadingSource, ingest_observations, parse_line
from fhirbridge.sync.references import LinkReferences, split_reference

__all__ = [
    "IMPORT_ORDER",
    "ImportOptions",
    "ImportOutcome",
    "ImportSummary",
    "LineError",
    "import_ndjson",
    "ndjson_files",
]

Clock = Callable[[], datetime]
T = TypeVar("T")

# Device readings (Observation files) per committed unit of work: they are many and small.
READING_CHUNK = 5_000
# Targets before the resources that point at them (see module doc).
IMPORT_ORDER = (
    "Practitioner",
    "CareTeam",  # points at patients and practitioners only
    "EpisodeOfCare",
    "Consent",
    "Goal",
    "CarePlan",
    "ServiceRequest",
    "Task",
    "Encounter",
    "ChargeItem",
    # Assessments: the response, then the observations derived from it, then the concerns
    # whose evidence they are (screening Observations need ``readings`` left out: see run).
    "QuestionnaireResponse",
    "Observation",
    "Condition",
)


class ImportOutcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    HELD = "held"  # local changes not pushed yet: left for the pull to reconcile
    SKIPPED = "skipped"  # another system's resource inbound.yaml does not adopt
    # Another system's resource a service took (a discharge Encounter opened a TCM period).
    HANDLED = "handled"
    ERROR = "error"


@dataclass(frozen=True)
class LineError:
    file: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file.name}:{self.line}: {self.reason}"


@dataclass
class ImportSummary:
    counts: Counter[ImportOutcome] = field(default_factory=Counter)
    by_type: Counter[str] = field(default_factory=Counter)  # resources read per type
    errors: list[LineError] = field(default_factory=list)
    skipped_files: list[Path] = field(default_factory=list)  # types no mapping reads
    # Resources of other systems not adopted, by reason ("ServiceRequest: not a referral ...").
    skipped: Counter[str] = field(default_factory=Counter)
    # References to Practitioners that are no care-team member, by reference: the lines that
    # required one failed, the others were imported without it.
    unknown_practitioners: Counter[str] = field(default_factory=Counter)

    @property
    def created(self) -> int:
        return self.counts[ImportOutcome.CREATED]

    @property
    def updated(self) -> int:
        return self.counts[ImportOutcome.UPDATED]

    @property
    def unchanged(self) -> int:
        return self.counts[ImportOutcome.UNCHANGED]

    @property
    def held(self) -> int:
        return self.counts[ImportOutcome.HELD]

    def __str__(self) -> str:
        reasons = "; ".join(f"{reason}: {n}" for reason, n in sorted(self.skipped.items()))
        unknown = len(self.unknown_practitioners)
        return (
            f"created {self.created}, updated {self.updated}, unchanged {self.unchanged},"
            f" held {self.held}, skipped {sum(self.skipped.values())}"
            f"{f' ({reasons})' if reasons else ''}, errors {len(self.errors)}"
            + (f", {unknown} Practitioner(s) not care-team members" if unknown else "")
        )


@dataclass(frozen=True)
class ImportOptions:
    link_to_server: bool = False  # the files came from the FHIR server we sync with
    adopt_patients: bool = True  # unknown Patient references become patient links
    adopt_practitioners: bool = False  # the files' Practitioners become care-team members
    # Role of adopted Practitioners whose qualification or name suffix does not say it.
    practitioner_role: StaffRole | None = None
    team: str = "default"  # of adopted patients and practitioners
    chunk_size: int = 500  # lines per committed unit of work


def ndjson_files(folder: Path) -> list[tuple[str, Path]]:
    """``(resource type, path)`` of ``<Type>.ndjson`` and ``<Type>.<n>.ndjson`` files in
    ``folder``, in import order (error files, ``error.*``, are not resources)."""
    found: list[tuple[str, Path]] = []
    for path in sorted(folder.glob("*.ndjson")):
        rtype = path.name.split(".", 1)[0]
        if rtype and rtype[0].isupper():
            found.append((rtype, path))
    return sorted(found, key=lambda item: (_rank(item[0]), item[1].name))


def _rank(resource_type: str) -> int:
    return IMPORT_ORDER.index(resource_type) if resource_type in IMPORT_ORDER else 99


def import_ndjson(
    *,
    sessions: SessionFactory,
    files: Sequence[tuple[str, Path]],
    mappings: Mappings,
    identifier_system: str,
    options: ImportOptions | None = None,
    now: Clock | None = None,
    inbound: InboundRules | None = None,
    readings: ReadingImport | None = None,
    not_ours: NotOurs | None = None,
) -> ImportSummary:
    """Import ``files`` (see module doc); returns what happened to each resource.

    ``inbound`` replaces the adoption rules loaded with the mappings (``inbound.yaml``).
    ``readings``: ``Observation`` files are RPM device readings, stored through
    ``sync.readings`` (keyed by source identifier; a line whose patient is not known here is an
    error, never adopted); without it they are skipped like any unmapped type. ``not_ours``
    (as the pull's hook) sees each resource the adoption rules skip, in the line's savepoint:
    when it takes one (a discharge Encounter opening a TCM period) the line counts as
    ``handled``."""
    importer = _Importer(
        sessions=sessions,
        mappings=mappings,
        identifier_system=identifier_system,
        options=options or ImportOptions(),
        now=now or (lambda: datetime.now(UTC)),
        inbound=inbound or mappings.inbound,
    )
    importer.readings = readings
    importer.not_ours = not_ours
    return importer.run(sorted(files, key=lambda item: _rank(item[0])))


@dataclass(frozen=True)
class _Line:
    path: Path
    number: int
    offset: int
    text: bytes


@dataclass(frozen=True)
class _Revisit:
    line: _Line
    first: ImportOutcome


class _ImportReferences:
    """Resolves references in imported resources to local ids (see module doc)."""

    def __init__(self, importer: _Importer, store: Store) -> None:
        self._importer = importer
        self._store = store
        self._links = LinkReferences(store)
        self.unresolved = False  # a reference to a record not imported (yet)
        self.unknown_members: list[str] = []  # Practitioners that are no care-team member

    def reference(self, concept: str, local_id: str) -> str:
        return self._links.reference(concept, local_id)

    def local_id(self, concept: str, reference: str) -> str | None:
        parts = split_reference(reference)
        if parts is None:
            return None
        if concept == "patient":
            return self._patient(f"{parts[0]}/{parts[1]}")
        if concept == "member":
            member = self._links.local_id(concept, f"{parts[0]}/{parts[1]}")
            if member is None:
                self.unknown_members.append(f"{parts[0]}/{parts[1]}")
            return member
        local = self.known(concept, reference)
        if local is None:
            self.unresolved = True
        return local

    def known(self, concept: str, reference: str) -> str | None:
        """The local id of the record of ``concept`` that ``reference`` points at, when that
        record is here (imported earlier, or linked to the server the files came from)."""
        parts = split_reference(reference)
        if parts is None or parts[0] != self._importer.mappings.plan.primary_or_none(concept):
            return None
        local = self._importer.seen.get(parts)
        if local is None and self._importer.options.link_to_server:
            local = self._links.local_id(concept, reference)
        if local is None or self._store.repository(EntityKind(concept)).get(local) is None:
            return None
        return local

    def _patient(self, reference: str) -> str | None:
        known = self._links.local_id("patient", reference)
        if known is not None or not self._importer.options.adopt_patients:
            return known
        if not reference.startswith("Patient/"):
            return None
        patient_id = reference.removeprefix("Patient/")
        if self._store.patients.get(patient_id) is not None:
            return None  # that local id is another patient: do not guess
        self._store.patients.save(
            PatientLink(patient_id, reference, team=self._importer.options.team)
        )
        return patient_id


class _Importer:
    def __init__(
        self,
        *,
        sessions: SessionFactory,
        mappings: Mappings,
        identifier_system: str,
        options: ImportOptions,
        now: Clock,
        inbound: InboundRules,
    ) -> None:
        self.sessions = sessions
        self.inbound = inbound
        self.mappings = mappings
        self.system = identifier_system
        self.options = options
        self.now = now
        self.seen: dict[tuple[str, str], str] = {}
        self.summary = ImportSummary()
        self._mapped = {m.resource for m in mappings.resources}
        self.readings: ReadingImport | None = None  # Observation files: device readings
        self.not_ours: NotOurs | None = None  # resources not adopted: a service may take them

    def run(self, files: Sequence[tuple[str, Path]]) -> ImportSummary:
        revisits: list[_Revisit] = []
        for rtype, path in files:
            if rtype == "Practitioner" and self.options.adopt_practitioners:
                for lines in _chunks(_lines(path), self.options.chunk_size):
                    self._practitioners(lines)
                continue
            if rtype == "Observation" and self.readings is not None:
                # One file holds device readings and our own screening observations (an
                # export of ours): those carrying our business identifier take the mappings.
                for lines in _chunks(_lines(path), READING_CHUNK):
                    ours = [self._carries_ours(rtype, line) for line in lines]
                    mapped = [line for line, mine in zip(lines, ours, strict=True) if mine]
                    readings = [line for line, mine in zip(lines, ours, strict=True) if not mine]
                    if readings:
                        self._readings(self.readings, readings)
                    for chunk in _chunks(iter(mapped), self.options.chunk_size):
                        revisits += self._chunk(rtype, chunk, first=True)
                continue
            if rtype not in self._mapped:
                self.summary.skipped_files.append(path)
                continue
            for lines in _chunks(_lines(path), self.options.chunk_size):
                revisits += self._chunk(rtype, lines, first=True)
        for again in _chunks(revisits, self.options.chunk_size):
            self._again(again)
        return self.summary

    def _carries_ours(self, rtype: str, line: _Line) -> bool:
        """The line is a resource with our business identifier under a mapping of ``rtype``."""
        try:
            resource = json.loads(line.text)
        except ValueError:
            return False
        identifiers = resource.get("identifier") if isinstance(resource, dict) else None
        prefixes = tuple(
            f"{m.identifier_prefix}/" for m in self.mappings.resources if m.resource == rtype
        )
        return any(
            isinstance(i, dict)
            and i.get("system") == self.system
            and str(i.get("value", "")).startswith(prefixes)
            for i in (identifiers if isinstance(identifiers, list) else [])
        )

    def _chunk(self, rtype: str, chunk: list[_Line], *, first: bool) -> list[_Revisit]:
        revisits: list[_Revisit] = []
        with unit_of_work(self.sessions) as session:
            store = Store(session, clock=self.now)
            busy = self._busy(store)
            for line in chunk:
                outcome, unresolved = self._line(store, rtype, line, busy)
                if unresolved and first:
                    revisits.append(_Revisit(line, outcome))
                else:
                    self._count(outcome)
        return revisits

    def _again(self, chunk: list[_Revisit]) -> None:
        with unit_of_work(self.sessions) as session:
            store = Store(session, clock=self.now)
            busy = self._busy(store)
            for revisit in chunk:
                rtype = revisit.line.path.name.split(".", 1)[0]
                outcome, _ = self._line(store, rtype, revisit.line, busy, counted=False)
                if revisit.first is ImportOutcome.CREATED:
                    outcome = revisit.first
                self._count(outcome)

    def _readings(self, readings: ReadingImport, chunk: list[_Line]) -> None:
        # Resource ids name a reading only on the server we sync with (``link_to_server``);
        # files from elsewhere must carry identifiers.
        source = readings.source if self.options.link_to_server else ReadingSource()
        with unit_of_work(self.sessions) as session:
            report = ingest_observations(
                Store(session, clock=self.now),
                [(line.number, parse_line(line.text)) for line in chunk],
                rules=readings.rules,
                zone=readings.zone,
                source=source,
            )
        path = chunk[0].path
        self.summary.by_type["Observation"] += len(chunk)
        for outcome in report.lines:
            if outcome.status == "refused":
                self.summary.errors.append(
                    LineError(path, outcome.line, f"{outcome.field}: {outcome.reason}")
                )
                self._count(ImportOutcome.ERROR)
            else:
                self._count(ImportOutcome(outcome.status))

    def _practitioners(self, chunk: list[_Line]) -> None:
        with unit_of_work(self.sessions) as session:
            store = Store(session, clock=self.now)
            for line in chunk:
                self.summary.by_type["Practitioner"] += 1
                self._count(self._practitioner(store, line))

    def _practitioner(self, store: Store, line: _Line) -> ImportOutcome:
        try:
            resource = json.loads(line.text)
        except ValueError:
            return self._error(line, "not a JSON object")
        if not isinstance(resource, dict) or resource.get("resourceType") != "Practitioner":
            found = resource.get("resourceType") if isinstance(resource, dict) else None
            return self._error(line, f"expected a Practitioner, found {found!r}")
        try:
            member = member_from_practitioner(
                resource, team=self.options.team, default_role=self.options.practitioner_role
            )
        except ValueError as error:
            return self._error(line, str(error))
        reference = member.practitioner_reference or ""
        if store.care_team.find_by_practitioner_reference(reference) is not None:
            return ImportOutcome.UNCHANGED  # onboarded already: the installation's word stands
        if store.care_team.get(member.id) is not None:
            return self._error(
                line, f"care-team member {member.id!r} is linked to another Practitioner"
            )
        savepoint = store.session.begin_nested()
        try:
            store.care_team.add(member)
        except PersistenceError as error:
            savepoint.rollback()
            return self._error(line, str(error))
        savepoint.commit()
        return ImportOutcome.CREATED

    def _count(self, outcome: ImportOutcome) -> None:
        if outcome is not ImportOutcome.ERROR:
            self.summary.counts[outcome] += 1

    def _busy(self, store: Store) -> set[SyncTarget]:
        if not self.options.link_to_server:
            return set()
        return {
            entry.target
            for state in (OutboxState.PENDING, OutboxState.IN_FLIGHT)
            for entry in store.outbox.in_state(state)
        }

    # -- one line ---------------------------------------------------------------------------

    def _line(
        self,
        store: Store,
        rtype: str,
        line: _Line,
        busy: set[SyncTarget],
        *,
        counted: bool = True,
    ) -> tuple[ImportOutcome, bool]:
        if counted:
            self.summary.by_type[rtype] += 1
        try:
            resource = json.loads(line.text)
        except ValueError:
            return self._error(line, "not a JSON object"), False
        if not isinstance(resource, dict) or resource.get("resourceType") != rtype:
            found = resource.get("resourceType") if isinstance(resource, dict) else None
            return self._error(line, f"expected a {rtype}, found {found!r}"), False
        if not isinstance(resource.get("id"), str) or not resource["id"]:
            return self._error(line, f"{rtype} without an id"), False
        references = _ImportReferences(self, store)
        ctx = MappingContext(self.system, references, self.mappings.terminology)
        savepoint = store.session.begin_nested()
        try:
            outcome = self._apply(store, ctx, references, resource, busy, first=counted)
        except (MappingError, PersistenceError, ValueError, KeyError, TypeError) as error:
            savepoint.rollback()
            if counted:
                self.summary.unknown_practitioners.update(references.unknown_members)
            reason = _reason(error)
            if references.unknown_members:
                reason += _onboarding_hint(references.unknown_members, self.options.team)
            return self._error(line, reason), False
        savepoint.commit()
        if counted:
            self.summary.unknown_practitioners.update(references.unknown_members)
        return outcome, references.unresolved

    def _error(self, line: _Line, reason: str) -> ImportOutcome:
        self.summary.errors.append(LineError(line.path, line.number, reason))
        return ImportOutcome.ERROR

    def _apply(
        self,
        store: Store,
        ctx: MappingContext,
        references: _ImportReferences,
        resource: dict[str, Any],
        busy: set[SyncTarget],
        *,
        first: bool,
    ) -> ImportOutcome:
        rtype, server_id = str(resource["resourceType"]), str(resource["id"])
        found = self._identify(store, references, resource)
        if isinstance(found, Skip):
            if self.not_ours is not None and self.not_ours(store, resource):
                return ImportOutcome.HANDLED
            self.summary.skipped[found.reason] += 1
            return ImportOutcome.SKIPPED
        mapping, link = found
        kind = EntityKind(mapping.concept)
        if first and link is not None and link.version_id is not None:
            version = (resource.get("meta") or {}).get("versionId")
            if link.version_id == version and store.repository(kind).get(link.local_id):
                self.seen[(rtype, server_id)] = link.local_id
                return ImportOutcome.UNCHANGED  # what we last synced: our own data coming back
        values = mapping.from_fhir(resource, ctx)
        local_id = link.local_id if link is not None else values.get("id")
        if not isinstance(local_id, str) or not local_id:
            raise MappingError(f"{rtype}/{server_id}", "identifier", "no local id")
        target = SyncTarget(kind, local_id, rtype)
        repository = store.repository(kind)
        local = repository.get(local_id)
        if local is None:
            values["id"] = local_id
            record = build_entity(CONCEPTS[mapping.concept], values, label=f"{rtype}/{server_id}")
            outcome = ImportOutcome.CREATED
        elif target in busy or store.conflicts.open_for(target) is not None:
            self.seen[(rtype, server_id)] = local_id
            return ImportOutcome.HELD
        else:
            record = apply_resource(local, mapping, resource, ctx)
            if first and references.unresolved:
                # Its targets may come later in the files: judged once they are all in.
                self.seen[(rtype, server_id)] = local_id
                return ImportOutcome.UNCHANGED
            outcome = ImportOutcome.UNCHANGED if record == local else ImportOutcome.UPDATED
        if outcome is not ImportOutcome.UNCHANGED:
            repository.save(record)
        if self.options.link_to_server:
            link_server_copy(store, target, resource, now=self.now(), content=True)
        self.seen[(rtype, server_id)] = local_id
        return outcome

    def _identify(
        self, store: Store, references: _ImportReferences, resource: dict[str, Any]
    ) -> tuple[ResourceMapping, FhirLink | None] | Skip:
        """Which of our mappings reads ``resource`` (see module doc), or why none does."""
        rtype, server_id = str(resource["resourceType"]), str(resource["id"])
        if self.options.link_to_server:
            link = store.fhir_links.find_by_server_id(rtype, server_id)
            if link is not None:
                return self.mappings.get(link.entity_kind.value, rtype), link
        identifiers = resource.get("identifier") or []
        if isinstance(identifiers, dict):  # 0..1 on some types (QuestionnaireResponse)
            identifiers = [identifiers]
        for identifier in identifiers:
            if not isinstance(identifier, dict) or identifier.get("system") != self.system:
                continue
            value = str(identifier.get("value", ""))
            for mapping in self.mappings.resources:
                if mapping.resource == rtype and value.startswith(f"{mapping.identifier_prefix}/"):
                    return mapping, None
        decision = self.inbound.decide(
            resource, lambda concept, ref: references.known(concept, ref) is not None
        )
        if isinstance(decision, Adopt):
            return self.mappings.get(decision.concept, rtype), None
        return decision


def _onboarding_hint(practitioners: list[str], team: str) -> str:
    named = ", ".join(sorted(set(practitioners)))
    return (
        f" ({named}: not a care-team member; onboard it with `fhirbridge people import FILE"
        f" --team {team}` (a members CSV or the EHR's Practitioner NDJSON), or import with"
        f" `--adopt-practitioners --team {team}` from files that hold its Practitioner)"
    )


def _reason(error: Exception) -> str:
    if isinstance(error, MappingError | PersistenceError):
        return str(error)
    # Other errors come from building domain records (invariants); their messages name rules.
    return f"{type(error).__name__}: {error}"


def _lines(path: Path) -> Iterator[_Line]:
    offset = 0
    with path.open("rb") as lines:
        for number, text in enumerate(lines, start=1):
            if text.strip():
                yield _Line(path, number, offset, text)
            offset += len(text)


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk
