"""Bulk exchange with health plans: a FHIR Bulk Data ($export) client that downloads NDJSON and
resumes, an importer of NDJSON into our records, and an NDJSON export of our own records.

Import from here; the submodules are implementation detail.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fhirbridge import lazy_exports

# Each name's submodule is imported on first use (``lazy_exports``): a command that needs one
# of them does not pay for the others.
if TYPE_CHECKING:
    from fhirbridge.bulk.client import (
        BulkClient,
        ExportLevel,
        ExportRequest,
        ExportResult,
        FileProgress,
        PollPolicy,
        PollStatus,
    )
    from fhirbridge.bulk.errors import (
        BulkError,
        DownloadIncomplete,
        ExportExpired,
        ExportFailed,
        ExportTimedOut,
        ManifestError,
        RosterError,
        StateMismatch,
    )
    from fhirbridge.bulk.exporter import (
        EXPORT_TYPES,
        ExportedResource,
        ExportSelection,
        OwnExportReport,
        RejectedResource,
        export_own_data,
        iter_export,
    )
    from fhirbridge.bulk.importer import (
        IMPORT_ORDER,
        ImportOptions,
        ImportOutcome,
        ImportSummary,
        LineError,
        import_ndjson,
        ndjson_files,
    )
    from fhirbridge.bulk.manifest import Manifest, ManifestFile, parse_manifest
    from fhirbridge.bulk.roster import CSV_COLUMNS, RosterEntry, read_roster
    from fhirbridge.bulk.state import STATE_FILE, DownloadedFile, ExportState

__all__ = [
    "CSV_COLUMNS",
    "EXPORT_TYPES",
    "IMPORT_ORDER",
    "STATE_FILE",
    "BulkClient",
    "BulkError",
    "DownloadIncomplete",
    "DownloadedFile",
    "ExportExpired",
    "ExportFailed",
    "ExportLevel",
    "ExportRequest",
    "ExportResult",
    "ExportSelection",
    "ExportState",
    "ExportTimedOut",
    "ExportedResource",
    "FileProgress",
    "ImportOptions",
    "ImportOutcome",
    "ImportSummary",
    "LineError",
    "Manifest",
    "ManifestError",
    "ManifestFile",
    "OwnExportReport",
    "PollPolicy",
    "PollStatus",
    "RejectedResource",
    "RosterEntry",
    "RosterError",
    "StateMismatch",
    "export_own_data",
    "import_ndjson",
    "iter_export",
    "ndjson_files",
    "parse_manifest",
    "read_roster",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "BulkClient": "client",
        "ExportLevel": "client",
        "ExportRequest": "client",
        "ExportResult": "client",
        "FileProgress": "client",
        "PollPolicy": "client",
        "PollStatus": "client",
        "BulkError": "errors",
        "DownloadIncomplete": "errors",
        "ExportExpired": "errors",
        "ExportFailed": "errors",
        "ExportTimedOut": "errors",
        "ManifestError": "errors",
        "RosterError": "errors",
        "StateMismatch": "errors",
        "EXPORT_TYPES": "exporter",
        "ExportedResource": "exporter",
        "ExportSelection": "exporter",
        "OwnExportReport": "exporter",
        "RejectedResource": "exporter",
        "export_own_data": "exporter",
        "iter_export": "exporter",
        "IMPORT_ORDER": "importer",
        "ImportOptions": "importer",
        "ImportOutcome": "importer",
        "ImportSummary": "importer",
        "LineError": "importer",
        "import_ndjson": "importer",
        "ndjson_files": "importer",
        "Manifest": "manifest",
        "ManifestFile": "manifest",
        "parse_manifest": "manifest",
        "CSV_COLUMNS": "roster",
        "RosterEntry": "roster",
        "read_roster": "roster",
        "STATE_FILE": "state",
        "DownloadedFile": "state",
        "ExportState": "state",
    },
)
