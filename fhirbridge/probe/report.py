"""The probe's findings: one result per check, with what the server claims beside what it does.

Rules:

- A check is ``pass`` or ``fail`` when it was tried, ``skipped`` when it could not run (what it
  needs failed or was skipped, ``--keep`` left the records, the user asked to skip it); a skip
  always says why.
- ``advertised`` is what the CapabilityStatement claims for the check (``unknown`` when the
  statement does not list the type), ``works`` what the server did. Both are kept because they
  differ in practice: a capability that is advertised but does not work, or works but is not
  advertised, is a finding an integration engineer wants to see.
- Only a required check that *failed* blocks: fhirbridge would go wrong on this server. A
  skipped check blocks nothing; its reason is in the report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from fhirbridge.fhir import Support

__all__ = [
    "AdvertisedType",
    "Check",
    "CheckResult",
    "CheckStatus",
    "Claim",
    "Leftover",
    "ProbeReport",
    "ServerSummary",
]


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

    @property
    def slug(self) -> str:
        """The name the command line takes (``--skip stale-update``)."""
        return self.name.lower().replace("_", "-")

    @classmethod
    def named(cls, name: str) -> Check:
        """A check by slug (``stale-update``) or by its label (``stale If-Match refused``)."""
        for check in cls:
            if name in (check.slug, check.value):
                return check
        raise ValueError(f"unknown check {name!r}; one of {', '.join(c.slug for c in cls)}")


class Claim(StrEnum):
    """What the CapabilityStatement says about a check."""

    YES = "yes"
    NO = "no"
    UNKNOWN = "unknown"  # the statement does not list the resource type (or there is none)

    @classmethod
    def of(cls, support: Support) -> Claim:
        return {
            Support.SUPPORTED: cls.YES,
            Support.UNSUPPORTED: cls.NO,
            Support.UNKNOWN: cls.UNKNOWN,
        }[support]


@dataclass(frozen=True)
class CheckResult:
    check: Check
    resource_type: str | None  # None for server-level checks
    status: CheckStatus
    required: bool
    advertised: Claim | None = None  # None where the statement has nothing to claim
    detail: str = ""  # the server's own error text for failures; the reason for skips
    request: str | None = None  # method and URL of the failing request, query values masked

    @property
    def works(self) -> bool | None:
        """What the server did; None when the check was not tried."""
        if self.status is CheckStatus.SKIPPED:
            return None
        return self.status is CheckStatus.PASSED

    @property
    def blocking(self) -> bool:
        """A required check that failed: fhirbridge would go wrong on this server."""
        return self.required and self.status is CheckStatus.FAILED

    @property
    def mismatch(self) -> str | None:
        """Where the statement and the behaviour disagree, in words; None where they agree."""
        if self.advertised is Claim.YES and self.works is False:
            return "advertised but does not work"
        if self.advertised is Claim.NO and self.works is True:
            return "works but is not advertised"
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check.value,
            "resource_type": self.resource_type,
            "status": self.status.value,
            "required": self.required,
            "advertised": None if self.advertised is None else self.advertised.value,
            "works": None if self.works is None else ("yes" if self.works else "no"),
            "detail": self.detail,
            "request": self.request,
        }


@dataclass(frozen=True)
class AdvertisedType:
    """What the CapabilityStatement claims for one resource type."""

    type: str
    listed: bool
    interactions: tuple[str, ...]
    versioning: str | None
    conditional_create: bool
    conditional_update: bool
    search_params: dict[str, Support]


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
    tag_system: str
    server: ServerSummary | None = None
    checks: list[CheckResult] = field(default_factory=list)
    created: list[str] = field(default_factory=list)  # every "Type/id" the probe created
    leftovers: list[Leftover] = field(default_factory=list)
    unreachable: str | None = None  # why the server could not be reached at all

    @property
    def passed(self) -> bool:
        return self.unreachable is None and not any(c.blocking for c in self.checks)

    def result(self, check: Check, resource_type: str | None = None) -> CheckResult:
        """The result of one check; ``KeyError`` if the probe did not get that far."""
        for item in self.checks:
            if item.check is check and item.resource_type == resource_type:
                return item
        raise KeyError(f"{check.value} ({resource_type or 'server'})")

    @property
    def tag(self) -> str:
        """The ``_tag`` search value that finds this run's records."""
        return f"{self.tag_system}|{self.run_id}"

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
            "unreachable": self.unreachable,
            "server": server,
            "checks": [c.to_json() for c in self.checks],
            "created": list(self.created),
            "leftovers": [asdict(item) for item in self.leftovers],
        }
