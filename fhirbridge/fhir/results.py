"""What a FHIR write or read hands back: the resource plus the version facts around it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fhirbridge.fhir.errors import Outcome

__all__ = ["Location", "ResourceResult", "etag_version", "parse_location", "weak_etag"]

_LOCATION = re.compile(
    r"(?:^|/)(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/(?P<version>[^/?#]+))?/?$"
)
_ETAG = re.compile(r'^(?:W/)?"?(?P<version>[^"]+)"?$')


@dataclass(frozen=True)
class Location:
    type: str
    id: str
    version: str | None


def parse_location(value: str | None) -> Location | None:
    """``[base/]Type/id[/_history/vid]`` from a Location header or a bundle entry's location."""
    if not value:
        return None
    match = _LOCATION.search(value.split("?", 1)[0])
    if match is None:
        return None
    return Location(match["type"], match["id"], match["version"])


def etag_version(etag: str | None) -> str | None:
    """``W/"3"`` -> ``3``."""
    if not etag:
        return None
    match = _ETAG.match(etag.strip())
    return match["version"] if match else None


def weak_etag(version: str) -> str:
    """The If-Match value for a version id, accepting either ``3`` or ``W/"3"``."""
    return f'W/"{etag_version(version) or version}"'


@dataclass(frozen=True)
class ResourceResult:
    """A resource as the server returned it, with ``versionId``, ``ETag`` and ``Location``.

    ``resource`` is ``None`` when the server sent no representation (it may ignore
    ``Prefer: return=representation``); ``outcome`` is set when it sent an OperationOutcome instead.
    """

    status: int
    resource: dict[str, Any] | None
    version_id: str | None
    etag: str | None
    location: str | None
    last_modified: str | None = None
    outcome: Outcome | None = None

    @property
    def created(self) -> bool:
        """201: a new resource; a conditional create that found a match answers 200."""
        return self.status == 201

    @property
    def id(self) -> str | None:
        if self.resource is not None and isinstance(self.resource.get("id"), str):
            return str(self.resource["id"])
        loc = parse_location(self.location)
        return loc.id if loc else None

    @property
    def reference(self) -> str | None:
        """``Type/id`` for use in another resource's Reference."""
        rtype = self.resource.get("resourceType") if self.resource else None
        loc = parse_location(self.location)
        rtype = rtype or (loc.type if loc else None)
        rid = self.id
        return f"{rtype}/{rid}" if rtype and rid else None

    @classmethod
    def from_parts(
        cls,
        *,
        status: int,
        resource: dict[str, Any] | None,
        etag: str | None,
        location: str | None,
        last_modified: str | None = None,
        outcome: Outcome | None = None,
    ) -> ResourceResult:
        """Take the version from the resource, else the ETag, else the Location."""
        meta = (resource or {}).get("meta") or {}
        loc = parse_location(location)
        version = meta.get("versionId") or etag_version(etag) or (loc.version if loc else None)
        return cls(
            status=status,
            resource=resource,
            version_id=str(version) if version is not None else None,
            etag=etag,
            location=location,
            last_modified=last_modified or meta.get("lastUpdated"),
            outcome=outcome,
        )
