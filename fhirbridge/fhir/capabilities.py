"""What a FHIR server says it supports, read from its CapabilityStatement (``GET /metadata``).

A CapabilityStatement is a claim, not a contract. sekmet, for one, accepts Goal resources although
its statement does not list Goal, and public servers list types whose writes they then refuse. So a
type or interaction that is *listed* answers yes or no, and one that is *not listed* answers
``Support.UNKNOWN``: callers try it and let the server's error decide, instead of refusing work the
server would have done.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Capabilities", "ResourceCapabilities", "Support"]

_OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"


class Support(enum.Enum):
    SUPPORTED = "supported"
    UNSUPPORTED = "unsupported"
    UNKNOWN = "unknown"

    @classmethod
    def of(cls, flag: bool) -> Support:
        return cls.SUPPORTED if flag else cls.UNSUPPORTED


@dataclass(frozen=True)
class ResourceCapabilities:
    """``rest.resource`` for one type."""

    type: str
    interactions: frozenset[str] = frozenset()
    versioning: str | None = None
    conditional_create: bool = False
    conditional_update: bool = False
    search_params: frozenset[str] = frozenset()

    @property
    def versioned_update(self) -> bool:
        """The server honours If-Match on update (``versioning = versioned-update``)."""
        return self.versioning == "versioned-update"


@dataclass(frozen=True)
class Capabilities:
    """The server-level facts fhirbridge plans with."""

    fhir_version: str | None
    software: str | None
    resources: Mapping[str, ResourceCapabilities]
    system_interactions: frozenset[str] = frozenset()
    formats: frozenset[str] = frozenset()
    smart_token_url: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_statement(cls, statement: Mapping[str, Any]) -> Capabilities:
        """Build from a CapabilityStatement JSON; only ``rest`` in server mode is read."""
        rest: Mapping[str, Any] = next(
            (r for r in statement.get("rest") or [] if r.get("mode", "server") == "server"),
            {},
        )
        resources = {}
        for entry in rest.get("resource") or []:
            rtype = entry.get("type")
            if not isinstance(rtype, str):
                continue
            resources[rtype] = ResourceCapabilities(
                type=rtype,
                interactions=_codes(entry.get("interaction")),
                versioning=entry.get("versioning"),
                conditional_create=bool(entry.get("conditionalCreate", False)),
                conditional_update=bool(entry.get("conditionalUpdate", False)),
                search_params=frozenset(
                    p["name"]
                    for p in entry.get("searchParam") or []
                    if isinstance(p.get("name"), str)
                ),
            )
        software = statement.get("software") or {}
        return cls(
            fhir_version=statement.get("fhirVersion"),
            software=software.get("name"),
            resources=resources,
            system_interactions=_codes(rest.get("interaction")),
            formats=frozenset(str(f) for f in statement.get("format") or []),
            smart_token_url=_smart_token_url(rest.get("security") or {}),
            raw=dict(statement),
        )

    @property
    def transaction(self) -> bool:
        return "transaction" in self.system_interactions

    @property
    def batch(self) -> bool:
        return "batch" in self.system_interactions

    def resource(self, rtype: str) -> ResourceCapabilities | None:
        return self.resources.get(rtype)

    def supports(self, rtype: str, interaction: str) -> Support:
        """``interaction`` is an R4 TypeRestfulInteraction code: read, vread, update, create, …"""
        res = self.resources.get(rtype)
        if res is None:
            return Support.UNKNOWN
        return Support.of(interaction in res.interactions)

    def supports_conditional_create(self, rtype: str) -> Support:
        res = self.resources.get(rtype)
        return Support.UNKNOWN if res is None else Support.of(res.conditional_create)

    def supports_conditional_update(self, rtype: str) -> Support:
        res = self.resources.get(rtype)
        return Support.UNKNOWN if res is None else Support.of(res.conditional_update)

    def supports_versioned_update(self, rtype: str) -> Support:
        res = self.resources.get(rtype)
        return Support.UNKNOWN if res is None else Support.of(res.versioned_update)

    def supports_search_param(self, rtype: str, name: str) -> Support:
        res = self.resources.get(rtype)
        return Support.UNKNOWN if res is None else Support.of(name in res.search_params)


def _codes(items: object) -> frozenset[str]:
    if not isinstance(items, list):
        return frozenset()
    return frozenset(
        i["code"] for i in items if isinstance(i, dict) and isinstance(i.get("code"), str)
    )


def _smart_token_url(security: Mapping[str, Any]) -> str | None:
    for ext in security.get("extension") or []:
        if ext.get("url") != _OAUTH_URIS:
            continue
        for sub in ext.get("extension") or []:
            if sub.get("url") == "token" and isinstance(sub.get("valueUri"), str):
                return str(sub["valueUri"])
    return None
