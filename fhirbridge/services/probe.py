"""Probe a FHIR server for what fhirbridge relies on, before trusting it with real records.

The CapabilityStatement is read first, then every interaction the sync uses is tried with test
records that carry a probe identifier system and tag (so they are never mistaken for ours and
can be found again), and those records are deleted at the end unless ``keep`` is set.

What is *required* follows what fhirbridge would actually do on this server, given what the
statement advertises: where a type advertises ``identifier`` search, pushes use conditional
creates, so identifier search and conditional create must work; where it does not, pushes
PUT client-assigned ids instead, so that must work and a failing identifier search is a finding,
not a blocker. A check of something the statement explicitly does not advertise is skipped
("not advertised"); a type the statement does not list is tried anyway, because statements
under-claim (sekmet accepts Goal without listing it). A skipped required check still fails the
probe: fhirbridge would depend on it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import partial
from typing import Any

import httpx

from fhirbridge.fhir import (
    Capabilities,
    FhirClient,
    FhirError,
    Gone,
    NotFound,
    Outcome,
    RequestInfo,
    StatusError,
    Support,
    TransactionBuilder,
    TransportError,
    VersionConflict,
)

__all__ = [
    "PROBED_TYPES",
    "PROBE_IDENTIFIER_SYSTEM",
    "PROBE_TAG_SYSTEM",
    "SEARCH_PARAMS",
    "USED_INTERACTIONS",
    "AdvertisedType",
    "Check",
    "CheckResult",
    "CheckStatus",
    "Leftover",
    "ProbeOptions",
    "ProbeReport",
    "ServerSummary",
    "probe_resource",
    "probe_server",
]

PROBE_IDENTIFIER_SYSTEM = "urn:fhirbridge:probe"
PROBE_TAG_SYSTEM = "https://fhirbridge.dev/fhir/CodeSystem/probe-run"
# The resource types fhirbridge's mappings write, in the order they reference each other.
PROBED_TYPES = (
    "EpisodeOfCare",
    "Consent",
    "Goal",
    "CarePlan",
    "ServiceRequest",
    "Task",
    "Encounter",
)
SEARCH_PARAMS = ("identifier", "_lastUpdated", "patient")
# The type interactions the probe tries (and fhirbridge uses).
USED_INTERACTIONS = (
    "create",
    "read",
    "vread",
    "update",
    "delete",
    "history-instance",
    "search-type",
)
NOT_ADVERTISED = "not advertised"
# A busy server can hold many resources updated since the probe began; paging stops here.
MAX_PAGES = 25
FHIR_JSON = "application/fhir+json"


class CheckStatus(StrEnum):
    PASSED = "pass"
    FAILED = "fail"
    SKIPPED = "skipped"


class Check(StrEnum):
    CAPABILITIES = "capability statement"
    PATIENT = "probe patient"
    CREATE = "create"
    READ = "read"
    SEARCH_IDENTIFIER = "search by identifier"
    SEARCH_PATIENT = "search by patient"
    CONDITIONAL_CREATE = "conditional create twice"
    CLIENT_ID = "create with client-assigned id"
    UPDATE = "update with If-Match"
    STALE_UPDATE = "stale If-Match refused"
    VREAD = "vread earlier version"
    HISTORY = "history"
    LAST_UPDATED = "_lastUpdated search with paging"
    TRANSACTION = "transaction with urn:uuid references"
    DELETE = "delete"


@dataclass(frozen=True)
class CheckResult:
    check: Check
    resource_type: str | None  # None for server-level checks
    status: CheckStatus
    required: bool
    detail: str = ""  # the server's own error text for failures, "not advertised" for skips
    request: str | None = None  # method and URL of the failing request, query values masked

    @property
    def blocking(self) -> bool:
        """A required check that did not pass: fhirbridge would fail on this server."""
        return self.required and self.status is not CheckStatus.PASSED


@dataclass(frozen=True)
class AdvertisedType:
    """What the CapabilityStatement claims for one resource type."""

    type: str
    listed: bool
    interactions: tuple[str, ...]
    versioning: str | None
    conditional_create: bool
    conditional_update: bool
    search_params: Mapping[str, Support]


@dataclass(frozen=True)
class ServerSummary:
    fhir_version: str | None
    software: str | None
    formats: tuple[str, ...]
    transaction: bool
    batch: bool
    types: tuple[AdvertisedType, ...]


@dataclass(frozen=True)
class Leftover:
    """A probe record still on the server: kept on request, or its delete failed."""

    reference: str
    reason: str


@dataclass
class ProbeReport:
    base_url: str
    run_id: str
    server: ServerSummary | None = None
    checks: list[CheckResult] = field(default_factory=list)
    created: list[str] = field(default_factory=list)  # every "Type/id" the probe created
    leftovers: list[Leftover] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not any(c.blocking for c in self.checks)

    def result(self, check: Check, resource_type: str | None = None) -> CheckResult:
        """The result of one check; ``KeyError`` if the probe did not get that far."""
        for item in self.checks:
            if item.check is check and item.resource_type == resource_type:
                return item
        raise KeyError(f"{check.value} ({resource_type or 'server'})")

    @property
    def tag(self) -> str:
        """The ``_tag`` search value that finds this run's records."""
        return f"{PROBE_TAG_SYSTEM}|{self.run_id}"

    def to_json(self) -> dict[str, Any]:
        server = None
        if self.server is not None:
            server = asdict(self.server)
            for advertised in server["types"]:
                advertised["search_params"] = {
                    name: support.value for name, support in advertised["search_params"].items()
                }
        return {
            "base_url": self.base_url,
            "run_id": self.run_id,
            "passed": self.passed,
            "server": server,
            "checks": [
                {**asdict(c), "check": c.check.value, "status": c.status.value} for c in self.checks
            ],
            "created": list(self.created),
            "leftovers": [asdict(item) for item in self.leftovers],
        }


@dataclass(frozen=True)
class ProbeOptions:
    keep: bool = False  # leave the probe records on the server
    patient: str | None = None  # "Patient/<id>" to use instead of creating a probe patient
    identifier_system: str = PROBE_IDENTIFIER_SYSTEM
    resource_types: tuple[str, ...] = PROBED_TYPES
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    timeout: float = 30.0
    max_retries: int = 2


async def probe_server(
    base_url: str,
    *,
    auth: httpx.Auth | None = None,
    options: ProbeOptions | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> ProbeReport:
    """Read the server's CapabilityStatement, try every interaction fhirbridge relies on, clean
    up, and report each check. Never raises for what the server answers; that is the report."""
    options = options or ProbeOptions()
    async with (
        FhirClient(
            base_url,
            auth=auth,
            timeout=options.timeout,
            max_retries=options.max_retries,
            transport=transport,
        ) as client,
        httpx.AsyncClient(
            auth=auth,
            timeout=options.timeout,
            transport=transport,
            headers={"Accept": FHIR_JSON, "User-Agent": "fhirbridge"},
        ) as http,
    ):
        return await _Probe(client, http, options).run()


# ---------------------------------------------------------------------- probe records


def probe_resource(
    resource_type: str,
    *,
    identifier: Mapping[str, str],
    patient: str,
    run_id: str,
    goals: Sequence[str] = (),
) -> dict[str, Any]:
    """A minimal, profile-conformant record of ``resource_type`` for the probe.

    It references only ``patient`` (and ``goals``), so servers enforcing referential
    integrity accept it; the tag marks it as a probe record of run ``run_id``.
    """
    base: dict[str, Any] = {
        "resourceType": resource_type,
        "meta": {"tag": [{"system": PROBE_TAG_SYSTEM, "code": run_id}]},
        "text": _narrative("fhirbridge server probe record"),
        "identifier": [dict(identifier)],
    }
    build = _BUILDERS[resource_type]
    return {**base, **build(patient, list(goals))}


def _narrative(text: str) -> dict[str, str]:
    return {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{text}</div>'}


def _episode_of_care(patient: str, _: list[str]) -> dict[str, Any]:
    return {
        "status": "active",
        "type": [
            {
                "coding": [
                    {"system": "https://fhirbridge.dev/fhir/CodeSystem/care-program", "code": "CCM"}
                ]
            }
        ],
        "patient": {"reference": patient},
        "period": {"start": "2026-01-05"},
    }


def _consent(patient: str, _: list[str]) -> dict[str, Any]:
    return {
        "status": "active",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "treatment",
                }
            ]
        },
        "category": [
            {"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Consent"}]}
        ],
        "patient": {"reference": patient},
        "dateTime": "2026-01-05T09:00:00Z",
        "policyRule": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}
            ]
        },
        "provision": {"period": {"start": "2026-01-05"}},
    }


def _goal(patient: str, _: list[str]) -> dict[str, Any]:
    return {
        "lifecycleStatus": "active",
        "description": {"text": "fhirbridge server probe goal"},
        "subject": {"reference": patient},
        "startDate": "2026-01-05",
        "target": [{"dueDate": "2026-12-31"}],
    }


def _care_plan(patient: str, goals: list[str]) -> dict[str, Any]:
    plan: dict[str, Any] = {
        "status": "active",
        "intent": "plan",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://hl7.org/fhir/us/core/CodeSystem/careplan-category",
                        "code": "assess-plan",
                    }
                ]
            }
        ],
        "title": "fhirbridge server probe care plan",
        "subject": {"reference": patient},
        "period": {"start": "2026-01-05"},
    }
    if goals:
        plan["goal"] = [{"reference": goal} for goal in goals]
    return plan


def _service_request(patient: str, _: list[str]) -> dict[str, Any]:
    return {
        "status": "active",
        "intent": "order",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://snomed.info/sct",
                        "code": "3457005",
                        "display": "Patient referral",
                    }
                ]
            }
        ],
        "code": {
            "coding": [
                {
                    "system": "http://snomed.info/sct",
                    "code": "3457005",
                    "display": "Patient referral",
                }
            ]
        },
        "subject": {"reference": patient},
        "authoredOn": "2026-01-05T09:00:00Z",
    }


def _task(patient: str, _: list[str]) -> dict[str, Any]:
    return {
        "status": "requested",
        "intent": "plan",
        "priority": "routine",
        "code": {
            "coding": [
                {
                    "system": "https://fhirbridge.dev/fhir/CodeSystem/care-task-kind",
                    "code": "check-in-call",
                }
            ]
        },
        "description": "fhirbridge server probe task",
        "for": {"reference": patient},
        "authoredOn": "2026-01-05T09:00:00Z",
    }


def _encounter(patient: str, _: list[str]) -> dict[str, Any]:
    return {
        "status": "finished",
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "VR",
            "display": "virtual",
        },
        "type": [{"text": "fhirbridge server probe"}],
        "subject": {"reference": patient},
        "period": {"start": "2026-01-05T15:30:00Z", "end": "2026-01-05T15:45:00Z"},
        "length": {
            "value": 15,
            "unit": "min",
            "system": "http://unitsofmeasure.org",
            "code": "min",
        },
    }


def _patient(run_id: str, identifier: Mapping[str, str]) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "meta": {"tag": [{"system": PROBE_TAG_SYSTEM, "code": run_id}]},
        "identifier": [dict(identifier)],
        "active": False,
        "name": [{"family": "Probe", "given": ["Fhirbridge"]}],
        "gender": "unknown",
    }


_BUILDERS: dict[str, Callable[[str, list[str]], dict[str, Any]]] = {
    "EpisodeOfCare": _episode_of_care,
    "Consent": _consent,
    "Goal": _goal,
    "CarePlan": _care_plan,
    "ServiceRequest": _service_request,
    "Task": _task,
    "Encounter": _encounter,
}


# ---------------------------------------------------------------------- the probe


class _CheckFailed(Exception):
    """The server answered, but not as fhirbridge needs; ``detail`` says how."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass
class _Subject:
    """The probe's main record of one type, as the server last returned it."""

    type: str
    id: str | None = None
    first_version: str | None = None
    version: str | None = None
    resource: dict[str, Any] | None = None
    last_updated: str | None = None  # meta.lastUpdated at creation: the search bound
    updated: bool = False
    others: list[str] = field(default_factory=list)  # further ids of this type (still present)

    @property
    def reference(self) -> str:
        return f"{self.type}/{self.id}"


class _Probe:
    def __init__(self, client: FhirClient, http: httpx.AsyncClient, options: ProbeOptions) -> None:
        self._client = client
        self._http = http
        self._options = options
        self._caps = Capabilities(fhir_version=None, software=None, resources={})
        self._created: list[tuple[str, str]] = []
        self._subjects: dict[str, _Subject] = {}
        self.report = ProbeReport(base_url=client.base_url, run_id=options.run_id)

    async def run(self) -> ProbeReport:
        try:
            if await self._read_capabilities():
                patient = await self._probe_patient()
                for rtype in self._options.resource_types:
                    await self._probe_type(rtype, patient)
                if patient is not None:
                    await self._probe_transaction(patient)
        finally:
            # Whatever went wrong above, records already created must not be left behind.
            await self._clean_up()
        order = {rtype: i for i, rtype in enumerate(self._options.resource_types, start=1)}
        self.report.checks.sort(key=lambda c: order.get(c.resource_type or "", 0))
        return self.report

    # -- recording --------------------------------------------------------------------------

    def _record(
        self,
        check: Check,
        rtype: str | None,
        status: CheckStatus,
        *,
        required: bool,
        detail: str = "",
        request: str | None = None,
    ) -> None:
        self.report.checks.append(CheckResult(check, rtype, status, required, detail, request))

    def _skip(self, check: Check, rtype: str | None, *, required: bool, detail: str) -> None:
        self._record(check, rtype, CheckStatus.SKIPPED, required=required, detail=detail)

    async def _attempt(
        self,
        check: Check,
        rtype: str | None,
        *,
        required: bool,
        action: Callable[[], Awaitable[str]],
    ) -> bool:
        """Run ``action``; it returns a note on success and raises to fail."""
        try:
            note = await action()
        except _CheckFailed as failed:
            self._record(check, rtype, CheckStatus.FAILED, required=required, detail=failed.detail)
            return False
        except FhirError as error:
            self._record(
                check,
                rtype,
                CheckStatus.FAILED,
                required=required,
                detail=explain(error),
                request=error.request.redacted(),
            )
            return False
        self._record(check, rtype, CheckStatus.PASSED, required=required, detail=note)
        return True

    def _track(self, rtype: str, rid: str | None) -> None:
        if rid is not None and (rtype, rid) not in self._created:
            self._created.append((rtype, rid))
            self.report.created.append(f"{rtype}/{rid}")

    def _identifier(self, rtype: str, purpose: str) -> dict[str, str]:
        return {
            "system": self._options.identifier_system,
            "value": f"{self._options.run_id}/{rtype}/{purpose}",
        }

    def _resource(self, rtype: str, purpose: str, patient: str, **extra: Any) -> dict[str, Any]:
        return probe_resource(
            rtype,
            identifier=self._identifier(rtype, purpose),
            patient=patient,
            run_id=self._options.run_id,
            **extra,
        )

    # -- server level -----------------------------------------------------------------------

    async def _read_capabilities(self) -> bool:
        """False when the server cannot be reached at all: nothing else is worth trying."""
        try:
            caps = await self._client.capabilities()
        except TransportError as error:
            self._record(
                Check.CAPABILITIES,
                None,
                CheckStatus.FAILED,
                required=True,
                detail=explain(error),
                request=error.request.redacted(),
            )
            return False
        except FhirError as error:
            # Without a statement every type is "not listed", so everything is still tried.
            self._record(
                Check.CAPABILITIES,
                None,
                CheckStatus.FAILED,
                required=True,
                detail=explain(error),
                request=error.request.redacted(),
            )
            return True
        self._caps = caps
        self.report.server = _summary(caps, self._options.resource_types)
        version = caps.fhir_version or ""
        formats = ", ".join(sorted(caps.formats)) or "none listed"
        about = f"FHIR {version or '?'}, {caps.software or 'unnamed software'}; formats: {formats}"
        if not version.startswith("4.0"):
            self._record(
                Check.CAPABILITIES,
                None,
                CheckStatus.FAILED,
                required=True,
                detail=f"{about}: fhirbridge speaks FHIR R4 (4.0.x)",
            )
        elif caps.formats and not caps.formats & {FHIR_JSON, "json", "application/json"}:
            self._record(
                Check.CAPABILITIES,
                None,
                CheckStatus.FAILED,
                required=True,
                detail=f"{about}: no JSON format advertised",
            )
        else:
            self._record(Check.CAPABILITIES, None, CheckStatus.PASSED, required=True, detail=about)
        return True

    async def _probe_patient(self) -> str | None:
        given = self._options.patient
        if given is not None:
            rtype, _, rid = given.partition("/")

            async def read_given() -> str:
                await self._client.read(rtype, rid)
                return f"using {given}"

            ok = await self._attempt(Check.PATIENT, None, required=True, action=read_given)
            return given if ok else None
        created: list[str] = []

        async def create_patient() -> str:
            identifier = self._identifier("Patient", "subject")
            result = await self._client.create(_patient(self._options.run_id, identifier))
            if result.id is None:
                raise _CheckFailed("the server returned no id for the new Patient")
            self._track("Patient", result.id)
            created.append(f"Patient/{result.id}")
            return f"created Patient/{result.id}"

        if await self._attempt(Check.PATIENT, None, required=True, action=create_patient):
            return created[0]
        return None

    async def _probe_transaction(self, patient: str) -> None:
        if not self._caps.transaction and self._caps.raw:
            # fhirbridge sends the entries one by one when there are no transactions. (Without
            # a statement at all, raw is empty and the transaction is tried.)
            self._skip(Check.TRANSACTION, None, required=False, detail=NOT_ADVERTISED)
            return

        async def transaction() -> str:
            builder = TransactionBuilder()
            goal = self._resource("Goal", "transaction", patient)
            plan = self._resource("CarePlan", "transaction", patient, goals=[builder.ref("goal")])
            builder.create(goal, key="goal")
            builder.create(plan, key="plan")
            response = await self._client.transaction(builder.build())
            results = builder.parse_response(
                response, request=RequestInfo("POST", self._client.base_url)
            )
            for entry in results:
                self._track(entry.type, entry.id)
            goal_id, plan_id = results.by_key("goal").id, results.by_key("plan").id
            if goal_id is None or plan_id is None:
                raise _CheckFailed("the transaction response names no ids for its entries")
            stored = (await self._client.read("CarePlan", plan_id)).resource or {}
            shown = [g.get("reference", "") for g in stored.get("goal") or []]
            if not any(_points_at(ref, "Goal", goal_id) for ref in shown):
                raise _CheckFailed(
                    f"CarePlan.goal is {shown or 'missing'}, not Goal/{goal_id}: "
                    "the urn:uuid reference was not resolved"
                )
            return f"CarePlan/{plan_id} -> Goal/{goal_id}"

        await self._attempt(Check.TRANSACTION, None, required=True, action=transaction)

    # -- one resource type ------------------------------------------------------------------

    def _can(self, rtype: str, interaction: str) -> bool:
        return self._caps.supports(rtype, interaction) is not Support.UNSUPPORTED

    async def _probe_type(self, rtype: str, patient: str | None) -> None:
        subject = _Subject(rtype)
        self._subjects[rtype] = subject
        identifier_advertised = (
            self._caps.supports_search_param(rtype, "identifier") is Support.SUPPORTED
        )
        if patient is None:
            self._skip(Check.CREATE, rtype, required=True, detail="needs the probe patient")
            return
        if not self._can(rtype, "create"):
            self._skip(Check.CREATE, rtype, required=True, detail=NOT_ADVERTISED)
            return
        if not await self._attempt(
            Check.CREATE, rtype, required=True, action=lambda: self._create(subject, patient)
        ):
            return
        await self._check(rtype, "read", Check.READ, True, lambda: self._read(subject))
        # Before the searches: with two probe records of the type on the server, a search
        # that ignores its parameter returns the other one and is caught, even on an empty
        # server.
        await self._check(
            rtype,
            "update",
            Check.CLIENT_ID,
            not identifier_advertised,
            lambda: self._client_assigned_id(subject, patient),
        )
        await self._search_by_identifier(subject, required=identifier_advertised)
        await self._search_by_patient(subject, patient)
        await self._conditional_create(subject, patient, required=identifier_advertised)
        await self._check(rtype, "update", Check.UPDATE, True, lambda: self._update(subject))
        await self._stale_update(subject)
        # The pull reads the versions a referral Task went through; other types only need read.
        await self._check(
            rtype, "vread", Check.VREAD, rtype == "Task", lambda: self._vread(subject)
        )
        await self._check(
            rtype, "history-instance", Check.HISTORY, False, lambda: self._history(subject)
        )
        await self._last_updated(subject)

    async def _check(
        self,
        rtype: str,
        interaction: str,
        check: Check,
        required: bool,
        action: Callable[[], Awaitable[str]],
    ) -> None:
        if not self._can(rtype, interaction):
            self._skip(check, rtype, required=required, detail=NOT_ADVERTISED)
            return
        await self._attempt(check, rtype, required=required, action=action)

    async def _create(self, subject: _Subject, patient: str) -> str:
        result = await self._client.create(self._resource(subject.type, "main", patient))
        self._track(subject.type, result.id)
        if result.id is None:
            raise _CheckFailed("the server returned no id (no body, no Location)")
        subject.id = result.id
        subject.first_version = subject.version = result.version_id
        subject.resource = result.resource
        if subject.resource is None:
            # Prefer: return=representation is only a preference; read what was stored.
            subject.resource = (await self._client.read(subject.type, subject.id)).resource
        subject.last_updated = _meta(subject.resource, "lastUpdated")
        if subject.version is None:
            subject.first_version = subject.version = _meta(subject.resource, "versionId")
        missing = [
            name
            for name, value in (
                ("versionId", subject.version),
                ("lastUpdated", subject.last_updated),
            )
            if value is None
        ]
        if missing:
            raise _CheckFailed(
                f"created {subject.reference} without meta.{' or meta.'.join(missing)}"
            )
        return f"{subject.reference} version {subject.version} (HTTP {result.status})"

    async def _read(self, subject: _Subject) -> str:
        assert subject.id is not None
        result = await self._client.read(subject.type, subject.id)
        stored = result.resource or {}
        if self._identifier(subject.type, "main") not in stored.get("identifier", []):
            raise _CheckFailed("the stored resource lost its identifier")
        return f"version {result.version_id}"

    async def _search_by_identifier(self, subject: _Subject, *, required: bool) -> None:
        rtype = subject.type
        if self._caps.supports_search_param(rtype, "identifier") is Support.UNSUPPORTED:
            detail = f"{NOT_ADVERTISED}; pushes use client-assigned ids"
            self._skip(Check.SEARCH_IDENTIFIER, rtype, required=False, detail=detail)
            return
        identifier = self._identifier(rtype, "main")

        async def search() -> str:
            token = f"{identifier['system']}|{identifier['value']}"
            page = await self._client.search_bundle(rtype, {"identifier": token})
            matches, warnings = _split_page(page)
            unrelated = [m for m in matches if identifier not in m.get("identifier", [])]
            if unrelated:
                raise _CheckFailed(
                    _joined(
                        warnings,
                        f"returned {len(unrelated)} resource(s) without the identifier: "
                        "the parameter was ignored",
                    )
                )
            if subject.id not in {m.get("id") for m in matches}:
                raise _CheckFailed(_joined(warnings, f"{subject.reference} was not found"))
            note = "found by identifier" if required else "works, though not advertised"
            return _joined(warnings, note)

        await self._attempt(Check.SEARCH_IDENTIFIER, rtype, required=required, action=search)

    async def _search_by_patient(self, subject: _Subject, patient: str) -> None:
        rtype = subject.type
        # fhirbridge reads by identifier and _lastUpdated; patient search is for engineers.
        if self._caps.supports_search_param(rtype, "patient") is Support.UNSUPPORTED:
            self._skip(Check.SEARCH_PATIENT, rtype, required=False, detail=NOT_ADVERTISED)
            return

        async def search() -> str:
            matches: list[dict[str, Any]] = []
            warnings: list[str] = []
            pages = 0
            async for page in self._client.search_pages(rtype, {"patient": patient}):
                found, said = _split_page(page)
                matches.extend(found)
                warnings.extend(said)
                pages += 1
                if subject.id in {m.get("id") for m in matches} or pages >= MAX_PAGES:
                    break
            unrelated = [m for m in matches if patient not in json.dumps(m)]
            if unrelated:
                raise _CheckFailed(
                    _joined(
                        warnings,
                        f"returned {len(unrelated)} resource(s) of other patients: "
                        "the parameter was ignored",
                    )
                )
            if subject.id not in {m.get("id") for m in matches}:
                raise _CheckFailed(_joined(warnings, f"{subject.reference} was not found"))
            return _joined(warnings, f"found by {patient}")

        await self._attempt(Check.SEARCH_PATIENT, rtype, required=False, action=search)

    async def _conditional_create(self, subject: _Subject, patient: str, *, required: bool) -> None:
        rtype = subject.type
        if self._caps.supports_conditional_create(rtype) is Support.UNSUPPORTED:
            self._skip(Check.CONDITIONAL_CREATE, rtype, required=required, detail=NOT_ADVERTISED)
            return
        identifier = self._identifier(rtype, "conditional")
        resource = self._resource(rtype, "conditional", patient)
        criteria = f"identifier={identifier['system']}|{identifier['value']}"

        async def twice() -> str:
            first = await self._client.create(resource, if_none_exist=criteria)
            self._track(rtype, first.id)
            if first.id is not None:
                subject.others.append(first.id)
            second = await self._client.create(resource, if_none_exist=criteria)
            self._track(rtype, second.id)
            if second.id is not None and second.id != first.id:
                subject.others.append(second.id)
            if first.id is None or second.id is None:
                raise _CheckFailed("the server returned no id for a conditional create")
            if second.id != first.id or second.created:
                raise _CheckFailed(
                    f"the second create made {rtype}/{second.id} next to {rtype}/{first.id}: "
                    "If-None-Exist was ignored and retries would duplicate records"
                )
            return (
                f"HTTP {first.status}, then HTTP {second.status} with the same {rtype}/{first.id}"
            )

        await self._attempt(Check.CONDITIONAL_CREATE, rtype, required=required, action=twice)

    async def _client_assigned_id(self, subject: _Subject, patient: str) -> str:
        rid = str(uuid.uuid4())
        resource = {"id": rid, **self._resource(subject.type, "client-id", patient)}
        result = await self._client.update(resource)
        self._track(subject.type, result.id or rid)
        subject.others.append(result.id or rid)
        if result.id not in (None, rid):
            raise _CheckFailed(f"PUT {subject.type}/{rid} stored the resource as id {result.id}")
        return f"PUT {subject.type}/{rid}: HTTP {result.status}"

    async def _update(self, subject: _Subject) -> str:
        assert subject.id is not None
        assert subject.resource is not None
        if subject.version is None:
            raise _CheckFailed("no version to put in If-Match")
        # Changed content: some servers make no new version for an identical update.
        changed = {**subject.resource, "text": _narrative("fhirbridge server probe (updated)")}
        result = await self._client.update(changed, if_match=subject.version)
        if result.version_id is None or result.version_id == subject.version:
            raise _CheckFailed(f"the update kept version {subject.version}: no new version")
        before, subject.version, subject.updated = subject.version, result.version_id, True
        subject.resource = result.resource or changed
        return f"version {before} -> {result.version_id}"

    async def _stale_update(self, subject: _Subject) -> None:
        rtype = subject.type
        # fhirbridge finds concurrent edits by the 412 on a stale If-Match.
        if self._caps.supports_versioned_update(rtype) is Support.UNSUPPORTED:
            listed = self._caps.resource(rtype)
            versioning = listed.versioning if listed is not None else None
            detail = f"{NOT_ADVERTISED} (versioning: {versioning or 'none'})"
            self._skip(Check.STALE_UPDATE, rtype, required=True, detail=detail)
            return
        if not subject.updated or subject.first_version is None:
            self._skip(Check.STALE_UPDATE, rtype, required=True, detail="needs a successful update")
            return
        stale = subject.first_version

        async def stale_update() -> str:
            assert subject.resource is not None
            resource = {**subject.resource, "text": _narrative("fhirbridge probe (stale write)")}
            try:
                result = await self._client.update(resource, if_match=stale)
            except VersionConflict as conflict:
                note = "" if conflict.status == 412 else " (R4 says 412)"
                return f"HTTP {conflict.status}{note}: {_server_text(conflict)}"
            current, subject.version = subject.version, result.version_id or subject.version
            raise _CheckFailed(
                f"accepted If-Match version {stale} while at version {current}: "
                "concurrent edits would be overwritten silently"
            )

        await self._attempt(Check.STALE_UPDATE, rtype, required=True, action=stale_update)

    async def _vread(self, subject: _Subject) -> str:
        assert subject.id is not None
        if subject.first_version is None:
            raise _CheckFailed("no version id to read")
        result = await self._client.vread(subject.type, subject.id, subject.first_version)
        got = _meta(result.resource, "versionId") or result.version_id
        if got != subject.first_version:
            raise _CheckFailed(f"asked for version {subject.first_version}, got version {got}")
        later = f" after the update to {subject.version}" if subject.updated else ""
        return f"version {subject.first_version}{later}"

    async def _history(self, subject: _Subject) -> str:
        assert subject.id is not None
        url = f"{self._client.base_url}/{subject.type}/{subject.id}/_history"
        try:
            response = await self._http.get(url)
        except httpx.HTTPError as error:
            raise _CheckFailed(f"{type(error).__name__}: {error}") from error
        body = _json_or_none(response)
        if response.status_code >= 400:
            raise _CheckFailed(_http_text(response.status_code, body))
        if not isinstance(body, dict) or body.get("type") != "history":
            raise _CheckFailed("the answer is not a history Bundle")
        versions = len(body.get("entry") or [])
        wanted = 2 if subject.updated else 1
        if versions < wanted:
            raise _CheckFailed(f"{versions} version(s) listed, expected at least {wanted}")
        return f"{versions} versions"

    async def _last_updated(self, subject: _Subject) -> None:
        rtype = subject.type
        # The pull searches every mapped type by _lastUpdated: required everywhere.
        if self._caps.supports_search_param(rtype, "_lastUpdated") is Support.UNSUPPORTED:
            self._skip(Check.LAST_UPDATED, rtype, required=True, detail=NOT_ADVERTISED)
            return
        bound = subject.last_updated
        ours = {i for i in (subject.id, *subject.others) if i is not None}

        async def search() -> str:
            assert bound is not None
            params = [("_lastUpdated", f"ge{bound}"), ("_sort", "_lastUpdated"), ("_count", "1")]
            floor = _instant(bound)
            seen: set[str] = set()
            warnings: list[str] = []
            pages = matched = 0
            async for page in self._client.search_pages(rtype, params):
                pages += 1
                matches, said = _split_page(page)
                warnings.extend(w for w in said if w not in warnings)
                matched += len(matches)
                for match in matches:
                    when = _instant(_meta(match, "lastUpdated"))
                    if floor is not None and when is not None and when < floor:
                        raise _CheckFailed(
                            _joined(
                                warnings,
                                f"returned {rtype}/{match.get('id')} last updated before "
                                f"{bound}: the parameter was ignored",
                            )
                        )
                    seen.add(str(match.get("id")))
                if ours <= seen or pages >= MAX_PAGES:
                    break
            missing = sorted(ours - seen)
            if missing:
                raise _CheckFailed(
                    _joined(
                        warnings,
                        f"{len(missing)} of the probe's {len(ours)} {rtype} not found "
                        f"within {pages} page(s)",
                    )
                )
            note = f"{len(ours)} probe records over {pages} pages"
            if pages == 1 and matched > 1:
                note = f"{len(ours)} probe records on one page (_count=1 was not honoured)"
            return _joined(warnings, note)

        await self._attempt(Check.LAST_UPDATED, rtype, required=True, action=search)

    # -- cleaning up ------------------------------------------------------------------------

    async def _clean_up(self) -> None:
        main = {(s.type, s.id) for s in self._subjects.values() if s.id is not None}
        if self._options.keep:
            for rtype, rid in self._created:
                self.report.leftovers.append(Leftover(f"{rtype}/{rid}", "kept (--keep)"))
            for rtype, _ in sorted(main, key=lambda item: item[0]):
                self._skip(Check.DELETE, rtype, required=False, detail="kept on the server")
            return
        # Newest first: later records reference earlier ones (the probe patient is last).
        for rtype, rid in reversed(self._created):
            if (rtype, rid) in main:
                required = True
                if not self._can(rtype, "delete"):
                    self._skip(Check.DELETE, rtype, required=required, detail=NOT_ADVERTISED)
                    await self._delete_quietly(rtype, rid)
                    continue
                deleted = await self._attempt(
                    Check.DELETE, rtype, required=required, action=partial(self._delete, rtype, rid)
                )
                if not deleted:
                    self.report.leftovers.append(Leftover(f"{rtype}/{rid}", "delete failed"))
            else:
                await self._delete_quietly(rtype, rid)

    async def _delete(self, rtype: str, rid: str) -> str:
        await self._client.delete(rtype, rid)
        try:
            await self._client.read(rtype, rid)
        except (NotFound, Gone) as gone:
            return f"then read answers HTTP {gone.status}"
        raise _CheckFailed(f"{rtype}/{rid} can still be read after the delete")

    async def _delete_quietly(self, rtype: str, rid: str) -> None:
        try:
            await self._client.delete(rtype, rid)
        except (NotFound, Gone):
            return
        except FhirError as error:
            self.report.leftovers.append(Leftover(f"{rtype}/{rid}", explain(error)))


# ---------------------------------------------------------------------- helpers


def explain(error: FhirError) -> str:
    """The server's own words for a failure: status and OperationOutcome diagnostics."""
    if isinstance(error, StatusError):
        return f"HTTP {error.status}: {_server_text(error)}"
    return error.message


def _server_text(error: StatusError) -> str:
    if error.outcome is not None and error.outcome.summary():
        return error.outcome.summary()
    return "(no OperationOutcome)"


def _http_text(status: int, body: object) -> str:
    outcome = Outcome.from_json(body)
    text = outcome.summary() if outcome is not None else ""
    return f"HTTP {status}: {text or '(no OperationOutcome)'}"


def _json_or_none(response: httpx.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return None


def _split_page(page: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """Matching resources and the server's remarks (``outcome`` entries) on a search page."""
    matches: list[dict[str, Any]] = []
    remarks: list[str] = []
    for entry in page.get("entry") or []:
        resource = entry.get("resource")
        if not isinstance(resource, dict):
            continue
        mode = (entry.get("search") or {}).get("mode", "match")
        if resource.get("resourceType") == "OperationOutcome":
            outcome = Outcome.from_json(resource)
            if outcome is not None and outcome.summary():
                remarks.append(outcome.summary())
        elif mode == "match":
            matches.append(resource)
    return matches, remarks


def _joined(remarks: Sequence[str], text: str) -> str:
    if not remarks:
        return text
    return f"{text} (server says: {'; '.join(remarks)})"


def _meta(resource: Mapping[str, Any] | None, name: str) -> str | None:
    value = ((resource or {}).get("meta") or {}).get(name)
    return str(value) if value is not None else None


def _instant(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _points_at(reference: str, rtype: str, rid: str) -> bool:
    path = reference.split("/_history/", 1)[0].rstrip("/")
    return path == f"{rtype}/{rid}" or path.endswith(f"/{rtype}/{rid}")


def _summary(caps: Capabilities, types: Sequence[str]) -> ServerSummary:
    advertised = []
    for rtype in types:
        res = caps.resource(rtype)
        advertised.append(
            AdvertisedType(
                type=rtype,
                listed=res is not None,
                interactions=tuple(sorted(res.interactions)) if res else (),
                versioning=res.versioning if res else None,
                conditional_create=bool(res and res.conditional_create),
                conditional_update=bool(res and res.conditional_update),
                search_params={p: caps.supports_search_param(rtype, p) for p in SEARCH_PARAMS},
            )
        )
    return ServerSummary(
        fhir_version=caps.fhir_version,
        software=caps.software,
        formats=tuple(sorted(caps.formats)),
        transaction=caps.transaction,
        batch=caps.batch,
        types=tuple(advertised),
    )
