"""A second, stricter FHIR R4 server behaviour: a programmable proxy in front of sekmet.

sekmet is lenient. Real engines are not, and each differs in its own way. This proxy forwards
every request to a real sekmet server and changes only what its ``Quirks`` name, so the sync
engine is tested against a behaviour that is strict where production servers are strict:

- ``opaque_versions`` — version ids are UUIDs, never numbers (``meta.versionId``, ``ETag``,
  ``Location``/``Content-Location`` ``/_history/<vid>``, history and transaction-response
  Bundles). FHIR makes version ids opaque strings: Google Cloud Healthcare API answers ids that
  are not numbers, and HAPI's numbers are an implementation detail it does not promise. A client
  that counts versions 1, 2, 3 breaks there.
- ``max_transaction_entries`` — a transaction with more entries than this, when any entry is
  conditional (``ifNoneExist`` or a conditional URL), is refused with ``too-costly``. Managed
  servers (Azure Health Data Services, Google Cloud Healthcare API) cap bundle sizes, and
  conditional entries, which search before they write, are what makes a bundle expensive. The
  limits there are larger; 8 makes the suite meet the refusal with the demo's own data.
- ``max_transaction_updates`` — a transaction with more PUT entries than this is refused with
  ``too-costly`` (the same per-bundle write limits).
- ``referential_integrity`` — a create or update whose relative literal references ``Type/id`` do
  not resolve is refused, as HAPI does by default ("Resource Patient/abc not found, specified in
  path: Goal.subject"). References to ``urn:uuid`` fullUrls and to resources written by the same
  bundle are fine; contained ``#x``, absolute URLs of other hosts, conditional and
  identifier-only references are not checked. A transaction is refused as a whole and nothing is
  forwarded; in a batch only the offending entry fails.
- ``advertise_versioning`` — the CapabilityStatement says ``versioning: versioned`` (or what is
  set) although ``If-Match`` is honoured (412 on a stale version): servers under-state what they
  do in generated statements, so a client must test behaviour, not trust the statement.
- ``put_create_status`` — create-by-PUT (an update of an id that did not exist) answers 200, not
  201; clients must accept any 2xx for a write.
- ``search_total`` — ``False`` drops ``Bundle.total`` from searchset pages (optional in the
  spec; large servers skip the count), so a client must page by ``next`` links.

Everything else passes through unchanged (status codes, ``Retry-After``, content types, bulk
``$export`` polling), with upstream URLs rewritten to the proxy's so that paging links, bulk
manifests and ``Location`` headers lead back through the proxy. JSON is rewritten, XML is not.
Refusals are HTTP 400 with an OperationOutcome and are logged in ``StrictFhirServer.refused``.

Run it as a program (it starts its own sekmet in DIR, prints the base URL, serves until SIGTERM):
``python -m tests.servers.strict --port 0 --workdir DIR [--max-entries 8 --max-updates 50 ...]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import signal
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fhirbridge.localserver import LocalFhirServer

__all__ = ["Quirks", "StrictFhirServer", "main", "start_strict_server"]

log = logging.getLogger(__name__)

Json = dict[str, Any]
FHIR_JSON = "application/fhir+json"
_TYPE_ID = r"(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})"
_RELATIVE_REFERENCE = re.compile(rf"^{_TYPE_ID}(?:/_history/[^/]+)?$")
_HISTORY_URL = re.compile(rf"(?:^|(?<=/)){_TYPE_ID}/_history/(?P<vid>\d+)")
_NUMERIC_ETAG = re.compile(r'^(?:W/)?"?(?P<vid>\d+)"?$')
# sekmet's 412 text names numeric versions; an opaque server must not leak them.
_VERSION_CONFLICT = re.compile(r'If-Match (?:W/)?"?[^" ]+"? but current is \S+')
# Hop-by-hop headers, and the length of bodies it rewrites, are the proxy's own business.
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade", "content-length"}
_DROP_REQUEST = _HOP_BY_HOP | {"host", "accept-encoding"}
_DROP_RESPONSE = _HOP_BY_HOP | {"content-encoding", "date", "server"}


@dataclass(frozen=True)
class Quirks:
    """How the strict server differs from sekmet (see the module docstring for why)."""

    opaque_versions: bool = True  # UUID version ids everywhere, never numbers
    max_transaction_entries: int | None = 8  # when any entry is conditional; None: no limit
    max_transaction_updates: int | None = 50  # PUT entries per transaction; None: no limit
    referential_integrity: bool = True  # refuse writes whose Type/id references dangle
    advertise_versioning: str = "versioned"  # CapabilityStatement's claim (If-Match still works)
    put_create_status: int = 200  # the status of create-by-PUT
    search_total: bool = False  # False: searchset pages carry no Bundle.total


class _Answer(Exception):
    """The proxy answers this itself, without forwarding; ``refusal`` goes to the log."""

    def __init__(self, status: int, issues: list[Json], refusal: str | None = None) -> None:
        super().__init__(issues[0]["diagnostics"])
        self.status = status
        self.issues = issues
        self.refusal = refusal

    @classmethod
    def error(cls, status: int, code: str, diagnostics: str, refusal: str | None = None) -> _Answer:
        return cls(status, [_issue(code, diagnostics)], refusal)

    def outcome(self) -> Json:
        return {"resourceType": "OperationOutcome", "issue": self.issues}

    def entry_response(self) -> Json:
        status = f"{self.status} {HTTPStatus(self.status).phrase}"
        return {"response": {"status": status, "outcome": self.outcome()}}


def _outcome(code: str, diagnostics: str) -> Json:
    return {"resourceType": "OperationOutcome", "issue": [_issue(code, diagnostics)]}


def _issue(code: str, diagnostics: str, expression: str | None = None) -> Json:
    found: Json = {"severity": "error", "code": code, "diagnostics": diagnostics}
    if expression:
        found["expression"] = [expression]
    return found


class _VersionMap:
    """(type, id, upstream number) ↔ UUID; kept in ``path`` (JSON lines) when given.

    With a file, a proxy restarted on the same sekmet data answers the same version ids, so
    clients' ETags stay valid across a restart, as they would on a real server.
    """

    def __init__(self, path: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._path = path
        self._opaque: dict[tuple[str, str, str], str] = {}
        self._numeric: dict[str, tuple[str, str, str]] = {}
        if path is not None and path.exists():
            for line in path.read_text().splitlines():
                rtype, rid, number, vid = json.loads(line)
                self._opaque[(rtype, rid, number)] = vid
                self._numeric[vid] = (rtype, rid, number)

    def opaque(self, rtype: str, rid: str, number: str) -> str:
        key = (rtype, rid, number)
        with self._lock:
            if key not in self._opaque:
                vid = str(uuid.uuid4())
                self._opaque[key] = vid
                self._numeric[vid] = key
                if self._path is not None:
                    with self._path.open("a") as file:
                        file.write(json.dumps([*key, vid]) + "\n")
            return self._opaque[key]

    def numeric(self, rtype: str, rid: str, opaque: str) -> str | None:
        """The upstream number of ``opaque``, or None if it is no version of ``rtype/rid``."""
        with self._lock:
            key = self._numeric.get(opaque)
        return key[2] if key is not None and key[:2] == (rtype, rid) else None


def _etag_value(etag: str) -> str:
    return etag.strip().removeprefix("W/").strip('"')


def _references(node: Any, path: str) -> Iterator[tuple[str, str]]:
    """(element path, reference) for every literal reference, paths as HAPI names them."""
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield path, node["reference"]
        for key, value in node.items():
            if key != "reference":
                yield from _references(value, f"{path}.{key}")
    elif isinstance(node, list):
        for item in node:
            yield from _references(item, path)


class StrictFhirServer:
    """The strict proxy on 127.0.0.1, in a background thread, in front of ``upstream``."""

    def __init__(
        self,
        upstream: LocalFhirServer,
        *,
        quirks: Quirks = Quirks(),
        port: int | None = None,
        versions_file: Path | None = None,
    ) -> None:
        self.upstream = upstream
        self.quirks = quirks
        self.refused: list[str] = []
        self.errors: list[str] = []  # the proxy's own failures (500s); empty unless it has a bug
        self._port = port or 0
        self._owns_upstream = False
        self._versions = _VersionMap(versions_file)
        self._client: httpx.AsyncClient | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        split = urlsplit(upstream.base_url)
        self._upstream_root = f"{split.scheme}://{split.netloc}"
        self._base_path = split.path.rstrip("/")
        # "(?!\d)": port 4000 must not match inside port 40001
        self._upstream_root_re = re.compile(re.escape(self._upstream_root) + r"(?!\d)")
        self._proxy_root_re: re.Pattern[bytes] | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("the strict server has no port until it is started")
        return self._port

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}{self._base_path}"

    def start(self, *, timeout: float = 30.0) -> StrictFhirServer:
        if self._thread is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))
        self._port = int(sock.getsockname()[1])
        self._proxy_root_re = re.compile(re.escape(self.root_url.encode()) + rb"(?!\d)")
        config = uvicorn.Config(
            self._app(),
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_keep_alive=30,
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True, name="strict-fhir"
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the strict FHIR proxy did not start on port {self._port}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is not None and thread is not None:
            server.should_exit = True
            thread.join(timeout=15)
        if self._owns_upstream:
            self.upstream.stop()

    def __enter__(self) -> StrictFhirServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _app(self) -> Starlette:
        @asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            limits = httpx.Limits(max_connections=64, max_keepalive_connections=16)
            async with httpx.AsyncClient(timeout=120.0, limits=limits) as client:
                self._client = client
                yield
            self._client = None

        methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
        return Starlette(
            routes=[Route("/{path:path}", self._handle, methods=methods)], lifespan=lifespan
        )

    # ------------------------------------------------------------------ one request

    async def _handle(self, request: Request) -> Response:
        try:
            return await self._exchange(request)
        except _Answer as answer:
            if answer.refusal:
                self._refuse(answer.refusal)
            return _json_response(answer.status, answer.outcome())
        except httpx.TransportError as exc:
            # what a gateway in front of a dead server says; clients retry a 502
            return _json_response(502, _outcome("transient", f"Upstream FHIR server: {exc!r}"))
        except Exception as exc:
            # a bug here must show as the proxy's, not be mistaken for the server's behaviour
            log.exception("strict FHIR proxy failed on %s %s", request.method, request.url.path)
            self.errors.append(f"{request.method} {request.url.path}: {exc!r}")
            return _json_response(500, _outcome("exception", f"Strict proxy failed: {exc!r}"))

    def _refuse(self, refusal: str) -> None:
        log.info("refused: %s", refusal)
        self.refused.append(refusal)

    async def _exchange(self, request: Request) -> Response:
        path = request.url.path
        segs = self._fhir_segments(path)
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _DROP_REQUEST]
        assert self._proxy_root_re is not None
        assert self._client is not None
        raw = self._proxy_root_re.sub(self._upstream_root.encode(), await request.body())
        context = _Exchange(request.method, segs or [], bundle_entries=None)
        if segs is not None:
            path, headers, raw = await self._inbound(context, path, headers, raw)
        url = f"{self._upstream_root}{path}"
        if request.url.query:
            url += f"?{request.url.query}"
        upstream = await self._client.request(
            request.method, url, headers=headers, content=raw or None
        )
        return self._outbound(context, upstream)

    def _fhir_segments(self, path: str) -> list[str] | None:
        if path != self._base_path and not path.startswith(f"{self._base_path}/"):
            return None
        return [s for s in path[len(self._base_path) :].split("/") if s]

    # ------------------------------------------------------------------ requests

    async def _inbound(
        self, ex: _Exchange, path: str, headers: list[tuple[str, str]], raw: bytes
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        method, segs = ex.method, ex.segs
        body = _json_or_none(raw) if method in ("POST", "PUT") else None
        if not segs and method == "POST" and isinstance(body, dict) and _is_bundle_request(body):
            body = await self._inbound_bundle(ex, body)
            return path, headers, json.dumps(body).encode()
        if self.quirks.opaque_versions and len(segs) >= 2:
            rtype, rid = segs[0], segs[1]
            headers = self._translate_conditions(rtype, rid, headers)
            if len(segs) == 4 and segs[2] == "_history" and method in ("GET", "HEAD"):
                number = self._versions.numeric(rtype, rid, segs[3])
                if number is None:
                    raise _Answer.error(
                        404, "not-found", f"{rtype}/{rid}/_history/{segs[3]} not found"
                    )
                path = f"{self._base_path}/{rtype}/{rid}/_history/{number}"
        writes = (method == "POST" and len(segs) == 1) or (method == "PUT" and len(segs) <= 2)
        checked = writes and self.quirks.referential_integrity
        if checked and isinstance(body, dict) and body.get("resourceType") == segs[0]:
            [dangling] = await self._dangling([body], provided=set())
            if dangling:
                raise _dangling_answer(dangling, segs[0], in_bundle=False)
        return path, headers, raw

    def _translate_conditions(
        self, rtype: str, rid: str, headers: list[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for name, value in headers:
            if name.lower() == "if-match":
                number = self._versions.numeric(rtype, rid, _etag_value(value))
                if number is None:
                    raise _Answer.error(
                        412,
                        "conflict",
                        f"Version conflict: If-Match {value} is no version of {rtype}/{rid}",
                    )
                value = f'W/"{number}"'
            elif name.lower() == "if-none-match" and value.strip() != "*":
                number = self._versions.numeric(rtype, rid, _etag_value(value))
                if number is None:
                    continue  # an unknown version never matches: read as if unconditional
                value = f'W/"{number}"'
            out.append((name, value))
        return out

    async def _inbound_bundle(self, ex: _Exchange, bundle: Json) -> Json:
        entries: list[Json] = [e for e in bundle.get("entry") or [] if isinstance(e, dict)]
        atomic = bundle.get("type") == "transaction"
        if atomic:
            self._check_size(entries)
        answers: list[_Answer | None] = [self._translate_entry(e) for e in entries]
        if self.quirks.referential_integrity:
            checked = [i for i, e in enumerate(entries) if answers[i] is None and _writes(e)]
            resources = [entries[i]["resource"] for i in checked]
            found = await self._dangling(resources, _written_by(entries))
            for i, resource, dangling in zip(checked, resources, found, strict=True):
                if dangling:
                    name = entries[i].get("fullUrl") or resource.get("id") or "without id"
                    label = f"{bundle['type']} entry {i} ({resource['resourceType']} {name})"
                    answers[i] = _dangling_answer(dangling, label, in_bundle=True)
        failed = [a for a in answers if a is not None]
        if atomic and failed:
            # all or nothing: one refused entry refuses the transaction, nothing is forwarded
            issues = [issue for a in failed for issue in a.issues]
            refusals = [a.refusal for a in failed if a.refusal]
            raise _Answer(failed[0].status, issues, "; ".join(refusals) or None)
        for answer in failed:
            if answer.refusal:
                self._refuse(answer.refusal)
        ex.bundle_entries = entries
        ex.answers = answers
        forwarded = [e for e, a in zip(entries, answers, strict=True) if a is None]
        return {**bundle, "entry": forwarded}

    def _check_size(self, entries: list[Json]) -> None:
        limit, count = self.quirks.max_transaction_entries, len(entries)
        if limit is not None and count > limit and any(_is_conditional(e) for e in entries):
            raise _Answer.error(
                400,
                "too-costly",
                f"Transaction has {count} entries; this server accepts at "
                f"most {limit} when conditional entries are present",
                f"transaction of {count} entries over the limit of {limit}",
            )
        updates = sum(1 for e in entries if _method(e) == "PUT")
        limit = self.quirks.max_transaction_updates
        if limit is not None and updates > limit:
            raise _Answer.error(
                400,
                "too-costly",
                f"Transaction has {updates} updates (PUT entries); this "
                f"server accepts at most {limit}",
                f"transaction of {updates} updates over the limit of {limit}",
            )

    def _translate_entry(self, entry: Json) -> _Answer | None:
        """Opaque versions in ``request.ifMatch``/``ifNoneMatch`` and vread URLs → numbers."""
        request = entry.get("request")
        if not self.quirks.opaque_versions or not isinstance(request, dict):
            return None
        url = str(request.get("url", "")).removeprefix(f"{self.upstream.base_url}/")
        segs = url.split("?")[0].strip("/").split("/")
        if len(segs) < 2:
            return None
        rtype, rid = segs[0], segs[1]
        if request.get("ifMatch"):
            number = self._versions.numeric(rtype, rid, _etag_value(request["ifMatch"]))
            if number is None:
                return _Answer.error(
                    412,
                    "conflict",
                    f"Version conflict: If-Match {request['ifMatch']} is no "
                    f"version of {rtype}/{rid}",
                )
            request["ifMatch"] = f'W/"{number}"'
        if request.get("ifNoneMatch") and str(request["ifNoneMatch"]).strip() != "*":
            number = self._versions.numeric(rtype, rid, _etag_value(request["ifNoneMatch"]))
            if number is None:
                del request["ifNoneMatch"]
            else:
                request["ifNoneMatch"] = f'W/"{number}"'
        if len(segs) == 4 and segs[2] == "_history":
            number = self._versions.numeric(rtype, rid, segs[3])
            if number is None:
                return _Answer.error(404, "not-found", f"{url} not found")
            request["url"] = f"{rtype}/{rid}/_history/{number}"
        return None

    async def _dangling(
        self, resources: list[Json], provided: set[str]
    ) -> list[list[tuple[str, str]]]:
        """Per resource, (missing Type/id, element path) of references that resolve to nothing.

        Each target is looked up once, all at the same time.
        """
        wanted: list[dict[str, str]] = []
        for resource in resources:
            targets: dict[str, str] = {}
            for path, reference in _references(resource, str(resource.get("resourceType"))):
                target = self._local_target(reference)
                if target and reference not in provided and target not in provided:
                    targets.setdefault(target, path)
            wanted.append(targets)
        distinct = sorted({target for targets in wanted for target in targets})
        exists = await asyncio.gather(*(self._exists(target) for target in distinct))
        found = dict(zip(distinct, exists, strict=True))
        return [[(t, p) for t, p in targets.items() if not found[t]] for targets in wanted]

    def _local_target(self, reference: str) -> str | None:
        """``Type/id`` of a reference this server must resolve, None for unchecked kinds."""
        if reference.startswith(f"{self.upstream.base_url}/"):
            reference = reference.removeprefix(f"{self.upstream.base_url}/")
        match = _RELATIVE_REFERENCE.match(reference)
        return f"{match['type']}/{match['id']}" if match else None

    async def _exists(self, target: str) -> bool:
        assert self._client is not None
        response = await self._client.get(
            f"{self.upstream.base_url}/{target}", headers={"Accept": FHIR_JSON}
        )
        return response.status_code == 200

    # ------------------------------------------------------------------ responses

    def _outbound(self, ex: _Exchange, upstream: httpx.Response) -> Response:
        status = upstream.status_code
        content = upstream.content
        ctype = upstream.headers.get("content-type", "")
        body: Any = None
        if "ndjson" in ctype:
            lines = [json.loads(line) for line in content.decode().splitlines() if line.strip()]
            content = "".join(f"{json.dumps(self._rewrite_json(r))}\n" for r in lines).encode()
        elif "json" in ctype and _json_or_none(content) is not None:
            body = self._rewrite_json(json.loads(content))
            body = self._apply_quirks(ex, status, body)
            content = json.dumps(body, separators=(",", ":")).encode()
        if (
            ex.method == "PUT"
            and len(ex.segs) == 2
            and status == 201
            and self.quirks.put_create_status != 201
        ):
            status = self.quirks.put_create_status
        headers: list[tuple[bytes, bytes]] = []
        location = upstream.headers.get("location") or upstream.headers.get("content-location")
        for name, value in upstream.headers.multi_items():
            lowered = name.lower()
            if lowered in _DROP_RESPONSE and not (
                ex.method == "HEAD" and lowered == "content-length"
            ):
                continue
            if lowered in ("location", "content-location", "link"):
                value = self._rewrite_text(value)
            elif lowered == "etag" and self.quirks.opaque_versions:
                value = self._opaque_etag(value, self._owner(ex, body, location))
            headers.append((lowered.encode("latin-1"), value.encode("latin-1")))
        if ex.method != "HEAD" and status >= 200 and status not in (204, 304):
            headers.append((b"content-length", str(len(content)).encode()))
        response = Response(content=content if ex.method != "HEAD" else b"", status_code=status)
        response.raw_headers = headers
        return response

    def _rewrite_text(self, text: str) -> str:
        text = self._upstream_root_re.sub(self.root_url, text)
        if not self.quirks.opaque_versions:
            return text
        text = _HISTORY_URL.sub(
            lambda m: (
                f"{m['type']}/{m['id']}/_history/"
                + self._versions.opaque(m["type"], m["id"], m["vid"])
            ),
            text,
        )
        return _VERSION_CONFLICT.sub("If-Match does not name the current version", text)

    def _rewrite_json(self, node: Any) -> Any:
        """Upstream URLs → proxy URLs everywhere; numeric versions → UUIDs (when opaque)."""
        if isinstance(node, str):
            return self._rewrite_text(node)
        if isinstance(node, list):
            return [self._rewrite_json(item) for item in node]
        if not isinstance(node, dict):
            return node
        out = {key: self._rewrite_json(value) for key, value in node.items()}
        if not self.quirks.opaque_versions:
            return out
        meta = out.get("meta")
        if isinstance(meta, dict) and "versionId" in meta and out.get("id"):
            meta["versionId"] = self._versions.opaque(
                str(out.get("resourceType")), str(out["id"]), str(meta["versionId"])
            )
        if out.get("resourceType") == "Bundle":
            for entry in out.get("entry") or []:
                response = entry.get("response") if isinstance(entry, dict) else None
                if isinstance(response, dict) and response.get("etag"):
                    owner = _entry_owner(entry)
                    response["etag"] = self._opaque_etag(response["etag"], owner)
        return out

    def _opaque_etag(self, etag: str, owner: tuple[str, str] | None) -> str:
        match = _NUMERIC_ETAG.match(etag.strip())
        if match is None or owner is None:
            return etag
        return f'W/"{self._versions.opaque(owner[0], owner[1], match["vid"])}"'

    def _owner(self, ex: _Exchange, body: Any, location: str | None) -> tuple[str, str] | None:
        """The resource an ``ETag`` header belongs to."""
        if location:
            found = re.search(rf"(?:^|/){_TYPE_ID}/_history/", location)
            if found:
                return found["type"], found["id"]
        if isinstance(body, dict) and body.get("id") and body.get("resourceType"):
            return str(body["resourceType"]), str(body["id"])
        return (ex.segs[0], ex.segs[1]) if len(ex.segs) >= 2 else None

    def _apply_quirks(self, ex: _Exchange, status: int, body: Any) -> Any:
        if not isinstance(body, dict):
            return body
        kind = body.get("resourceType")
        if kind == "CapabilityStatement":
            for rest in body.get("rest") or []:
                for resource in rest.get("resource") or []:
                    resource["versioning"] = self.quirks.advertise_versioning
        elif kind == "Bundle" and body.get("type") == "searchset" and not self.quirks.search_total:
            body.pop("total", None)
        elif kind == "Bundle" and ex.bundle_entries is not None and status == 200:
            body["entry"] = self._merge_entry_responses(ex, body.get("entry") or [])
        return body

    def _merge_entry_responses(self, ex: _Exchange, responses: list[Json]) -> list[Json]:
        """Put the proxy's own per-entry refusals back in place; create-by-PUT status quirk."""
        assert ex.bundle_entries is not None
        remaining = iter(responses)
        merged: list[Json] = []
        for entry, answer in zip(ex.bundle_entries, ex.answers, strict=True):
            if answer is not None:
                merged.append(answer.entry_response())
                continue
            response = next(remaining, {"response": {"status": "500 Internal Server Error"}})
            status = str((response.get("response") or {}).get("status", ""))
            url = str((entry.get("request") or {}).get("url", ""))
            by_id = "?" not in url and len(url.strip("/").split("/")) >= 2
            if _method(entry) == "PUT" and by_id and status.startswith("201"):
                code = self.quirks.put_create_status
                response["response"]["status"] = "200 OK" if code == 200 else str(code)
            merged.append(response)
        return merged


@dataclass
class _Exchange:
    """What the response rewriting needs to know about the request."""

    method: str
    segs: list[str]
    bundle_entries: list[Json] | None
    answers: list[_Answer | None] = field(default_factory=list)


def _method(entry: Json) -> str:
    return str((entry.get("request") or {}).get("method", "")).upper()


def _is_bundle_request(body: Json) -> bool:
    return body.get("resourceType") == "Bundle" and body.get("type") in ("transaction", "batch")


def _writes(entry: Json) -> bool:
    """A create or update of the entry's own resource (not an operation)."""
    resource = entry.get("resource")
    url = str((entry.get("request") or {}).get("url", "")).strip("/")
    return (
        _method(entry) in ("POST", "PUT")
        and isinstance(resource, dict)
        and url.split("?")[0].split("/")[0] == resource.get("resourceType")
        and "$" not in url
    )


def _is_conditional(entry: Json) -> bool:
    request = entry.get("request") or {}
    if _method(entry) in ("GET", "HEAD"):
        return False  # a query on a read is a search, not a condition
    return bool(request.get("ifNoneExist")) or "?" in str(request.get("url", ""))


def _written_by(entries: list[Json]) -> set[str]:
    """fullUrls and ``Type/id`` of everything a bundle creates or updates."""
    written: set[str] = set()
    for entry in entries:
        if _method(entry) not in ("POST", "PUT"):
            continue
        if entry.get("fullUrl"):
            written.add(str(entry["fullUrl"]))
            match = re.search(rf"(?:^|/){_TYPE_ID}$", str(entry["fullUrl"]))
            if match:
                written.add(f"{match['type']}/{match['id']}")
        url = str((entry.get("request") or {}).get("url", "")).split("?")[0].strip("/")
        if _method(entry) == "PUT" and _RELATIVE_REFERENCE.match(url):
            written.add(url)
    return written


def _entry_owner(entry: Json) -> tuple[str, str] | None:
    resource = entry.get("resource")
    if isinstance(resource, dict) and resource.get("id") and resource.get("resourceType"):
        return str(resource["resourceType"]), str(resource["id"])
    for url in ((entry.get("response") or {}).get("location"), entry.get("fullUrl")):
        match = re.search(rf"(?:^|/){_TYPE_ID}(?:/_history/[^/]+)?$", str(url or ""))
        if match:
            return match["type"], match["id"]
    return None


def _dangling_answer(dangling: list[tuple[str, str]], label: str, *, in_bundle: bool) -> _Answer:
    """HAPI's words; in a bundle, prefixed by the entry (e.g. "Transaction entry 3 (Goal x)")."""
    prefix = f"{label[0].upper()}{label[1:]}: " if in_bundle else ""
    issues = [
        _issue(
            "processing", f"{prefix}Resource {target} not found, specified in path: {path}", path
        )
        for target, path in dangling
    ]
    missing = ", ".join(f"{target} ({path})" for target, path in dangling)
    return _Answer(400, issues, f"{label} refers to missing {missing}")


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw.strip() else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None  # not ours to judge: the upstream answers it


def _json_response(status: int, body: Json) -> Response:
    return Response(json.dumps(body), status_code=status, media_type=f"{FHIR_JSON}; charset=utf-8")


def start_strict_server(
    workdir: Path, quirks: Quirks = Quirks(), *, port: int | None = None
) -> StrictFhirServer:
    """Start a sekmet upstream in ``workdir`` and the strict proxy; ``stop()`` stops both."""
    upstream = LocalFhirServer(workdir=workdir).start()
    versions = workdir / "strict-versions.jsonl"
    server = StrictFhirServer(upstream, quirks=quirks, port=port, versions_file=versions)
    server._owns_upstream = True
    try:
        return server.start()
    except BaseException:
        upstream.stop()
        raise


def _limit(text: str) -> int | None:
    return None if text.lower() in ("none", "0", "unlimited") else int(text)


def main(argv: list[str] | None = None) -> int:
    defaults = Quirks()
    parser = argparse.ArgumentParser(
        prog="python -m tests.servers.strict",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--workdir", type=Path, default=None, help="sekmet's data (default: temp)")
    parser.add_argument(
        "--max-entries",
        type=_limit,
        default=defaults.max_transaction_entries,
        help="transaction entries when any is conditional ('none': no limit)",
    )
    parser.add_argument(
        "--max-updates",
        type=_limit,
        default=defaults.max_transaction_updates,
        help="PUT entries per transaction ('none': no limit)",
    )
    parser.add_argument(
        "--opaque-versions", action=argparse.BooleanOptionalAction, default=defaults.opaque_versions
    )
    parser.add_argument(
        "--referential-integrity",
        action=argparse.BooleanOptionalAction,
        default=defaults.referential_integrity,
    )
    parser.add_argument("--advertise-versioning", default=defaults.advertise_versioning)
    parser.add_argument("--put-create-status", type=int, default=defaults.put_create_status)
    parser.add_argument(
        "--search-total", action=argparse.BooleanOptionalAction, default=defaults.search_total
    )
    args = parser.parse_args(argv)
    quirks = Quirks(
        opaque_versions=args.opaque_versions,
        max_transaction_entries=args.max_entries,
        max_transaction_updates=args.max_updates,
        referential_integrity=args.referential_integrity,
        advertise_versioning=args.advertise_versioning,
        put_create_status=args.put_create_status,
        search_total=args.search_total,
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per forwarded request
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="strict-fhir-"))
    server = start_strict_server(workdir, quirks, port=args.port)
    try:
        print(server.base_url, flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
