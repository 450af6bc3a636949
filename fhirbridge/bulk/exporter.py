"""Export fhirbridge's own records as Bulk-Data-style NDJSON (and optionally one transaction
Bundle) for health plans.

What is exported: everything fhirbridge owns about the selected patients, one file per resource
type (EpisodeOfCare, Consent, CarePlan, Goal, Task, Encounter, ServiceRequest, ChargeItem,
CareTeam), each resource mapped as it would be pushed (laid over the server copy when there is
one) and checked with the conformance rules first; a resource that fails them is left out and
reported.

Selection: all patients, or a roster's (see ``roster``), narrowed to those enrolled in
``program`` and to a ``team``. ``since`` keeps only records that changed at or after it (a
local change queued in the outbox, or a server copy synced, then; see ``selection``).

Ids: a record already on the FHIR server keeps its server id, so the export lines up with
what the server holds; any other record is exported under its local id (a referral's Task as
``referral-task-<id>``; an id FHIR would not accept becomes a stable UUID). References between
exported resources use the same ids, and every resource carries our business identifier, so
an import matches records by it. The Bundle's entries are ``PUT <Type>/<id>``: applying it
twice changes nothing, and the references inside it resolve on the receiving server.

Streaming: patients are read a page at a time (keyset pagination), then their records by id;
each resource is written as soon as it is mapped, under a temporary name renamed at the end.
Memory holds one page, whatever the size of the caseload.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from fhirbridge.bulk.roster import RosterEntry, read_roster
from fhirbridge.bulk.selection import changed_since, patient_page, patients_matching, record_ids
from fhirbridge.conformance import ConformanceChecker, NonConformantResource, default_checker
from fhirbridge.domain import Program
from fhirbridge.mapping.context import MappingContext, MappingError, MissingReference
from fhirbridge.mapping.engine import ResourceMapping
from fhirbridge.mapping.loader import Mappings
from fhirbridge.mapping.readings import reading_to_observation
from fhirbridge.persistence import EntityKind, FhirLink, Store, SyncTarget
from fhirbridge.persistence.db import SessionFactory
from fhirbridge.sync.readings import ReadingImport
from fhirbridge.sync.references import LinkReferences

__all__ = [
    "EXPORT_TYPES",
    "ExportSelection",
    "ExportedResource",
    "OwnExportReport",
    "RejectedResource",
    "export_own_data",
    "iter_export",
]

EXPORT_TYPES = (
    "EpisodeOfCare",
    "Consent",
    "CarePlan",
    "Goal",
    "Task",
    "Encounter",
    "ServiceRequest",
    "ChargeItem",
    "CareTeam",  # patients' care teams
    "Observation",  # RPM device readings (given ``readings``); screening answers and scores
    "QuestionnaireResponse",  # assessments
    "Condition",  # health concerns found by screening
)
# Record kinds in the order they are read for each page of patients.
_KINDS = (
    EntityKind.ENROLLMENT,
    EntityKind.PROGRAM_CONSENT,
    EntityKind.GOAL,
    EntityKind.CARE_PLAN,
    EntityKind.CARE_TASK,
    EntityKind.TIME_ENTRY,
    EntityKind.REFERRAL,
    EntityKind.CHARGE,
    EntityKind.PATIENT_CARE_TEAM,
    EntityKind.ASSESSMENT,
    EntityKind.SCREENING_OBSERVATION,
    EntityKind.HEALTH_CONCERN,
    EntityKind.TCM_CONTACT,  # transitional care contacts and visits (Encounter)
)
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
BUNDLE_FILE = "bundle.json"
MANIFEST_FILE = "manifest.json"


@dataclass(frozen=True)
class ExportSelection:
    since: datetime | None = None
    program: Program | None = None
    team: str | None = None  # only this team's patients (the API's billing credentials)
    types: frozenset[str] = frozenset(EXPORT_TYPES)
    page_size: int = 500  # patients per page

    def __post_init__(self) -> None:
        unknown = self.types - set(EXPORT_TYPES)
        if unknown:
            raise ValueError(f"cannot export {', '.join(sorted(unknown))}")
        if self.page_size < 1:
            raise ValueError("page_size must be at least 1")


@dataclass(frozen=True)
class ExportedResource:
    resource_type: str
    resource: dict[str, Any]


@dataclass(frozen=True)
class RejectedResource:
    """A record left out: not conformant, or not mappable. Names elements, never values."""

    label: str
    reasons: tuple[str, ...]


@dataclass
class OwnExportReport:
    folder: Path
    patients: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    rejected: list[RejectedResource] = field(default_factory=list)
    roster_unmatched: int = 0
    bundle: Path | None = None

    def files(self) -> dict[str, Path]:
        return {t: self.folder / f"{t}.ndjson" for t in EXPORT_TYPES if self.counts[t]}


@dataclass
class _Progress:
    patients: int = 0
    roster_unmatched: int = 0


def exported_id(mapping: ResourceMapping, local_id: str, link: FhirLink | None) -> str:
    """The id a record's resource has in an export (see module doc)."""
    if link is not None:
        return link.server_id
    wanted = local_id if mapping.primary else f"{mapping.identifier_prefix}-{local_id}"
    if _FHIR_ID.match(wanted):
        return wanted
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{mapping.identifier_prefix}/{local_id}"))


class _ExportReferences(LinkReferences):
    """References to exported records use their exported ids; people resolve as usual."""

    def __init__(self, store: Store, mappings: Mappings, known: list[FhirLink]) -> None:
        super().__init__(store, known=known)
        self._mappings = mappings
        self._ids = {(link.entity_kind.value, link.local_id): link.server_id for link in known}

    def reference(self, concept: str, local_id: str) -> str:
        if concept in ("patient", "member"):
            return super().reference(concept, local_id)
        resource_type = self._mappings.plan.primary(concept)
        known = self._ids.get((concept, local_id))
        if known is None:
            try:
                return super().reference(concept, local_id)
            except MissingReference:
                mapping = self._mappings.get(concept, resource_type)
                known = exported_id(mapping, local_id, None)
        return f"{resource_type}/{known}"


def iter_export(
    *,
    sessions: SessionFactory,
    mappings: Mappings,
    identifier_system: str,
    selection: ExportSelection,
    roster: Iterable[RosterEntry] | None = None,
    checker: ConformanceChecker | None = None,
    progress: _Progress | None = None,
    readings: ReadingImport | None = None,
) -> Iterator[ExportedResource | RejectedResource]:
    """Every selected resource, page by page (see module doc). ``readings``: the rules device
    readings are written with; without them no Observation is exported."""
    check = checker or default_checker()
    counter = progress or _Progress()
    for page in _patient_pages(sessions, selection, roster, counter):
        counter.patients += len(page)
        with sessions() as session:
            yield from _page(Store(session), mappings, identifier_system, selection, page, check)
            if readings is not None and "Observation" in selection.types:
                yield from _readings(Store(session), readings, selection, page, check)


def _readings(
    store: Store,
    readings: ReadingImport,
    selection: ExportSelection,
    patients: list[str],
    check: ConformanceChecker,
) -> Iterator[ExportedResource | RejectedResource]:
    """A page of patients' device readings as Observations (``since``: taken since then)."""
    references = {p.id: p.ehr_reference for p in store.patients.get_many(patients).values()}
    for reading in store.device_readings.for_patients(patients, taken_since=selection.since):
        label = f"Observation/{reading.id}"
        try:
            resource = reading_to_observation(
                reading, readings.rules, patient_reference=references[reading.patient_id]
            )
        except ValueError:  # a code readings.yaml no longer lists
            yield RejectedResource(label, ("code: not a device reading code",))
            continue
        try:
            check.ensure_conformant(resource)
        except NonConformantResource as error:
            yield RejectedResource(label, tuple(f"{f.element} [{f.rule}]" for f in error.findings))
            continue
        yield ExportedResource("Observation", resource)


def _patient_pages(
    sessions: SessionFactory,
    selection: ExportSelection,
    roster: Iterable[RosterEntry] | None,
    counter: _Progress,
) -> Iterator[list[str]]:
    if roster is None:
        after: str | None = None
        while True:
            with sessions() as session:
                page = patient_page(
                    Store(session),
                    after=after,
                    limit=selection.page_size,
                    program=selection.program,
                    team=selection.team,
                )
            if not page:
                return
            yield page
            after = page[-1]
    # A roster may name a patient twice, in different pages: the ids already exported are
    # remembered (ids only) so nobody is exported twice.
    done: set[str] = set()
    entries = iter(roster)
    while batch := [e for _, e in zip(range(selection.page_size), entries, strict=False)]:
        with sessions() as session:
            found = patients_matching(
                Store(session),
                ids={e.patient_id for e in batch if e.patient_id},
                references={e.reference for e in batch if e.reference},
                identifiers={(e.identifier_system, e.identifier) for e in batch if e.identifier},
                program=selection.program,
                team=selection.team,
            )
        counter.roster_unmatched += max(0, len(batch) - len(found))
        page = sorted(found - done)
        done.update(page)
        if page:
            yield page


def _page(
    store: Store,
    mappings: Mappings,
    identifier_system: str,
    selection: ExportSelection,
    patients: list[str],
    check: ConformanceChecker,
) -> Iterator[ExportedResource | RejectedResource]:
    wanted = [
        (kind, [m for m in mappings.for_concept(kind.value) if m.resource in selection.types])
        for kind in _KINDS
    ]
    records: list[tuple[EntityKind, Any]] = []
    for kind, kind_mappings in wanted:
        if not kind_mappings:
            continue
        ids = record_ids(store, kind, patients)
        if selection.since is not None:
            changed = changed_since(store, kind, ids, selection.since)
            ids = [i for i in ids if i in changed]
        found = store.repository(kind).get_many(ids)
        records += [(kind, found[i]) for i in ids if i in found]
    targets = [
        SyncTarget(kind, record.id, mapping.resource)
        for kind, record in records
        for mapping in mappings.for_concept(kind.value)
    ]
    links = store.fhir_links.get_many(targets)
    ctx = MappingContext(
        identifier_system,
        _ExportReferences(store, mappings, list(links.values())),
        mappings.terminology,
    )
    for kind, kind_mappings in wanted:
        for record_kind, record in records:
            if record_kind is not kind:
                continue
            for mapping in kind_mappings:
                link = links.get(SyncTarget(kind, record.id, mapping.resource))
                yield _resource(record, mapping, link, ctx, check)


def _resource(
    record: Any,
    mapping: ResourceMapping,
    link: FhirLink | None,
    ctx: MappingContext,
    check: ConformanceChecker,
) -> ExportedResource | RejectedResource:
    rid = exported_id(mapping, record.id, link)
    label = f"{mapping.resource}/{rid}"
    try:
        resource = mapping.to_fhir(record, ctx, base=link.server_json if link else None)
    except MappingError as error:
        return RejectedResource(label, (f"{error.element}: {error.reason}",))
    resource["id"] = rid
    try:
        check.ensure_conformant(resource)
    except NonConformantResource as error:
        return RejectedResource(label, tuple(f"{f.element} [{f.rule}]" for f in error.findings))
    return ExportedResource(mapping.resource, resource)


# -- files ----------------------------------------------------------------------------------


class _Files:
    """One NDJSON file per type (opened on first use) and the optional Bundle, all written
    under temporary names and renamed into place by ``finish``."""

    def __init__(self, folder: Path, *, bundle: bool) -> None:
        self.folder = folder
        self._open: dict[str, IO[str]] = {}
        self._bundle: IO[str] | None = None
        self._entries = 0
        folder.mkdir(parents=True, exist_ok=True)
        for stale in [*(f"{t}.ndjson" for t in EXPORT_TYPES), BUNDLE_FILE, MANIFEST_FILE]:
            (folder / stale).unlink(missing_ok=True)  # a type absent now must not linger
        if bundle:
            self._bundle = self._partial(BUNDLE_FILE).open("w", encoding="utf-8")
            self._bundle.write('{"resourceType":"Bundle","type":"transaction","entry":[\n')

    def _partial(self, name: str) -> Path:
        return self.folder / f".{name}.part"

    def write(self, item: ExportedResource) -> None:
        out = self._open.get(item.resource_type)
        if out is None:
            out = self._partial(f"{item.resource_type}.ndjson").open("w", encoding="utf-8")
            self._open[item.resource_type] = out
        text = json.dumps(item.resource, separators=(",", ":"), ensure_ascii=False)
        out.write(text + "\n")
        if self._bundle is not None:
            entry = {
                "fullUrl": f"urn:uuid:{_entry_uuid(item)}",
                "resource": item.resource,
                "request": {"method": "PUT", "url": f"{item.resource_type}/{item.resource['id']}"},
            }
            separator = ",\n" if self._entries else ""
            self._bundle.write(separator + json.dumps(entry, separators=(",", ":")))
            self._entries += 1

    def finish(self, manifest: dict[str, Any]) -> Path | None:
        for rtype, out in self._open.items():
            out.close()
            os.replace(self._partial(f"{rtype}.ndjson"), self.folder / f"{rtype}.ndjson")
        self._open.clear()
        bundle = None
        if self._bundle is not None:
            self._bundle.write("\n]}\n")
            self._bundle.close()
            bundle = self.folder / BUNDLE_FILE
            os.replace(self._partial(BUNDLE_FILE), bundle)
        (self.folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
        return bundle

    def abandon(self) -> None:
        for rtype, out in self._open.items():
            out.close()
            self._partial(f"{rtype}.ndjson").unlink(missing_ok=True)
        if self._bundle is not None:
            self._bundle.close()
            self._partial(BUNDLE_FILE).unlink(missing_ok=True)


def _entry_uuid(item: ExportedResource) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"{item.resource_type}/{item.resource['id']}")


def export_own_data(
    *,
    sessions: SessionFactory,
    mappings: Mappings,
    identifier_system: str,
    folder: Path,
    selection: ExportSelection | None = None,
    roster: Path | None = None,
    bundle: bool = False,
    checker: ConformanceChecker | None = None,
    readings: ReadingImport | None = None,
) -> OwnExportReport:
    """Write the selected records to ``folder`` (see module doc); ``manifest.json`` there
    lists the files and counts like a Bulk Data manifest."""
    chosen = selection or ExportSelection()
    report = OwnExportReport(folder=folder)
    progress = _Progress()
    files = _Files(folder, bundle=bundle)
    try:
        for item in iter_export(
            sessions=sessions,
            mappings=mappings,
            identifier_system=identifier_system,
            selection=chosen,
            roster=read_roster(roster) if roster is not None else None,
            checker=checker,
            progress=progress,
            readings=readings,
        ):
            if isinstance(item, RejectedResource):
                report.rejected.append(item)
                continue
            files.write(item)
            report.counts[item.resource_type] += 1
    except BaseException:
        files.abandon()
        raise
    report.patients = progress.patients
    report.roster_unmatched = progress.roster_unmatched
    report.bundle = files.finish(
        {
            "transactionTime": datetime.now(UTC).isoformat(),
            "requiresAccessToken": False,
            "output": [
                {"type": t, "url": f"{t}.ndjson", "count": report.counts[t]}
                for t in EXPORT_TYPES
                if report.counts[t]
            ],
            "error": [],
        }
    )
    return report
