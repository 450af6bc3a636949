"""The async FHIR R4 REST client: the only code in fhirbridge that talks HTTP to a FHIR server.

Retry policy (why it is shaped this way):

* Only transient failures are retried: no response at all (connection errors, timeouts), 429, and
  502/503/504. A 500 is usually a bug that repeats; a 4xx never improves by itself.
* Only idempotent requests are retried. GET, PUT and DELETE are idempotent; a POST create is only
  when it is conditional (If-None-Exist), and a transaction/batch only when none of its entries is
  a plain POST create. Retrying anything else after a lost response could create a duplicate.
* The wait is exponential with jitter, unless the server sent ``Retry-After``; then that is the
  wait for that attempt. A Retry-After longer than ``Backoff.max_retry_after`` ends the retries:
  a worker should reschedule such work rather than hold a request open for minutes.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlencode, urlsplit

import httpx
import orjson
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential_jitter

from fhirbridge.fhir.capabilities import Capabilities
from fhirbridge.fhir.errors import (
    FhirError,
    Forbidden,
    Gone,
    InvalidResource,
    MalformedResponse,
    NotFound,
    Outcome,
    PreconditionFailed,
    RateLimited,
    RequestInfo,
    ServerError,
    StatusError,
    TransportError,
    Unauthorized,
    VersionConflict,
)
from fhirbridge.fhir.results import ResourceResult, etag_version, weak_etag

__all__ = ["FHIR_JSON", "Backoff", "FhirClient", "SearchParams"]

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})

SearchParams = Mapping[str, str | int | Sequence[str]] | Sequence[tuple[str, str]]
Sleep = Callable[[float], Awaitable[None]]

_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: ``initial * 2**n + uniform(0, jitter)``, capped."""

    initial: float = 0.5
    maximum: float = 30.0
    jitter: float = 0.5
    max_retry_after: float = 120.0


@dataclass(frozen=True)
class _VersionCheck:
    """An If-Match update: a 412 (or 409) means the version moved on."""

    resource: str
    expected: str


@dataclass(frozen=True)
class _Criteria:
    """A conditional create/update: a 412 means the criteria matched several resources."""

    criteria: str


_Precondition = _VersionCheck | _Criteria | None


class FhirClient:
    """An async FHIR R4 client bound to one server base URL.

    Use as ``async with FhirClient(base, auth=...) as fhir:``. ``transport`` replaces the network
    (tests pass an ``httpx.MockTransport``); ``sleep`` replaces the wait between retries.
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth: httpx.Auth | None = None,
        timeout: float | httpx.Timeout = 30.0,
        max_retries: int = 3,
        transport: httpx.AsyncBaseTransport | None = None,
        backoff: Backoff | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self._backoff = backoff or Backoff()
        self._sleep = sleep
        self._exponential = wait_exponential_jitter(
            multiplier=self._backoff.initial,
            max=self._backoff.maximum,
            jitter=self._backoff.jitter,
        )
        self._http = httpx.AsyncClient(
            auth=auth,
            timeout=timeout,
            transport=transport,
            headers={"Accept": FHIR_JSON, "User-Agent": "fhirbridge"},
        )
        self._capabilities: Capabilities | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def __repr__(self) -> str:
        return f"FhirClient({self.base_url!r})"

    # ------------------------------------------------------------------ interactions

    async def capabilities(self, *, refresh: bool = False) -> Capabilities:
        """The server's CapabilityStatement, fetched once per client."""
        if self._capabilities is None or refresh:
            response = await self._send("GET", self._url("metadata"), idempotent=True)
            body = self._json_body(response, expect="CapabilityStatement")
            self._capabilities = Capabilities.from_statement(body)
        return self._capabilities

    async def read(self, rtype: str, rid: str) -> ResourceResult:
        response = await self._send("GET", self._url(rtype, rid), idempotent=True)
        return self._resource_result(response, expect=rtype, required=True)

    async def vread(self, rtype: str, rid: str, version: str) -> ResourceResult:
        url = self._url(rtype, rid, "_history", _checked_id(version))
        response = await self._send("GET", url, idempotent=True)
        return self._resource_result(response, expect=rtype, required=True)

    async def create(
        self, resource: Mapping[str, Any], *, if_none_exist: str | None = None
    ) -> ResourceResult:
        """POST a new resource. With ``if_none_exist`` (a search such as
        ``identifier=system|value``) the server returns the existing match instead (status 200),
        which makes the request safe to retry."""
        rtype = _resource_type(resource)
        headers = _write_headers()
        if if_none_exist:
            headers["If-None-Exist"] = if_none_exist
        response = await self._send(
            "POST",
            self._url(rtype),
            body=resource,
            headers=headers,
            idempotent=bool(if_none_exist),
            precondition=_Criteria(if_none_exist) if if_none_exist else None,
        )
        return self._resource_result(response, expect=rtype)

    async def update(
        self, resource: Mapping[str, Any], *, if_match: str | None = None
    ) -> ResourceResult:
        """PUT ``resource`` at its id. ``if_match`` is the version the change was based on (``3``
        or ``W/"3"``); if the server has moved on, ``VersionConflict`` is raised."""
        rtype = _resource_type(resource)
        rid = resource.get("id")
        if not isinstance(rid, str):
            raise ValueError(f"update needs a {rtype} with an id")
        headers = _write_headers()
        precondition: _Precondition = None
        if if_match:
            headers["If-Match"] = weak_etag(if_match)
            expected = etag_version(if_match) or if_match
            precondition = _VersionCheck(resource=f"{rtype}/{rid}", expected=expected)
        response = await self._send(
            "PUT",
            self._url(rtype, rid),
            body=resource,
            headers=headers,
            idempotent=True,
            precondition=precondition,
        )
        return self._resource_result(response, expect=rtype)

    async def conditional_update(
        self, resource: Mapping[str, Any], query: str | Mapping[str, str]
    ) -> ResourceResult:
        """PUT ``[type]?query``: update the single match, or create when nothing matches."""
        rtype = _resource_type(resource)
        criteria = query if isinstance(query, str) else urlencode(query)
        if not criteria:
            raise ValueError("conditional update needs search criteria")
        response = await self._send(
            "PUT",
            f"{self._url(rtype)}?{criteria}",
            body=resource,
            headers=_write_headers(),
            idempotent=True,
            precondition=_Criteria(criteria),
        )
        return self._resource_result(response, expect=rtype)

    async def delete(self, rtype: str, rid: str) -> None:
        await self._send("DELETE", self._url(rtype, rid), idempotent=True)

    async def search_bundle(self, rtype: str, params: SearchParams | None = None) -> dict[str, Any]:
        """The first searchset page as a Bundle."""
        response = await self._send("GET", self._url(rtype), params=_query(params), idempotent=True)
        return self._json_body(response, expect="Bundle")

    async def search_pages(
        self, rtype: str, params: SearchParams | None = None
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Searchset pages, fetching the ``next`` page only when the previous one is consumed."""
        page = await self.search_bundle(rtype, params)
        seen: set[str] = set()
        while True:
            yield page
            next_url = _link(page, "next")
            if next_url is None:
                return
            self._check_next_link(next_url, seen)
            seen.add(next_url)
            response = await self._send("GET", next_url, idempotent=True)
            page = self._json_body(response, expect="Bundle")

    async def search(
        self, rtype: str, params: SearchParams | None = None
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Matching resources across all pages, one page in memory at a time.

        Entries in ``include`` or ``outcome`` mode are skipped; read those from ``search_pages``.
        """
        async for page in self.search_pages(rtype, params):
            for entry in page.get("entry") or []:
                mode = (entry.get("search") or {}).get("mode", "match")
                resource = entry.get("resource")
                if mode == "match" and isinstance(resource, dict):
                    yield resource

    async def history(
        self, rtype: str, rid: str, *, since: str | None = None, count: int | None = None
    ) -> list[dict[str, Any]]:
        """Every version of one resource (instance ``_history``), oldest first.

        ``since`` (an instant) asks only for versions made at or after it; ``count`` is the page
        size asked for. All ``next`` pages are read. What this relies on: each version carries
        ``meta.lastUpdated`` and a later version of one resource never has an earlier one than
        the version before it, so versions are ordered by ``meta.lastUpdated`` (stable, starting
        from the server's own order reversed, since R4 lists history newest first). Version ids
        are opaque and never compared as numbers. Deletions (entries without a resource) are
        left out. A server without history answers with its own error: ``NotFound`` (404) or a
        ``StatusError`` with status 405.
        """
        params: list[tuple[str, str | int | float | bool | None]] = []
        if since is not None:
            params.append(("_since", since))
        if count is not None:
            params.append(("_count", str(count)))
        url = self._url(rtype, rid, "_history")
        response = await self._send("GET", url, params=params, idempotent=True)
        newest_first: list[dict[str, Any]] = []
        seen: set[str] = set()
        while True:
            page = self._json_body(response, expect="Bundle")
            for entry in page.get("entry") or []:
                resource = entry.get("resource") if isinstance(entry, Mapping) else None
                if isinstance(resource, dict) and resource.get("resourceType") == rtype:
                    newest_first.append(resource)
            next_url = _link(page, "next")
            if next_url is None:
                break
            self._check_next_link(next_url, seen)
            seen.add(next_url)
            response = await self._send("GET", next_url, idempotent=True)
        return _oldest_first(newest_first)

    async def transaction(self, bundle: Mapping[str, Any]) -> dict[str, Any]:
        """POST a ``transaction`` Bundle; returns the ``transaction-response`` Bundle."""
        return await self._post_bundle(bundle, "transaction")

    async def batch(self, bundle: Mapping[str, Any]) -> dict[str, Any]:
        """POST a ``batch`` Bundle; each entry of the response has its own status."""
        return await self._post_bundle(bundle, "batch")

    async def _post_bundle(self, bundle: Mapping[str, Any], kind: str) -> dict[str, Any]:
        if bundle.get("resourceType") != "Bundle" or bundle.get("type") != kind:
            raise ValueError(f"expected a Bundle of type {kind}")
        response = await self._send(
            "POST",
            self.base_url,
            body=bundle,
            headers=_write_headers(),
            idempotent=_bundle_is_idempotent(bundle),
        )
        body = self._json_body(response, expect="Bundle")
        if body.get("type") != f"{kind}-response":
            raise MalformedResponse(
                f"expected a {kind}-response Bundle, got type {body.get('type')!r}",
                request=_info(response.request),
                status=response.status_code,
            )
        return body

    # ------------------------------------------------------------------ sending

    def _url(self, *segments: str) -> str:
        rtype, *rest = segments
        if rtype != "metadata" and not _TYPE.match(rtype):
            raise ValueError(f"not a FHIR resource type: {rtype!r}")
        for seg in rest:
            if seg != "_history":
                _checked_id(seg)
        return "/".join((self.base_url, *segments))

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: list[tuple[str, str | int | float | bool | None]] | None = None,
        headers: dict[str, str] | None = None,
        idempotent: bool,
    ) -> httpx.Response:
        """A request outside the FHIR REST verbs (Bulk Data kick-off, status polling, cancel):
        same auth, retries (when ``idempotent``) and typed errors; the raw response back."""
        return await self._send(method, url, params=params, headers=headers, idempotent=idempotent)

    @asynccontextmanager
    async def stream(
        self, url: str, *, headers: dict[str, str] | None = None, send_credentials: bool = True
    ) -> AsyncIterator[httpx.Response]:
        """GET ``url`` with the body left on the wire, to read in chunks. Error statuses raise
        the typed errors. ``send_credentials=False`` sends no Authorization at all (a file on
        another host, or one the server says needs no token)."""
        no_credentials: dict[str, Any] = {} if send_credentials else {"auth": None}
        async with self._http.stream("GET", url, headers=headers, **no_credentials) as response:
            if response.status_code >= 400:
                await response.aread()
                raise _status_error(response, None)
            yield response

    async def _send(
        self,
        method: str,
        url: str,
        *,
        params: list[tuple[str, str | int | float | bool | None]] | None = None,
        body: Mapping[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        idempotent: bool,
        precondition: _Precondition = None,
    ) -> httpx.Response:
        content = _encode(body) if body is not None else None
        retrying = AsyncRetrying(
            stop=self._should_stop,
            wait=self._wait,
            retry=retry_if_exception(lambda e: idempotent and _is_transient(e)),
            sleep=self._sleep,
            before_sleep=_log_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                request = self._http.build_request(
                    method, url, params=params, content=content, headers=headers
                )
                return await self._attempt(request, precondition)
        raise AssertionError("tenacity ended without an outcome")  # pragma: no cover

    async def _attempt(self, request: httpx.Request, precondition: _Precondition) -> httpx.Response:
        try:
            response = await self._http.send(request)
        except httpx.TimeoutException as exc:
            raise TransportError(
                f"timed out ({type(exc).__name__})", request=_info(request)
            ) from exc
        except httpx.TransportError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}", request=_info(request)) from exc
        except httpx.DecodingError as exc:
            raise MalformedResponse(
                f"undecodable response body: {exc}", request=_info(request), status=0
            ) from exc
        if response.status_code >= 400:
            raise _status_error(response, precondition)
        return response

    def _should_stop(self, state: RetryCallState) -> bool:
        if state.attempt_number > self.max_retries:
            return True
        retry_after = _retry_after_of(state)
        return retry_after is not None and retry_after > self._backoff.max_retry_after

    def _wait(self, state: RetryCallState) -> float:
        retry_after = _retry_after_of(state)
        if retry_after is not None:
            return retry_after
        return float(self._exponential(state))

    # ------------------------------------------------------------------ parsing

    def _json_body(self, response: httpx.Response, *, expect: str) -> dict[str, Any]:
        body = _decode(response)
        if body is None:
            raise MalformedResponse(
                f"expected a {expect} but the body is empty",
                request=_info(response.request),
                status=response.status_code,
            )
        if body.get("resourceType") != expect:
            raise MalformedResponse(
                f"expected a {expect} but got {body.get('resourceType')!r}",
                request=_info(response.request),
                status=response.status_code,
            )
        return body

    def _resource_result(
        self, response: httpx.Response, *, expect: str, required: bool = False
    ) -> ResourceResult:
        body = _decode(response)
        outcome = None
        if body is not None and body.get("resourceType") == "OperationOutcome" and not required:
            outcome, body = Outcome.from_json(body), None
        if body is None and required:
            raise MalformedResponse(
                f"expected a {expect} but the body is empty",
                request=_info(response.request),
                status=response.status_code,
            )
        if body is not None and body.get("resourceType") != expect:
            raise MalformedResponse(
                f"expected a {expect} but got {body.get('resourceType')!r}",
                request=_info(response.request),
                status=response.status_code,
            )
        headers = response.headers
        return ResourceResult.from_parts(
            status=response.status_code,
            resource=body,
            etag=headers.get("ETag"),
            location=headers.get("Location") or headers.get("Content-Location"),
            last_modified=headers.get("Last-Modified"),
            outcome=outcome,
        )

    def _check_next_link(self, next_url: str, seen: set[str]) -> None:
        # Credentials go with every request, so a next link may not lead to another origin.
        base, nxt = urlsplit(self.base_url), urlsplit(next_url)
        if (base.scheme, base.netloc) != (nxt.scheme, nxt.netloc):
            raise MalformedResponse(
                f"next link leaves the server ({nxt.scheme}://{nxt.netloc})",
                request=RequestInfo("GET", next_url),
                status=200,
            )
        if next_url in seen:
            raise MalformedResponse(
                "next link repeats an earlier page",
                request=RequestInfo("GET", next_url),
                status=200,
            )


# ---------------------------------------------------------------------- helpers


def _info(request: httpx.Request) -> RequestInfo:
    return RequestInfo(request.method, str(request.url))


def _write_headers() -> dict[str, str]:
    return {"Content-Type": FHIR_JSON, "Prefer": "return=representation"}


def _checked_id(value: str) -> str:
    if not _ID.match(value):
        raise ValueError(f"not a FHIR id: {value!r}")
    return value


def _resource_type(resource: Mapping[str, Any]) -> str:
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str) or not _TYPE.match(rtype):
        raise ValueError("resource has no valid resourceType")
    return rtype


def _query(params: SearchParams | None) -> list[tuple[str, str | int | float | bool | None]]:
    if params is None:
        return []
    if isinstance(params, Mapping):
        pairs: list[tuple[str, str | int | float | bool | None]] = []
        for name, value in params.items():
            if isinstance(value, str | int):
                pairs.append((name, str(value)))
            else:
                pairs.extend((name, str(v)) for v in value)
        return pairs
    return [(str(name), str(value)) for name, value in params]


def _link(bundle: Mapping[str, Any], relation: str) -> str | None:
    for link in bundle.get("link") or []:
        if link.get("relation") == relation and isinstance(link.get("url"), str):
            return str(link["url"])
    return None


def _oldest_first(newest_first: list[dict[str, Any]]) -> list[dict[str, Any]]:
    versions = list(reversed(newest_first))
    stamped = [(stamp, v) for v in versions if (stamp := _last_updated(v)) is not None]
    if len(stamped) < len(versions):
        return versions  # nothing better than the server's own order
    return [v for _, v in sorted(stamped, key=lambda pair: pair[0])]  # stable


def _last_updated(resource: Mapping[str, Any]) -> datetime | None:
    text = (resource.get("meta") or {}).get("lastUpdated")
    if not isinstance(text, str):
        return None
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _bundle_is_idempotent(bundle: Mapping[str, Any]) -> bool:
    for entry in bundle.get("entry") or []:
        request = entry.get("request") or {}
        if str(request.get("method", "")).upper() == "POST" and not request.get("ifNoneExist"):
            return False
    return True


def _encode(body: Mapping[str, Any]) -> bytes:
    """A request body as JSON (UTF-8). orjson: a transaction of a few hundred resources is
    written many times faster than by the standard library."""
    try:
        return orjson.dumps(body)
    except TypeError:
        # What orjson refuses (an integer beyond 64 bits, a key that is no string, a lone
        # surrogate) is written, or refused, as the standard library always did.
        return json.dumps(body).encode()


def _loads(response: httpx.Response) -> Any:
    """A response body as JSON: orjson (a transaction-response of a few hundred resources is
    read several times faster); what it refuses (another charset than UTF-8, NaN) is read as
    httpx always did, or refused with its ValueError."""
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.json()


def _decode(response: httpx.Response) -> dict[str, Any] | None:
    if not response.content.strip():
        return None
    try:
        body = _loads(response)
    except ValueError as exc:
        raise MalformedResponse(
            "response body is not JSON",
            request=_info(response.request),
            status=response.status_code,
        ) from exc
    if not isinstance(body, dict):
        raise MalformedResponse(
            "response body is not a JSON object",
            request=_info(response.request),
            status=response.status_code,
        )
    return body


def _outcome(response: httpx.Response) -> Outcome | None:
    try:
        return Outcome.from_json(_loads(response))
    except ValueError:
        # Proxies answer errors with HTML; the status still says what happened.
        return None


def _status_error(response: httpx.Response, precondition: _Precondition) -> StatusError:
    status = response.status_code
    request = _info(response.request)
    outcome = _outcome(response)
    if isinstance(precondition, _VersionCheck) and status in (409, 412):
        # R4 says 412 for a failed If-Match; HAPI answers 409. Both mean "re-read and merge".
        return VersionConflict(
            f"{precondition.resource} is no longer at version {precondition.expected}",
            request=request,
            status=status,
            resource=precondition.resource,
            expected=precondition.expected,
            outcome=outcome,
        )
    if status == 412:
        return PreconditionFailed(
            "conditional request matched more than one resource",
            request=request,
            status=status,
            criteria=precondition.criteria if isinstance(precondition, _Criteria) else None,
            outcome=outcome,
        )
    if status in (400, 422):
        return InvalidResource("rejected", request=request, status=status, outcome=outcome)
    simple: dict[int, tuple[type[StatusError], str]] = {
        401: (Unauthorized, "not authenticated"),
        403: (Forbidden, "not permitted"),
        404: (NotFound, "not found"),
        410: (Gone, "deleted"),
    }
    if status in simple:
        cls, message = simple[status]
        return cls(message, request=request, status=status, outcome=outcome)
    if status == 429:
        return RateLimited(
            "rate limited",
            request=request,
            status=status,
            retry_after=parse_retry_after(response),
            outcome=outcome,
        )
    if status >= 500:
        return ServerError(
            "server error",
            request=request,
            status=status,
            retry_after=parse_retry_after(response),
            outcome=outcome,
        )
    return StatusError("request failed", request=request, status=status, outcome=outcome)


def parse_retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds: delta-seconds, or an HTTP-date.

    An HTTP-date is measured from the response's own ``Date`` header when there is one, so that
    a skew between our clock and the server's does not stretch or shrink the wait.
    """
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    when = _http_date(value)
    if when is None:
        return None
    now = _http_date(response.headers.get("Date", "")) or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def _http_date(value: str) -> datetime | None:
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, TransportError):
        return True
    return isinstance(exc, StatusError) and exc.status in RETRYABLE_STATUSES


def _retry_after_of(state: RetryCallState) -> float | None:
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, RateLimited | ServerError):
        return exc.retry_after
    return None


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    if isinstance(exc, FhirError):
        log.warning(
            "retrying %s after attempt %d failed (%s); waiting %.2fs",
            exc.request.redacted(),
            state.attempt_number,
            type(exc).__name__,
            wait,
        )
