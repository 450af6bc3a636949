"""A FHIR Bulk Data ($export) client: kick-off, polling, download, resume and cancel.

Flow (Bulk Data Access IG): GET ``[base]/$export`` (or ``Patient/$export``,
``Group/[id]/$export``) with ``Prefer: respond-async`` -> 202 and a ``Content-Location`` status
URL -> poll it (202 with ``Retry-After`` and ``X-Progress`` while the server works) -> 200 with a
manifest of NDJSON files -> download each, streaming.

Why it is shaped this way:

* Requests go through the ``FhirClient`` the caller built, so its auth (SMART Backend Services
  included), transport, timeouts and retry policy apply unchanged (``FhirClient.request`` for
  kick-off, polling and cancel; ``FhirClient.stream`` for the files).
* The wait between polls is the server's ``Retry-After`` (seconds or an HTTP date), clamped to
  ``PollPolicy`` bounds so a server asking for an hour does not stall a job silently, and the
  whole polling time is bounded too. A 429 while polling is a wait, not a failure.
* The output folder keeps a small state file (see ``state``): a re-run polls the same status URL
  or downloads only what is missing. A status URL answering 404/410 means the export is gone.
* The access token goes to a file URL only when the manifest says ``requiresAccessToken`` and the
  file is on the FHIR server's own origin: a token is never handed to another host.
* Ctrl-C (KeyboardInterrupt, or the task being cancelled) sends DELETE to the status URL so the
  server can drop the job, unless the caller asks to keep it for a later resume.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlencode

from fhirbridge.bulk.download import fetch_file, same_origin
from fhirbridge.bulk.errors import (
    DownloadIncomplete,
    ExportExpired,
    ExportFailed,
    ExportTimedOut,
    ManifestError,
    StateMismatch,
)
from fhirbridge.bulk.manifest import Manifest, ManifestFile, parse_manifest
from fhirbridge.bulk.state import STATE_FILE, DownloadedFile, ExportState
from fhirbridge.fhir import (
    FhirClient,
    FhirError,
    Forbidden,
    Gone,
    Issue,
    MalformedResponse,
    NotFound,
    Outcome,
    RateLimited,
    RequestInfo,
    ServerError,
    StatusError,
    TransportError,
    Unauthorized,
)
from fhirbridge.fhir.client import FHIR_JSON, parse_retry_after

__all__ = [
    "BulkClient",
    "ExportLevel",
    "ExportRequest",
    "ExportResult",
    "FileProgress",
    "PollPolicy",
    "PollStatus",
]

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]
_TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})
_MAX_ISSUES = 100


class ExportLevel(StrEnum):
    SYSTEM = "system"
    PATIENT = "patient"
    GROUP = "group"


@dataclass(frozen=True)
class ExportRequest:
    """What to export: the level, and the ``_type``, ``_since`` and ``_typeFilter`` parameters."""

    level: ExportLevel = ExportLevel.SYSTEM
    group_id: str | None = None
    types: tuple[str, ...] = ()
    since: datetime | date | str | None = None
    type_filters: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (self.level is ExportLevel.GROUP) != (self.group_id is not None):
            raise ValueError("a group id goes with a Group-level export, and only with it")

    @property
    def path(self) -> str:
        if self.level is ExportLevel.PATIENT:
            return "Patient/$export"
        if self.level is ExportLevel.GROUP:
            return f"Group/{self.group_id}/$export"
        return "$export"

    def params(self) -> list[tuple[str, str]]:
        params: list[tuple[str, str]] = []
        if self.types:
            params.append(("_type", ",".join(self.types)))
        if self.since is not None:
            since = self.since.isoformat() if isinstance(self.since, date) else self.since
            params.append(("_since", since))
        params.extend(("_typeFilter", f) for f in self.type_filters)
        return params

    def url(self, base_url: str) -> str:
        query = urlencode(self.params())
        return f"{base_url.rstrip('/')}/{self.path}" + (f"?{query}" if query else "")


@dataclass(frozen=True)
class PollPolicy:
    """How long to wait between polls, and in all."""

    default_interval: float = 2.0  # when the server sends no Retry-After
    min_interval: float = 0.5
    max_interval: float = 120.0  # a longer Retry-After is shortened to this
    timeout: float = 6 * 3600.0  # total polling before ExportTimedOut

    def __post_init__(self) -> None:
        if not 0 <= self.min_interval <= self.max_interval:
            raise ValueError("need 0 <= min_interval <= max_interval")

    def interval(self, retry_after: float | None) -> float:
        wanted = self.default_interval if retry_after is None else retry_after
        return min(max(wanted, self.min_interval), self.max_interval)


@dataclass(frozen=True)
class PollStatus:
    """Reported before each wait: the server's ``X-Progress`` text, if any."""

    progress: str | None
    polls: int
    waited: float
    next_wait: float
    rate_limited: bool = False


@dataclass(frozen=True)
class FileProgress:
    """Reported while a file streams in (``received`` bytes so far) and when it is done."""

    url: str
    name: str
    type: str
    received: int
    expected_lines: int | None
    done: bool = False


Progress = PollStatus | FileProgress
OnProgress = Callable[[Progress], None]


@dataclass
class ExportResult:
    folder: Path
    manifest: Manifest
    files: list[DownloadedFile] = field(default_factory=list)  # the resources, NDJSON
    error_files: list[DownloadedFile] = field(default_factory=list)  # OperationOutcomes
    downloaded: int = 0  # files fetched by this run
    reused: int = 0  # files already complete from an earlier run
    issues: list[Issue] = field(default_factory=list)  # from the error files

    def files_of(self, resource_type: str) -> list[Path]:
        return [self.folder / f.name for f in self.files if f.type == resource_type]


def _ignore(_: Progress) -> None:
    return None


class BulkClient:
    """Bulk Data export over an existing ``FhirClient`` (its auth, transport and retries)."""

    def __init__(
        self,
        fhir: FhirClient,
        *,
        policy: PollPolicy | None = None,
        download_attempts: int = 3,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
    ) -> None:
        if download_attempts < 1:
            raise ValueError("download_attempts must be at least 1")
        self.fhir = fhir
        self.policy = policy or PollPolicy()
        self.download_attempts = download_attempts
        self._sleep = sleep
        self._clock = clock

    # -- the whole flow ---------------------------------------------------------------------

    async def export(
        self,
        request: ExportRequest,
        folder: Path,
        *,
        restart: bool = False,
        cancel_on_interrupt: bool = True,
        on_progress: OnProgress | None = None,
    ) -> ExportResult:
        """Kick off (or resume) ``request`` and download its files into ``folder``."""
        report = on_progress or _ignore
        url = request.url(self.fhir.base_url)
        if restart:
            await self._drop_previous(folder, url)
        state = ExportState.open(folder, url)
        try:
            if state.manifest is None:
                if state.status_url is None:
                    state.status_url = await self.kick_off(request)
                    state.save()
                state.manifest = await self.poll(state.status_url, on_progress=report)
                state.save()
            return await self._download_all(state, state.manifest, report)
        except (asyncio.CancelledError, KeyboardInterrupt):
            if cancel_on_interrupt and state.status_url is not None:
                await self.cancel(state.status_url)
                state.forget()
            raise

    async def _drop_previous(self, folder: Path, url: str) -> None:
        try:
            previous = ExportState.open(folder, url)
        except StateMismatch:  # an unreadable or foreign state is exactly what restart replaces
            (folder / STATE_FILE).unlink(missing_ok=True)
            return
        if previous.status_url is not None:
            await self.cancel(previous.status_url)
        previous.forget()

    # -- steps ------------------------------------------------------------------------------

    async def kick_off(self, request: ExportRequest) -> str:
        """Start the export; returns the status URL."""
        base = self.fhir.base_url
        response = await self.fhir.request(
            "GET",
            f"{base}/{request.path}",
            params=list(request.params()),
            headers={"Prefer": "respond-async", "Accept": FHIR_JSON},
            idempotent=True,
        )
        location = response.headers.get("Content-Location")
        if response.status_code != 202 or not location:
            raise MalformedResponse(
                f"kick-off answered {response.status_code} without a status URL"
                " (expected 202 with Content-Location)",
                request=RequestInfo("GET", str(response.request.url)),
                status=response.status_code,
            )
        return str(location)

    async def poll(self, status_url: str, *, on_progress: OnProgress | None = None) -> Manifest:
        """Poll until the manifest is ready, honouring Retry-After within ``policy``."""
        report = on_progress or _ignore
        started = self._clock()
        polls = 0
        while True:
            polls += 1
            rate_limited = False
            try:
                response = await self.fhir.request("GET", status_url, idempotent=True)
            except (NotFound, Gone) as error:
                raise ExportExpired(status_url, error.status) from error
            except RateLimited as error:
                rate_limited, progress, retry_after = True, None, error.retry_after
            except (Unauthorized, Forbidden):
                raise
            except StatusError as error:
                if error.status in _TRANSIENT_STATUSES:
                    raise
                raise ExportFailed(status_url, error.status, error.outcome) from error
            else:
                if response.status_code == 200:
                    try:
                        return parse_manifest(response.json())
                    except ValueError as error:
                        raise ManifestError("the body is not JSON") from error
                progress = response.headers.get("X-Progress")
                retry_after = parse_retry_after(response)
            wait = self.policy.interval(retry_after)
            waited = self._clock() - started
            if waited + wait > self.policy.timeout:
                raise ExportTimedOut(status_url, waited)
            report(PollStatus(progress, polls, waited, wait, rate_limited))
            await self._sleep(wait)

    async def cancel(self, status_url: str) -> None:
        """Ask the server to drop the export (DELETE on the status URL); best effort."""
        try:
            await self.fhir.request("DELETE", status_url, idempotent=True)
        except (NotFound, Gone):
            pass  # already gone: nothing left to cancel
        except FhirError as error:
            log.warning("could not cancel the bulk export: %s", type(error).__name__)

    # -- downloads --------------------------------------------------------------------------

    async def _download_all(
        self, state: ExportState, manifest: Manifest, report: OnProgress
    ) -> ExportResult:
        result = ExportResult(folder=state.folder, manifest=manifest)
        for entries, prefix, into in (
            (manifest.output, "", result.files),
            (manifest.error, "error.", result.error_files),
        ):
            for entry, name in zip(entries, _file_names(entries, prefix), strict=True):
                done = state.files.get(entry.url)
                if done is not None and done.name == name and done.is_intact(state.folder):
                    result.reused += 1
                else:
                    done = await self._download(state, manifest, entry, name, report)
                    result.downloaded += 1
                into.append(done)
        result.issues = _issues(state.folder, result.error_files)
        return result

    async def _download(
        self,
        state: ExportState,
        manifest: Manifest,
        entry: ManifestFile,
        name: str,
        report: OnProgress,
    ) -> DownloadedFile:
        send_token = manifest.requires_access_token and same_origin(entry.url, self.fhir.base_url)
        lines = 0
        for attempt in range(1, self.download_attempts + 1):
            received = 0

            def on_bytes(n: int) -> None:
                nonlocal received
                received += n
                report(FileProgress(entry.url, name, entry.type, received, entry.count))

            try:
                fetched = await fetch_file(
                    self.fhir,
                    entry.url,
                    state.folder / name,
                    send_token=send_token,
                    on_bytes=on_bytes,
                )
            except (NotFound, Gone) as error:
                raise ExportExpired(entry.url, error.status) from error
            except (TransportError, RateLimited, ServerError) as error:
                retryable = isinstance(error, TransportError) or (
                    error.status in _TRANSIENT_STATUSES
                )
                if not retryable or attempt == self.download_attempts:
                    raise
                await self._sleep(self._retry_wait(error, attempt))
                continue
            lines = fetched.lines
            if entry.count is None or entry.count == lines:
                done = DownloadedFile(name, entry.url, entry.type, fetched.size, lines)
                state.files[entry.url] = done
                state.save()
                report(FileProgress(entry.url, name, entry.type, fetched.size, lines, done=True))
                return done
            log.warning(
                "bulk file %s: %d lines where the manifest says %d; fetching again",
                name,
                lines,
                entry.count,
            )
            (state.folder / name).unlink(missing_ok=True)
            if attempt < self.download_attempts:
                await self._sleep(self._retry_wait(None, attempt))
        raise DownloadIncomplete(entry.url, entry.count or 0, lines, self.download_attempts)

    def _retry_wait(self, error: FhirError | None, attempt: int) -> float:
        retry_after = error.retry_after if isinstance(error, RateLimited | ServerError) else None
        if retry_after is not None:
            return self.policy.interval(retry_after)
        return self.policy.interval(self.policy.min_interval * 2 ** (attempt - 1))


def _file_names(entries: Sequence[ManifestFile], prefix: str) -> list[str]:
    """``CarePlan.ndjson``, then ``CarePlan.2.ndjson``... in manifest order, so a re-run names
    each file the same way."""
    seen: dict[str, int] = {}
    names = []
    for entry in entries:
        kind = "".join(c for c in entry.type if c.isalnum()) or "Resource"
        seen[kind] = seen.get(kind, 0) + 1
        suffix = "" if seen[kind] == 1 else f".{seen[kind]}"
        names.append(f"{prefix}{kind}{suffix}.ndjson")
    return names


def _issues(folder: Path, files: Sequence[DownloadedFile]) -> list[Issue]:
    issues: list[Issue] = []
    for item in files:
        with (folder / item.name).open("rb") as lines:
            for line in lines:
                if len(issues) >= _MAX_ISSUES:
                    return issues
                try:
                    outcome = Outcome.from_json(json.loads(line))
                except ValueError:
                    continue
                if outcome is not None:
                    issues.extend(outcome.issues)
    return issues
