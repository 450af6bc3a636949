"""What a bulk export run remembers in its output folder, so that a re-run resumes it.

``.bulk-export.json`` holds the kick-off request, the status URL, the manifest once the server
has one, and every file already downloaded with its size and line count. A re-run polls the
same status URL instead of starting another export, and downloads only the files that are
missing or no longer match what was recorded (a truncated file is fetched again).

The state is rewritten atomically (temporary file, then rename) after every step, so a crash
leaves either the previous state or the next one, never half of one.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fhirbridge.bulk.errors import StateMismatch
from fhirbridge.bulk.manifest import Manifest, parse_manifest

__all__ = ["STATE_FILE", "DownloadedFile", "ExportState"]

STATE_FILE = ".bulk-export.json"
_VERSION = 1


@dataclass(frozen=True)
class DownloadedFile:
    name: str  # file name inside the output folder
    url: str
    type: str
    size: int
    lines: int

    def is_intact(self, folder: Path) -> bool:
        path = folder / self.name
        return path.is_file() and path.stat().st_size == self.size


@dataclass
class ExportState:
    folder: Path
    request: str  # the kick-off URL with its parameters: identifies the export
    status_url: str | None = None
    manifest: Manifest | None = None
    files: dict[str, DownloadedFile] = field(default_factory=dict)  # by url

    @property
    def path(self) -> Path:
        return self.folder / STATE_FILE

    @classmethod
    def open(cls, folder: Path, request: str) -> ExportState:
        """The state of ``request`` in ``folder``: resumed when there is one, else new."""
        path = folder / STATE_FILE
        if not path.exists():
            return cls(folder=folder, request=request)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise StateMismatch(path, f"unreadable export state ({error})") from error
        if not isinstance(data, dict) or data.get("version") != _VERSION:
            raise StateMismatch(path, "export state of an unknown version")
        if data.get("request") != request:
            raise StateMismatch(
                path, "this folder holds another export; use another --out or --restart"
            )
        manifest = data.get("manifest")
        return cls(
            folder=folder,
            request=request,
            status_url=data.get("status_url"),
            manifest=parse_manifest(manifest) if manifest is not None else None,
            files={
                item["url"]: DownloadedFile(**item)
                for item in data.get("files", [])
                if isinstance(item, dict)
            },
        )

    def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        data: dict[str, Any] = {
            "version": _VERSION,
            "request": self.request,
            "status_url": self.status_url,
            "manifest": self.manifest.to_json() if self.manifest is not None else None,
            "files": [vars(f) for f in self.files.values()],
        }
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(data, indent=2))
        os.replace(temporary, self.path)

    def forget(self) -> None:
        """The server no longer has this export (cancelled): the next run starts a new one."""
        self.path.unlink(missing_ok=True)
