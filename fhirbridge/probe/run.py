"""The state of one probe run: options, what the server claims, what the probe created, and
the report being filled in. Checks read and write it; only the runner decides what runs."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fhirbridge.fhir import Capabilities, FhirClient, FhirError, StatusError, Support
from fhirbridge.probe.records import PROBE_TAG_SYSTEM, ProbeRecord, ProbeRecords
from fhirbridge.probe.report import Check, CheckResult, CheckStatus, Claim, ProbeReport

__all__ = ["CheckFailed", "ProbeOptions", "ProbeRun", "Subject", "explain", "server_text"]


@dataclass(frozen=True)
class ProbeOptions:
    keep: bool = False  # leave the probe records on the server
    patient: str | None = None  # "Patient/<id>" to use instead of creating a probe patient
    resource_types: tuple[str, ...] | None = None  # None: every type there is a record for
    skip: frozenset[Check] = frozenset()  # checks the user asked not to run
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])


class CheckFailed(Exception):
    """The server answered, but not as fhirbridge needs; ``detail`` says how."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass
class Subject:
    """The probe's main record of one type, as the server last returned it."""

    type: str
    id: str | None = None
    first_version: str | None = None
    version: str | None = None
    resource: dict[str, Any] | None = None
    identifier: dict[str, str] | None = None
    last_updated: str | None = None  # meta.lastUpdated at creation: the search bound
    updated: bool = False
    others: list[str] = field(default_factory=list)  # further ids of this type (still present)

    @property
    def reference(self) -> str:
        return f"{self.type}/{self.id}"


class ProbeRun:
    def __init__(self, client: FhirClient, records: ProbeRecords, options: ProbeOptions) -> None:
        self.client = client
        self.records = records
        self.options = options
        self.caps = Capabilities(fhir_version=None, software=None, resources={})
        self.created: list[tuple[str, str]] = []
        self.report = ProbeReport(
            base_url=client.base_url, run_id=options.run_id, tag_system=PROBE_TAG_SYSTEM
        )

    @property
    def types(self) -> tuple[str, ...]:
        wanted = self.options.resource_types
        return self.records.types if wanted is None else wanted

    def record(
        self,
        rtype: str,
        purpose: str,
        patient: str,
        bound: Mapping[str, str] | None = None,
    ) -> ProbeRecord:
        """This run's ``rtype`` record for ``purpose`` (see ``ProbeRecords.record``)."""
        return self.records.record(
            rtype, run_id=self.options.run_id, purpose=purpose, patient=patient, bound=bound
        )

    # -- recording ------------------------------------------------------------------------

    def add(
        self,
        check: Check,
        rtype: str | None,
        status: CheckStatus,
        *,
        required: bool,
        advertised: Support | None,
        detail: str = "",
        request: str | None = None,
    ) -> CheckResult:
        claim = None if advertised is None else Claim.of(advertised)
        result = CheckResult(check, rtype, status, required, claim, detail, request)
        self.report.checks.append(result)
        return result

    async def attempt(
        self,
        check: Check,
        rtype: str | None,
        action: Callable[[], Awaitable[str]],
        *,
        required: bool,
        advertised: Support | None,
    ) -> bool:
        """Run ``action``; it returns a note on success and raises to fail."""
        try:
            note = await action()
        except CheckFailed as failed:
            self.add(
                check,
                rtype,
                CheckStatus.FAILED,
                required=required,
                advertised=advertised,
                detail=failed.detail,
            )
            return False
        except FhirError as error:
            self.add(
                check,
                rtype,
                CheckStatus.FAILED,
                required=required,
                advertised=advertised,
                detail=explain(error),
                request=error.request.redacted(),
            )
            return False
        self.add(
            check, rtype, CheckStatus.PASSED, required=required, advertised=advertised, detail=note
        )
        return True

    def track(self, rtype: str, rid: str | None) -> None:
        """Remember a record the probe made, so that it is deleted at the end."""
        if rid is not None and (rtype, rid) not in self.created:
            self.created.append((rtype, rid))
            self.report.created.append(f"{rtype}/{rid}")


def explain(error: FhirError) -> str:
    """The server's own words for a failure: status and OperationOutcome diagnostics."""
    if isinstance(error, StatusError):
        return f"HTTP {error.status}: {server_text(error)}"
    return error.message


def server_text(error: StatusError) -> str:
    if error.outcome is not None and error.outcome.summary():
        return error.outcome.summary()
    return "(no OperationOutcome)"
