"""Errors raised by the FHIR client.

Every error carries the ``request`` it belongs to (method and URL; never headers, so no
credentials). The split under ``FhirError`` mirrors what a caller should do next::

    FhirError                   root; .request
    ├── TransportError          no usable response (connect/read failure, timeout) -> retry
    ├── MalformedResponse       a 2xx whose body is not the FHIR JSON asked for -> report
    ├── PartiallyApplied        one-by-one fallback for a transaction stopped midway -> reconcile
    └── StatusError             an error status -> inspect .status and .outcome
        ├── InvalidResource     400 / 422: content rejected (the outcome says why)
        ├── Unauthorized        401: credentials missing, wrong or expired
        │   └── TokenEndpointError  SMART token endpoint refused (.error, .error_description)
        ├── Forbidden           403: authenticated, but not allowed (e.g. scopes)
        ├── NotFound            404
        ├── Gone                410: the resource was deleted
        ├── VersionConflict     412 (or 409) on an If-Match update: someone changed it first
        ├── PreconditionFailed  412 on a conditional create/update: several matches
        ├── RateLimited         429 -> retry after .retry_after seconds
        └── ServerError         5xx; 502/503/504 are retried; .retry_after when sent

``VersionConflict`` and ``PreconditionFailed`` share a status code but not a meaning: the first is a
lost race that the caller resolves by re-reading and merging; the second says the caller's business
identifier is not unique on the server, which no retry or merge fixes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

if TYPE_CHECKING:
    from fhirbridge.fhir.bundle import EntryResult

__all__ = [
    "FhirError",
    "Forbidden",
    "Gone",
    "InvalidResource",
    "Issue",
    "MalformedResponse",
    "NotFound",
    "Outcome",
    "PartiallyApplied",
    "PreconditionFailed",
    "RateLimited",
    "RequestInfo",
    "ServerError",
    "StatusError",
    "TokenEndpointError",
    "TransportError",
    "Unauthorized",
    "VersionConflict",
]


@dataclass(frozen=True)
class RequestInfo:
    """The request an error belongs to. Headers are left out on purpose: they carry credentials."""

    method: str
    url: str

    def redacted(self) -> str:
        """Method and URL with query values masked: search values can be patient data."""
        parts = urlsplit(self.url)
        if not parts.query:
            return f"{self.method} {self.url}"
        names = "&".join(f"{name}=…" for name, _ in parse_qsl(parts.query, keep_blank_values=True))
        return f"{self.method} {urlunsplit(parts._replace(query=names))}"

    def __str__(self) -> str:
        return self.redacted()


@dataclass(frozen=True)
class Issue:
    """One ``OperationOutcome.issue``."""

    severity: str
    code: str
    diagnostics: str | None = None
    expression: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outcome:
    """The parts of an ``OperationOutcome`` a caller acts on; ``raw`` keeps the rest."""

    issues: tuple[Issue, ...]
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: object) -> Outcome | None:
        """Parse leniently: an error body is evidence, so a sloppy one is kept rather than lost."""
        if not isinstance(data, Mapping) or data.get("resourceType") != "OperationOutcome":
            return None
        issues = []
        for item in data.get("issue") or []:
            if not isinstance(item, Mapping):
                continue
            expression = item.get("expression") or item.get("location") or []
            issues.append(
                Issue(
                    severity=str(item.get("severity", "error")),
                    code=str(item.get("code", "unknown")),
                    diagnostics=_text(item.get("diagnostics"))
                    or _text((item.get("details") or {}).get("text")),
                    expression=tuple(str(e) for e in expression if isinstance(e, str)),
                )
            )
        return cls(issues=tuple(issues), raw=dict(data))

    @property
    def errors(self) -> tuple[Issue, ...]:
        return tuple(i for i in self.issues if i.severity in ("fatal", "error"))

    def summary(self) -> str:
        """The most severe diagnostics, for messages."""
        shown = self.errors or self.issues
        return "; ".join(i.diagnostics or i.code for i in shown[:3])


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


class FhirError(Exception):
    """Root of every error the FHIR client raises."""

    def __init__(self, message: str, *, request: RequestInfo) -> None:
        super().__init__(message)
        self.message = message
        self.request = request

    def __str__(self) -> str:
        return f"{self.message} ({self.request})"


class TransportError(FhirError):
    """No usable response: connection refused or reset, DNS, TLS, or a timeout. Retryable."""


class MalformedResponse(FhirError):
    """A successful status with a body that is not the FHIR JSON the interaction promises."""

    def __init__(self, message: str, *, request: RequestInfo, status: int) -> None:
        super().__init__(message, request=request)
        self.status = status


class StatusError(FhirError):
    """The server answered with an error status; ``outcome`` is its OperationOutcome, if any."""

    def __init__(
        self,
        message: str,
        *,
        request: RequestInfo,
        status: int,
        outcome: Outcome | None = None,
    ) -> None:
        if outcome is not None and outcome.summary():
            message = f"{message}: {outcome.summary()}"
        super().__init__(message, request=request)
        self.status = status
        self.outcome = outcome

    def __str__(self) -> str:
        return f"HTTP {self.status}: {self.message} ({self.request})"


class InvalidResource(StatusError):
    """400 or 422: the content was rejected; the outcome names the offending elements."""


class Unauthorized(StatusError):
    """401: the credentials were missing, wrong or expired."""


class TokenEndpointError(Unauthorized):
    """The SMART token endpoint refused to issue an access token.

    ``error`` and ``error_description`` are the OAuth 2.0 error response (RFC 6749 §5.2); the
    request is the token request, so the message names the endpoint that refused.
    """

    def __init__(
        self,
        message: str,
        *,
        request: RequestInfo,
        status: int,
        error: str | None,
        error_description: str | None,
    ) -> None:
        detail = ": ".join(p for p in (error, error_description) if p)
        super().__init__(
            f"{message}: {detail}" if detail else message, request=request, status=status
        )
        self.error = error
        self.error_description = error_description


class Forbidden(StatusError):
    """403: authenticated but not permitted (for SMART, usually a missing scope)."""


class NotFound(StatusError):
    """404: no such resource (or the server does not know the type)."""


class Gone(StatusError):
    """410: the resource existed and was deleted."""


class VersionConflict(StatusError):
    """An If-Match update lost a race: the resource is no longer at ``expected`` version."""

    def __init__(
        self,
        message: str,
        *,
        request: RequestInfo,
        status: int,
        resource: str,
        expected: str,
        outcome: Outcome | None = None,
    ) -> None:
        super().__init__(message, request=request, status=status, outcome=outcome)
        self.resource = resource
        self.expected = expected


class PreconditionFailed(StatusError):
    """A conditional create or update matched more than one resource, so the server did nothing.

    ``criteria`` is the search that was ambiguous (kept off the message: it may hold identifiers).
    """

    def __init__(
        self,
        message: str,
        *,
        request: RequestInfo,
        status: int,
        criteria: str | None,
        outcome: Outcome | None = None,
    ) -> None:
        super().__init__(message, request=request, status=status, outcome=outcome)
        self.criteria = criteria


class RateLimited(StatusError):
    """429: too many requests; ``retry_after`` is the server's requested pause in seconds."""

    def __init__(
        self,
        message: str,
        *,
        request: RequestInfo,
        status: int,
        retry_after: float | None,
        outcome: Outcome | None = None,
    ) -> None:
        super().__init__(message, request=request, status=status, outcome=outcome)
        self.retry_after = retry_after


class ServerError(StatusError):
    """5xx: the server failed; 502, 503 and 504 are transient and retried."""

    def __init__(
        self,
        message: str,
        *,
        request: RequestInfo,
        status: int,
        retry_after: float | None = None,
        outcome: Outcome | None = None,
    ) -> None:
        super().__init__(message, request=request, status=status, outcome=outcome)
        self.retry_after = retry_after


class PartiallyApplied(FhirError):
    """Entries applied one by one (no transaction support) stopped at a failure.

    ``applied`` holds the results of the entries that did take effect, so that the caller can
    record their ids; the failing error is ``__cause__`` and its request is this error's request.
    """

    def __init__(
        self,
        message: str,
        *,
        request: RequestInfo,
        applied: Sequence[EntryResult],
        failed_key: str,
    ) -> None:
        super().__init__(message, request=request)
        self.applied = tuple(applied)
        self.failed_key = failed_key
