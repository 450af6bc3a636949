"""RPM device readings in (issue 11): the use cases the API and commands call.

One Observation or an NDJSON batch from a device hub (``POST /observations``), a pull of a
patient's Observations by code (``sync.pull.pull_readings``) and a Bulk import of
``Observation.ndjson`` (``bulk.importer``) all store readings through ``ingest_observations``
(``sync.readings``, below the pull and the import): keyed by source identifier, idempotent, one
bad line never stopping the others. See ``sync.readings`` for the rules.
"""

from __future__ import annotations

from fhirbridge.sync.readings import (
    IngestReport,
    LineOutcome,
    PatientFilter,
    ReadingSource,
    ingest_observations,
    ndjson_lines,
    single_observation,
)

__all__ = [
    "IngestReport",
    "LineOutcome",
    "PatientFilter",
    "ReadingSource",
    "ingest_observations",
    "ndjson_lines",
    "single_observation",
]
