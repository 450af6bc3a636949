"""Streaming one NDJSON file of a Bulk Data export to disk.

The body goes to disk chunk by chunk under a temporary name and is renamed into place only when
complete, so a file with the final name is always whole. Lines are counted on the way; when the
manifest gives a ``count`` and the lines differ (a connection cut short, a proxy truncating),
the file is fetched again.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from fhirbridge.fhir import FhirClient, RequestInfo, TransportError

# The FHIR client's own status -> typed error mapping, so a file answers the same errors as any
# other request (see the module note in client.py about the missing public hook).

__all__ = ["NDJSON", "FetchedFile", "fetch_file", "same_origin"]

NDJSON = "application/fhir+ndjson"
CHUNK = 64 * 1024

ByteProgress = Callable[[int], None]


@dataclass(frozen=True)
class FetchedFile:
    path: Path
    size: int
    lines: int


def same_origin(url: str, base_url: str) -> bool:
    a, b = urlsplit(url), urlsplit(base_url)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


async def fetch_file(
    fhir: FhirClient,
    url: str,
    destination: Path,
    *,
    send_token: bool,
    on_bytes: ByteProgress | None = None,
) -> FetchedFile:
    """One GET of ``url`` streamed to ``destination`` (atomically). Raises the FHIR client's
    typed errors for error statuses and ``TransportError`` when the connection fails."""
    partial = destination.with_name(f".{destination.name}.part")
    destination.parent.mkdir(parents=True, exist_ok=True)
    size = newlines = 0
    last = b"\n"
    try:
        async with fhir.stream(
            url, headers={"Accept": NDJSON}, send_credentials=send_token
        ) as response:
            with partial.open("wb") as out:
                async for chunk in response.aiter_bytes(CHUNK):
                    out.write(chunk)
                    size += len(chunk)
                    newlines += chunk.count(b"\n")
                    last = chunk[-1:]
                    if on_bytes is not None:
                        on_bytes(len(chunk))
    except httpx.TransportError as exc:
        partial.unlink(missing_ok=True)
        raise TransportError(
            f"{type(exc).__name__}: {exc}", request=RequestInfo("GET", url)
        ) from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, destination)
    lines = newlines + (1 if size and last != b"\n" else 0)
    return FetchedFile(destination, size, lines)
