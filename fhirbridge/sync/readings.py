"""Storing RPM device readings from FHIR Observations: one Observation, an NDJSON batch from a
device hub, a pull or a Bulk import all go through ``ingest_observations`` (here, below both the
pull and the Bulk import; ``services.monitoring`` is the use-case entry for the API).

Each Observation becomes a ``DeviceReading`` keyed by its source identifier: ``identifier[0]``
``system|value`` when it has one, else the FHIR server's base URL and ``Observation/<id>`` (a
pulled or bulk-imported resource); a posted Observation with neither is refused naming
``identifier``. Receiving a reading again updates it (or changes nothing), never duplicates it
(``Store.device_readings.ingest``).

Its patient is ``subject`` resolved through our patient links (``PatientLink.ehr_reference``);
an unknown patient, or one of a team the caller may not see, refuses that reading with the same
reason. In a batch one bad line never stops the others: each is reported as
``line``/``field``/``reason`` and the good ones are stored.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Any

from fhirbridge.domain import DeviceReading, PatientLink
from fhirbridge.fhir import FhirClient
from fhirbridge.mapping.readings import (
    LOINC,
    ObservationReading,
    ReadingRefused,
    ReadingRules,
    device_reading,
    read_observation,
    source_of,
)
from fhirbridge.persistence import Store, unit_of_work
from fhirbridge.persistence.db import SessionFactory
from fhirbridge.persistence.repositories.device_readings import ReadingWrite
from fhirbridge.sync.pull import _MAX_RESTARTS, InboundResult, PullReport, _Pass

__all__ = [
    "IngestReport",
    "LineOutcome",
    "PatientFilter",
    "ReadingImport",
    "ReadingPullReport",
    "ReadingSource",
    "ingest_observations",
    "ndjson_lines",
    "parse_line",
    "pull_readings",
    "reading_cursor_key",
    "single_observation",
]

Clock = Callable[[], datetime]
# Whether a caller may attach readings to this patient (the API: the caller's team).
PatientFilter = Callable[[PatientLink], bool]


@dataclass(frozen=True, slots=True)
class ReadingSource:
    """Where the Observations come from.

    ``server_base``: the FHIR server they were read from (pull, Bulk import); an Observation
    without an identifier is then named by ``<server_base>`` + ``Observation/<id>``. None for a
    device hub posting to the API, whose Observations must carry an identifier.
    """

    server_base: str | None = None


@dataclass(frozen=True, slots=True)
class LineOutcome:
    line: int  # 1-based; a single Observation is line 1
    status: str  # created | updated | unchanged | refused
    id: str | None = None
    field: str | None = None
    reason: str | None = None


@dataclass(slots=True)
class IngestReport:
    lines: list[LineOutcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for line in self.lines if line.status == status)

    @property
    def stored(self) -> int:
        return len(self.lines) - self.count("refused")

    @property
    def refused(self) -> list[LineOutcome]:
        return [line for line in self.lines if line.status == "refused"]


@dataclass(frozen=True, slots=True)
class ReadingImport:
    """What a pull or a Bulk import needs to store readings: the rules (readings.yaml), the
    practice's time zone (a reading's day) and where the resources come from."""

    rules: ReadingRules
    zone: tzinfo
    source: ReadingSource = ReadingSource()


# One decoder for every line (``json.loads`` with options builds a new one per call); numbers
# with a fraction are read as Decimal, exactly as written.
_DECODER = json.JSONDecoder(parse_float=Decimal)


def parse_line(text: bytes | str) -> Any:
    """One NDJSON line: the JSON value, or a ``ReadingRefused`` saying it is not JSON."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        return _DECODER.decode(text)
    except ValueError as exc:
        return ReadingRefused("(line)", f"not JSON: {getattr(exc, 'msg', exc)}")
    except RecursionError:
        return ReadingRefused("(line)", "nested too deeply")


def ndjson_lines(body: bytes | str) -> Iterator[tuple[int, Any]]:
    """``(line number, parsed JSON or ReadingRefused)`` for each non-blank line."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, parse_line(line)


def single_observation(body: bytes | str) -> Iterator[tuple[int, Any]]:
    """One JSON Observation as line 1."""
    parsed = parse_line(body)
    if isinstance(parsed, ReadingRefused):
        parsed = ReadingRefused("(body)", parsed.reason)
    yield 1, parsed


def ingest_observations(
    store: Store,
    observations: Iterable[tuple[int, Any]],
    *,
    rules: ReadingRules,
    zone: tzinfo,
    source: ReadingSource,
    may_see: PatientFilter = lambda _patient: True,
    chunk: int = 5_000,
) -> IngestReport:
    """Store the readings these Observations carry; report each line (flushes, never commits).

    ``observations``: ``(line number, JSON object or ReadingRefused)``, as ``ndjson_lines``
    gives. They are read in chunks, so a large import does not hold all of them: each chunk's
    subjects are resolved in one query and its readings written by one
    ``device_readings.ingest``, whose cost is linear in the chunk.
    """
    report = IngestReport()
    patients: dict[str, PatientLink | None] = {}
    pending: list[tuple[int, ObservationReading, tuple[str, str]]] = []
    for number, item in observations:
        try:
            if isinstance(item, ReadingRefused):
                raise item
            read = read_observation(item, rules, zone)
            pending.append((number, read, source_of(read, source.server_base)))
        except ReadingRefused as refused:
            report.lines.append(LineOutcome(number, "refused", None, refused.field, refused.reason))
            continue
        if len(pending) >= chunk:
            _write(store, pending, report, may_see, patients)
            pending = []
    _write(store, pending, report, may_see, patients)
    report.lines.sort(key=lambda line: line.line)
    return report


def _write(
    store: Store,
    pending: list[tuple[int, ObservationReading, tuple[str, str]]],
    report: IngestReport,
    may_see: PatientFilter,
    patients: dict[str, PatientLink | None],
) -> None:
    if not pending:
        return
    unknown = {read.subject for _, read, _ in pending if read.subject not in patients}
    if unknown:
        found = store.device_readings.subjects(unknown)
        patients.update({subject: found.get(subject) for subject in unknown})
    readings: list[tuple[int, DeviceReading]] = []
    for number, read, source_key in pending:
        try:
            readings.append((number, _reading(read, source_key, may_see, patients)))
        except ReadingRefused as refused:
            report.lines.append(LineOutcome(number, "refused", None, refused.field, refused.reason))
    if not readings:
        return
    outcome = store.device_readings.ingest([reading for _, reading in readings])
    writes = outcome.writes
    for number, reading in readings:
        # A reading given twice in one batch: the last line wins, the earlier one is "unchanged".
        status = _STATUS[writes.get(reading.id)]
        report.lines.append(LineOutcome(number, status, reading.id))


# Each write's status as plain text (an enum's ``.value`` costs more than the lookup).
_STATUS: dict[ReadingWrite | None, str] = {write: write.value for write in ReadingWrite}
_STATUS[None] = ReadingWrite.UNCHANGED.value


def _reading(
    read: ObservationReading,
    source_key: tuple[str, str],
    may_see: PatientFilter,
    patients: dict[str, PatientLink | None],
) -> DeviceReading:
    patient = patients[read.subject]
    if patient is None or not may_see(patient):
        raise ReadingRefused("subject", f"no patient {read.subject!r} known here")
    return device_reading(read, patient_id=patient.id, source=source_key)


# -- pull: a patient's readings by code, with the pull's cursor machinery ------------------


@dataclass
class ReadingPullReport:
    """What a pull of device readings did: per-line outcomes counted, refusals listed."""

    pages: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # (resource, field, reason)
    cursors: dict[str, str] = field(default_factory=dict)  # patient reference -> cursor

    @property
    def stored(self) -> int:
        return sum(n for status, n in self.counts.items() if status != "refused")


def reading_cursor_key(base_url: str, patient_reference: str, codes: Sequence[str]) -> str:
    """Where a patient's reading pull resumes (per server, patient and set of codes: asking
    for another code set starts from the beginning for those codes)."""
    return (
        f"pull|{base_url.rstrip('/')}|Observation|{patient_reference}|"
        f"{','.join(sorted(codes))}|lastUpdated"
    )


class _ReadingReceiver:
    def __init__(self, readings: ReadingImport, report: ReadingPullReport, now: Clock) -> None:
        self._readings = readings
        self._report = report
        self._now = now

    async def receive(
        self,
        sessions: SessionFactory,
        resources: list[dict[str, Any]],
        *,
        cursor: tuple[str, str] | None,
    ) -> list[InboundResult]:
        with unit_of_work(sessions) as session:
            store = Store(session, clock=self._now)
            outcome = ingest_observations(
                store,
                list(enumerate(resources, start=1)),
                rules=self._readings.rules,
                zone=self._readings.zone,
                source=self._readings.source,
            )
            if cursor is not None:
                store.cursors.set(*cursor)
        for line in outcome.lines:
            self._report.counts[line.status] = self._report.counts.get(line.status, 0) + 1
            if line.status == "refused":
                resource = resources[line.line - 1]
                label = f"Observation/{resource.get('id', '?')}"
                self._report.refused.append((label, line.field or "", line.reason or ""))
        return []


async def pull_readings(
    *,
    client: FhirClient,
    sessions: SessionFactory,
    readings: ReadingImport,
    patient_references: Sequence[str] | None = None,
    codes: Sequence[str] | None = None,
    now: Clock,
    page_size: int = 100,
) -> ReadingPullReport:
    """Pull the device readings of these patients (all our patients by default) with these
    LOINC codes (every code readings.yaml lists by default) that changed since the last pull.

    One search per patient (``patient=<ref>&code=http://loinc.org|c1,...``) through the pull's
    paging and cursor machinery (``sync.pull``): the cursor of each page is saved with its
    readings, pages that shift under us are searched again. Readings without an identifier
    are named by the server's base URL and ``Observation/<id>``.
    """
    chosen = tuple(codes or readings.rules.codes)
    if page_size < 1:
        raise ValueError("page_size must be at least 1")
    source = ReadingImport(
        rules=readings.rules,
        zone=readings.zone,
        source=ReadingSource(server_base=readings.source.server_base or client.base_url),
    )
    if patient_references is None:
        with unit_of_work(sessions, read_only=True) as session:
            patient_references = [p.ehr_reference for p in Store(session).patients.list_all()]
    report = ReadingPullReport()
    pull_report = PullReport(started_at=now())
    receiver = _ReadingReceiver(source, report, now)
    code_param = ",".join(f"{LOINC}|{code}" for code in chosen)
    for reference in patient_references:
        key = reading_cursor_key(client.base_url, reference, chosen)
        with unit_of_work(sessions, read_only=True) as session:
            since = Store(session).cursors.get(key)
        for _attempt in range(_MAX_RESTARTS + 1):
            pass_ = _Pass(
                key=key, checkpoint=since, extra=(("patient", reference), ("code", code_param))
            )
            complete = await pass_.run(
                client, sessions, receiver, "Observation", page_size, pull_report
            )
            since = pass_.checkpoint
            if complete:
                break
        if since is not None:
            report.cursors[reference] = since
    report.pages = pull_report.pages
    return report
