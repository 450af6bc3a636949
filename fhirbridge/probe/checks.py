"""One function per check of one resource type, and the table the runner walks.

Each check function returns a short note on success and raises ``CheckFailed`` (or lets the
client's ``FhirError`` through) on failure; the runner turns either into a result. Beside each
check, the table says what the CapabilityStatement would claim for it (``advertised``), when
fhirbridge depends on it (``required``) and what it needs from earlier checks (``needs``).

What is *required* follows what fhirbridge would actually do on this server: where a type
advertises ``identifier`` search, pushes use conditional creates, so identifier search and
conditional create must work; where it does not, pushes PUT client-assigned ids instead, so
that must work and a failing identifier search is a finding, not a blocker. Whether a check is
*tried* does not depend on the statement at all: statements under- and over-claim.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fhirbridge.fhir import Capabilities, Gone, NotFound, Outcome, Support, VersionConflict
from fhirbridge.probe.records import identifiers_of
from fhirbridge.probe.report import Check
from fhirbridge.probe.run import CheckFailed, ProbeRun, Subject, server_text

__all__ = [
    "DELETE_CHECK",
    "MAX_PAGES",
    "SEARCH_PARAMS_SHOWN",
    "TYPE_CHECKS",
    "USED_INTERACTIONS",
    "TypeCheck",
    "narrative",
    "points_at",
    "split_page",
]

# What the summary shows of each type's statement.
SEARCH_PARAMS_SHOWN = ("identifier", "_lastUpdated", "patient")
USED_INTERACTIONS = (
    "create",
    "read",
    "vread",
    "update",
    "delete",
    "history-instance",
    "search-type",
)
# A busy server can hold many resources updated since the probe began; paging stops here.
MAX_PAGES = 25


# ---------------------------------------------------------------------- the checks


async def create(run: ProbeRun, subject: Subject, patient: str) -> str:
    record = run.record(subject.type, "main", patient)
    result = await run.client.create(record.resource)
    run.track(subject.type, result.id)
    if result.id is None:
        raise CheckFailed("the server returned no id (no body, no Location)")
    subject.id = result.id
    subject.identifier = record.identifier
    subject.first_version = subject.version = result.version_id
    subject.resource = result.resource
    if subject.resource is None:
        # Prefer: return=representation is only a preference; read what was stored.
        subject.resource = (await run.client.read(subject.type, subject.id)).resource
    subject.last_updated = meta(subject.resource, "lastUpdated")
    if subject.version is None:
        subject.first_version = subject.version = meta(subject.resource, "versionId")
    missing = [
        name
        for name, value in (("versionId", subject.version), ("lastUpdated", subject.last_updated))
        if value is None
    ]
    if missing:
        raise CheckFailed(f"created {subject.reference} without meta.{' or meta.'.join(missing)}")
    return f"{subject.reference} version {subject.version} (HTTP {result.status})"


async def read(run: ProbeRun, subject: Subject, patient: str) -> str:
    assert subject.id is not None
    assert subject.identifier is not None
    result = await run.client.read(subject.type, subject.id)
    if not _carries(result.resource or {}, subject.identifier):
        raise CheckFailed("the stored resource lost its identifier")
    return f"version {result.version_id}"


async def client_assigned_id(run: ProbeRun, subject: Subject, patient: str) -> str:
    rid = str(uuid.uuid4())
    resource = {"id": rid, **run.record(subject.type, "client-id", patient).resource}
    result = await run.client.update(resource)
    run.track(subject.type, result.id or rid)
    subject.others.append(result.id or rid)
    if result.id not in (None, rid):
        raise CheckFailed(f"PUT {subject.type}/{rid} stored the resource as id {result.id}")
    return f"PUT {subject.type}/{rid}: HTTP {result.status}"


async def search_by_identifier(run: ProbeRun, subject: Subject, patient: str) -> str:
    assert subject.identifier is not None
    identifier = subject.identifier
    token = f"{identifier['system']}|{identifier['value']}"
    page = await run.client.search_bundle(subject.type, {"identifier": token})
    matches, remarks = split_page(page)
    unrelated = [m for m in matches if not _carries(m, identifier)]
    if unrelated:
        raise CheckFailed(
            joined(
                remarks,
                f"returned {len(unrelated)} resource(s) without the identifier: "
                "the parameter was ignored",
            )
        )
    if subject.id not in {m.get("id") for m in matches}:
        raise CheckFailed(joined(remarks, f"{subject.reference} was not found"))
    return joined(remarks, "found by identifier")


async def search_by_patient(run: ProbeRun, subject: Subject, patient: str) -> str:
    matches: list[dict[str, Any]] = []
    remarks: list[str] = []
    pages = 0
    async for page in run.client.search_pages(subject.type, {"patient": patient}):
        found, said = split_page(page)
        matches.extend(found)
        remarks.extend(said)
        pages += 1
        if subject.id in {m.get("id") for m in matches} or pages >= MAX_PAGES:
            break
    unrelated = [m for m in matches if patient not in json.dumps(m)]
    if unrelated:
        raise CheckFailed(
            joined(
                remarks,
                f"returned {len(unrelated)} resource(s) of other patients: "
                "the parameter was ignored",
            )
        )
    if subject.id not in {m.get("id") for m in matches}:
        raise CheckFailed(joined(remarks, f"{subject.reference} was not found"))
    return joined(remarks, f"found by {patient}")


async def conditional_create(run: ProbeRun, subject: Subject, patient: str) -> str:
    rtype = subject.type
    record = run.record(rtype, "conditional", patient)
    first = await run.client.create(record.resource, if_none_exist=record.criteria)
    run.track(rtype, first.id)
    if first.id is not None:
        subject.others.append(first.id)
    second = await run.client.create(record.resource, if_none_exist=record.criteria)
    run.track(rtype, second.id)
    if second.id is not None and second.id != first.id:
        subject.others.append(second.id)
    if first.id is None or second.id is None:
        raise CheckFailed("the server returned no id for a conditional create")
    if second.id != first.id or second.created:
        raise CheckFailed(
            f"the second create made {rtype}/{second.id} next to {rtype}/{first.id}: "
            "If-None-Exist was ignored and retries would duplicate records"
        )
    return f"HTTP {first.status}, then HTTP {second.status} with the same {rtype}/{first.id}"


async def update(run: ProbeRun, subject: Subject, patient: str) -> str:
    assert subject.resource is not None
    if subject.version is None:
        raise CheckFailed("no version to put in If-Match")
    # Changed content: some servers make no new version for an identical update.
    changed = {**subject.resource, "text": narrative("fhirbridge server probe (updated)")}
    result = await run.client.update(changed, if_match=subject.version)
    if result.version_id is None or result.version_id == subject.version:
        raise CheckFailed(f"the update kept version {subject.version}: no new version")
    before, subject.version, subject.updated = subject.version, result.version_id, True
    subject.resource = result.resource or changed
    return f"version {before} -> {result.version_id}"


async def stale_update(run: ProbeRun, subject: Subject, patient: str) -> str:
    # fhirbridge finds concurrent edits by the 412 on a stale If-Match, whatever the
    # statement's ``versioning`` says: that is what is tried.
    assert subject.resource is not None
    assert subject.first_version is not None
    stale = subject.first_version
    resource = {**subject.resource, "text": narrative("fhirbridge server probe (stale write)")}
    try:
        result = await run.client.update(resource, if_match=stale)
    except VersionConflict as conflict:
        note = "" if conflict.status == 412 else " (R4 says 412)"
        return f"HTTP {conflict.status}{note}: {server_text(conflict)}"
    current, subject.version = subject.version, result.version_id or subject.version
    raise CheckFailed(
        f"accepted If-Match version {stale} while at version {current}: "
        "concurrent edits would be overwritten silently"
    )


async def vread(run: ProbeRun, subject: Subject, patient: str) -> str:
    assert subject.id is not None
    assert subject.first_version is not None
    result = await run.client.vread(subject.type, subject.id, subject.first_version)
    got = meta(result.resource, "versionId") or result.version_id
    if got != subject.first_version:
        raise CheckFailed(f"asked for version {subject.first_version}, got version {got}")
    later = f" after the update to {subject.version}" if subject.updated else ""
    return f"version {subject.first_version}{later}"


async def history(run: ProbeRun, subject: Subject, patient: str) -> str:
    assert subject.id is not None
    versions = [
        meta(version, "versionId") for version in await run.client.history(subject.type, subject.id)
    ]
    wanted = 2 if subject.updated else 1
    if len(versions) < wanted:
        raise CheckFailed(f"{len(versions)} version(s) listed, expected at least {wanted}")
    if subject.version is not None and subject.version not in versions:
        raise CheckFailed(f"version {subject.version} is not in the history")
    return f"{len(versions)} versions"


async def last_updated(run: ProbeRun, subject: Subject, patient: str) -> str:
    assert subject.last_updated is not None
    rtype, bound = subject.type, subject.last_updated
    ours = {i for i in (subject.id, *subject.others) if i is not None}
    params = [("_lastUpdated", f"ge{bound}"), ("_sort", "_lastUpdated"), ("_count", "1")]
    floor = _instant(bound)
    seen: set[str] = set()
    remarks: list[str] = []
    pages = matched = 0
    async for page in run.client.search_pages(rtype, params):
        pages += 1
        matches, said = split_page(page)
        remarks.extend(r for r in said if r not in remarks)
        matched += len(matches)
        for match in matches:
            when = _instant(meta(match, "lastUpdated"))
            if floor is not None and when is not None and when < floor:
                raise CheckFailed(
                    joined(
                        remarks,
                        f"returned {rtype}/{match.get('id')} last updated before "
                        f"{bound}: the parameter was ignored",
                    )
                )
            seen.add(str(match.get("id")))
        if ours <= seen or pages >= MAX_PAGES:
            break
    missing = sorted(ours - seen)
    if missing:
        raise CheckFailed(
            joined(
                remarks,
                f"{len(missing)} of the probe's {len(ours)} {rtype} not found "
                f"within {pages} page(s)",
            )
        )
    note = f"{len(ours)} probe records over {pages} pages"
    if pages == 1 and matched > 1:
        note = f"{len(ours)} probe records on one page (_count=1 was not honoured)"
    return joined(remarks, note)


async def delete(run: ProbeRun, subject: Subject, patient: str) -> str:
    assert subject.id is not None
    await run.client.delete(subject.type, subject.id)
    try:
        await run.client.read(subject.type, subject.id)
    except (NotFound, Gone) as gone:
        return f"then read answers HTTP {gone.status}"
    raise CheckFailed(f"{subject.reference} can still be read after the delete")


# ---------------------------------------------------------------------- the table

Action = Callable[[ProbeRun, Subject, str], Awaitable[str]]
Claimed = Callable[[Capabilities, str], Support]


@dataclass(frozen=True)
class TypeCheck:
    check: Check
    action: Action
    advertised: Claimed
    required: Callable[[Capabilities, str], bool]
    needs: Callable[[Subject], str | None]  # why it cannot run yet; None when it can


def _interaction(name: str) -> Claimed:
    return lambda caps, rtype: caps.supports(rtype, name)


def _search_param(name: str) -> Claimed:
    return lambda caps, rtype: caps.supports_search_param(rtype, name)


def _update_create(caps: Capabilities, rtype: str) -> Support:
    """PUT to a new id creates it: ``update`` plus ``updateCreate`` in the statement."""
    if caps.resource(rtype) is None:
        return Support.UNKNOWN
    for rest in caps.raw.get("rest") or []:
        for entry in rest.get("resource") or []:
            if entry.get("type") == rtype:
                return Support.of(
                    caps.supports(rtype, "update") is Support.SUPPORTED
                    and bool(entry.get("updateCreate"))
                )
    return Support.UNKNOWN


def _identifier_search_used(caps: Capabilities, rtype: str) -> bool:
    return caps.supports_search_param(rtype, "identifier") is Support.SUPPORTED


def _always(caps: Capabilities, rtype: str) -> bool:
    return True


def _never(caps: Capabilities, rtype: str) -> bool:
    return False


def _nothing(subject: Subject) -> str | None:
    return None


def _created(subject: Subject) -> str | None:
    return None if subject.id is not None else f"needs a created {subject.type}"


def _versioned(subject: Subject) -> str | None:
    if subject.id is None or subject.first_version is None:
        return f"needs a created {subject.type} with a version id"
    return None


def _updated(subject: Subject) -> str | None:
    return None if subject.updated else "needs a successful update"


def _dated(subject: Subject) -> str | None:
    return None if subject.last_updated is not None else f"needs a created {subject.type}"


# In this order: the client-assigned id comes before the searches, so that with two probe
# records of the type on the server, a search that ignores its parameter returns the other
# one and is caught, even on an empty server.
TYPE_CHECKS: tuple[TypeCheck, ...] = (
    TypeCheck(Check.CREATE, create, _interaction("create"), _always, _nothing),
    TypeCheck(Check.READ, read, _interaction("read"), _always, _created),
    TypeCheck(
        Check.CLIENT_ID,
        client_assigned_id,
        _update_create,
        lambda caps, rtype: not _identifier_search_used(caps, rtype),
        _nothing,
    ),
    TypeCheck(
        Check.SEARCH_IDENTIFIER,
        search_by_identifier,
        _search_param("identifier"),
        _identifier_search_used,
        _created,
    ),
    # fhirbridge reads by identifier and _lastUpdated; patient search is for engineers.
    TypeCheck(Check.SEARCH_PATIENT, search_by_patient, _search_param("patient"), _never, _created),
    TypeCheck(
        Check.CONDITIONAL_CREATE,
        conditional_create,
        lambda caps, rtype: caps.supports_conditional_create(rtype),
        _identifier_search_used,
        _nothing,
    ),
    TypeCheck(Check.UPDATE, update, _interaction("update"), _always, _created),
    TypeCheck(
        Check.STALE_UPDATE,
        stale_update,
        lambda caps, rtype: caps.supports_versioned_update(rtype),
        _always,
        _updated,
    ),
    # Nothing in fhirbridge reads a version by id; a server that cannot is worth knowing.
    TypeCheck(Check.VREAD, vread, _interaction("vread"), _never, _versioned),
    # The pull reads the path a referral Task took from its instance history where the server
    # keeps one, and judges the last move alone where it does not: useful, not required.
    TypeCheck(Check.HISTORY, history, _interaction("history-instance"), _never, _created),
    # The pull searches every mapped type by _lastUpdated: required everywhere.
    TypeCheck(Check.LAST_UPDATED, last_updated, _search_param("_lastUpdated"), _always, _dated),
)
# Run at the end, when the probe cleans up (the main record is the last of its type to go).
DELETE_CHECK = TypeCheck(Check.DELETE, delete, _interaction("delete"), _always, _created)


# ---------------------------------------------------------------------- helpers


def narrative(text: str) -> dict[str, str]:
    return {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{text}</div>'}


def split_page(page: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
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


def joined(remarks: Sequence[str], text: str) -> str:
    if not remarks:
        return text
    return f"{text} (server says: {'; '.join(remarks)})"


def meta(resource: Mapping[str, Any] | None, name: str) -> str | None:
    value = ((resource or {}).get("meta") or {}).get(name)
    return str(value) if value is not None else None


def points_at(reference: str, rtype: str, rid: str) -> bool:
    path = reference.split("/_history/", 1)[0].rstrip("/")
    return path == f"{rtype}/{rid}" or path.endswith(f"/{rtype}/{rid}")


def _carries(resource: Mapping[str, Any], identifier: Mapping[str, str]) -> bool:
    return any(
        i.get("system") == identifier["system"] and i.get("value") == identifier["value"]
        for i in identifiers_of(resource)
    )


def _instant(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
