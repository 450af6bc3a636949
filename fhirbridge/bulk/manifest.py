"""The Bulk Data completion manifest: which NDJSON files the export produced, and where."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fhirbridge.bulk.errors import ManifestError

__all__ = ["Manifest", "ManifestFile", "parse_manifest"]


@dataclass(frozen=True)
class ManifestFile:
    """One ``output`` or ``error`` entry; ``count`` is optional in the spec."""

    type: str
    url: str
    count: int | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.type, "url": self.url}
        if self.count is not None:
            data["count"] = self.count
        return data


@dataclass(frozen=True)
class Manifest:
    transaction_time: str
    request: str
    requires_access_token: bool
    output: tuple[ManifestFile, ...]
    error: tuple[ManifestFile, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "transactionTime": self.transaction_time,
            "request": self.request,
            "requiresAccessToken": self.requires_access_token,
            "output": [f.to_json() for f in self.output],
            "error": [f.to_json() for f in self.error],
        }


def parse_manifest(data: object) -> Manifest:
    if not isinstance(data, Mapping):
        raise ManifestError("the body is not a JSON object")
    requires = data.get("requiresAccessToken")
    if not isinstance(requires, bool):
        raise ManifestError("requiresAccessToken must be true or false")
    output = data.get("output")
    if not isinstance(output, list):
        raise ManifestError("output must be a list")
    error = data.get("error", [])
    if not isinstance(error, list):
        raise ManifestError("error must be a list")
    return Manifest(
        transaction_time=str(data.get("transactionTime") or ""),
        request=str(data.get("request") or ""),
        requires_access_token=requires,
        output=tuple(_file(item, f"output[{i}]") for i, item in enumerate(output)),
        error=tuple(_file(item, f"error[{i}]") for i, item in enumerate(error)),
    )


def _file(item: object, where: str) -> ManifestFile:
    if not isinstance(item, Mapping):
        raise ManifestError(f"{where} is not an object")
    rtype, url, count = item.get("type"), item.get("url"), item.get("count")
    if not isinstance(rtype, str) or not rtype:
        raise ManifestError(f"{where}.type is missing")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ManifestError(f"{where}.url must be an absolute http(s) URL")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 0):
        raise ManifestError(f"{where}.count must be a non-negative integer")
    return ManifestFile(rtype, url, count)
