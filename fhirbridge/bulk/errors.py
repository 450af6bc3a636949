"""Errors of the bulk exchange: the FHIR Bulk Data client, its downloads, imports and exports.

Messages name URLs without their query, files, line numbers and counts; never resource content::

    BulkError                root
    ├── ExportExpired        the status URL answers 404/410: the job expired or was cancelled
    ├── ExportFailed         the server reports the export itself failed (.outcome)
    ├── ExportTimedOut       polling gave up after the configured bound (.waited)
    ├── ManifestError        the completion manifest is not a Bulk Data manifest
    ├── DownloadIncomplete   a file's line count differs from the manifest after every retry
    ├── StateMismatch        the output folder holds the state of a different export
    └── RosterError          a roster file cannot be read (.path, .line)

Transport and status errors of the FHIR server itself stay the ``fhirbridge.fhir`` errors.
"""

from __future__ import annotations

from pathlib import Path

from fhirbridge.fhir import Outcome, RequestInfo

__all__ = [
    "BulkError",
    "DownloadIncomplete",
    "ExportExpired",
    "ExportFailed",
    "ExportTimedOut",
    "ManifestError",
    "RosterError",
    "StateMismatch",
]


def _shown(url: str) -> str:
    return RequestInfo("GET", url).redacted().removeprefix("GET ")


class BulkError(Exception):
    """Root of the bulk exchange errors."""


class ExportExpired(BulkError):
    def __init__(self, status_url: str, status: int) -> None:
        self.status_url = status_url
        self.status = status
        super().__init__(
            f"the export at {_shown(status_url)} is gone (HTTP {status}): it expired or was"
            " cancelled on the server; start a new export (--restart)"
        )


class ExportFailed(BulkError):
    def __init__(self, status_url: str, status: int, outcome: Outcome | None) -> None:
        self.status_url = status_url
        self.status = status
        self.outcome = outcome
        detail = outcome.summary() if outcome is not None else ""
        super().__init__(
            f"the server reports the export at {_shown(status_url)} failed (HTTP {status})"
            + (f": {detail}" if detail else "")
        )


class ExportTimedOut(BulkError):
    def __init__(self, status_url: str, waited: float) -> None:
        self.status_url = status_url
        self.waited = waited
        super().__init__(
            f"the export at {_shown(status_url)} was not complete after {waited:.0f}s of"
            " polling; run again to keep waiting (the status URL is kept)"
        )


class ManifestError(BulkError):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"not a Bulk Data manifest: {reason}")


class DownloadIncomplete(BulkError):
    def __init__(self, url: str, expected: int, received: int, attempts: int) -> None:
        self.url = url
        self.expected = expected
        self.received = received
        self.attempts = attempts
        super().__init__(
            f"{_shown(url)}: the manifest promises {expected} resources but {received} lines"
            f" arrived ({attempts} attempts)"
        )


class StateMismatch(BulkError):
    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class RosterError(BulkError):
    def __init__(self, path: Path, line: int | None, reason: str) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {reason}")
