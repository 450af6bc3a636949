"""Data exchange with health plans: pull a Bulk Data export (and import it), export our own.

Keyword-only use cases over what the caller builds (sessions, a FHIR client, mappings); the
command line and the API call these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from fhirbridge.bulk import (
    BulkClient,
    ExportRequest,
    ExportResult,
    ExportSelection,
    ImportOptions,
    ImportSummary,
    OwnExportReport,
    PollPolicy,
    export_own_data,
    import_ndjson,
)
from fhirbridge.bulk.client import OnProgress
from fhirbridge.fhir import FhirClient
from fhirbridge.mapping.loader import Mappings
from fhirbridge.persistence.db import SessionFactory
from fhirbridge.sync.readings import ReadingImport

__all__ = ["BulkExchangeReport", "export_for_health_plan", "fetch_bulk_export"]


@dataclass
class BulkExchangeReport:
    export: ExportResult
    imported: ImportSummary | None = None


async def fetch_bulk_export(
    *,
    client: FhirClient,
    request: ExportRequest,
    folder: Path,
    policy: PollPolicy | None = None,
    restart: bool = False,
    cancel_on_interrupt: bool = True,
    on_progress: OnProgress | None = None,
    import_into: SessionFactory | None = None,
    mappings: Mappings | None = None,
    identifier_system: str = "",
    sync_base_url: str | None = None,
    import_options: ImportOptions | None = None,
    now: Callable[[], datetime] | None = None,
) -> BulkExchangeReport:
    """Run (or resume) a Bulk Data export into ``folder``; with ``import_into``, import the
    downloaded files with ``import_options`` (adoption of patients and practitioners, their
    team). Server ids are linked to our records only when the export came from the server we
    sync with (``sync_base_url``), whatever ``import_options.link_to_server`` says."""
    bulk = BulkClient(client, policy=policy)
    result = await bulk.export(
        request,
        folder,
        restart=restart,
        cancel_on_interrupt=cancel_on_interrupt,
        on_progress=on_progress,
    )
    report = BulkExchangeReport(export=result)
    if import_into is not None:
        if mappings is None:
            raise ValueError("importing needs the mappings")
        same_server = sync_base_url is not None and (
            sync_base_url.rstrip("/") == client.base_url.rstrip("/")
        )
        report.imported = import_ndjson(
            sessions=import_into,
            files=[(f.type, folder / f.name) for f in result.files],
            mappings=mappings,
            identifier_system=identifier_system,
            options=replace(import_options or ImportOptions(), link_to_server=same_server),
            now=now,
        )
    return report


def export_for_health_plan(
    *,
    sessions: SessionFactory,
    mappings: Mappings,
    identifier_system: str,
    folder: Path,
    selection: ExportSelection | None = None,
    roster: Path | None = None,
    bundle: bool = False,
    readings: ReadingImport | None = None,
) -> OwnExportReport:
    """NDJSON (and optionally a transaction Bundle) of our records for the selected patients
    (``readings``: also their RPM device readings, as Observations)."""
    return export_own_data(
        sessions=sessions,
        mappings=mappings,
        identifier_system=identifier_system,
        folder=folder,
        selection=selection,
        roster=roster,
        bundle=bundle,
        readings=readings,
    )
