"""Probe a FHIR server for what fhirbridge relies on, before trusting it with real records.

``probe_server(client)`` reads the CapabilityStatement, then tries every interaction the sync
uses with test records (``records``: the mapping engine's output for the fixture records under
``fixtures/probe/``) and deletes them at the end unless ``keep`` is set.

Rules:

- Behaviour decides, not the statement. Every check is tried whether or not the statement
  advertises it; the report keeps both, ``advertised`` (yes / no / unknown) beside ``works``
  (yes / no), so a claim the server does not keep, and a capability it has but does not
  claim, are both visible.
- A check is ``skipped`` only when it cannot run (what it needs failed, ``--keep`` kept the
  records, the user asked to skip it), always with the reason. A skipped check is not a
  failure: the probe passes when no *required* check failed.
- What is required follows what fhirbridge would do on this server (see ``checks``).
- Records the probe created are deleted, newest first, whatever happened before; one that
  cannot be deleted is listed as a leftover with the server's words.
- An unreachable server is one failed ``capability statement`` check and ``unreachable`` set
  to the cause; nothing else is tried.
- It never raises for what the server answers: that is the report.

JSON shape (``ProbeReport.to_json``, printed by ``check-server --json``)::

    {
      "base_url": "https://ehr.example/fhir", "run_id": "1f2e3d4c5b6a",
      "passed": true,                   # no required check failed, server reachable
      "unreachable": null,              # or the cause, e.g. "ConnectError: ..."
      "server": null | {                # what the CapabilityStatement claims
        "fhir_version": "4.0.1", "software": "...", "formats": ["json"],
        "transaction": true, "batch": true,
        "types": [{"type": "Task", "listed": true, "interactions": ["create", ...],
                   "versioning": "versioned", "conditional_create": true,
                   "conditional_update": false,
                   "search_params": {"identifier": "supported" | "unsupported" | "unknown"}}]
      },
      "checks": [{
        "check": "stale If-Match refused", "resource_type": "Task" | null,
        "status": "pass" | "fail" | "skipped", "required": true,
        "advertised": "yes" | "no" | "unknown" | null,   # null: nothing to claim
        "works": "yes" | "no" | null,                     # null: not tried (skipped)
        "detail": "HTTP 412: ...",                        # the server's own text, or why skipped
        "request": "PUT https://.../Task/1" | null        # the failing request, query masked
      }],
      "created": ["Patient/1", "Task/2"],
      "leftovers": [{"reference": "Task/2", "reason": "kept (--keep)"}]
    }
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fhirbridge import lazy_exports

# Each name's submodule is imported on first use (``lazy_exports``): a command that needs one
# of them does not pay for the others.
if TYPE_CHECKING:
    from fhirbridge.fhir import FhirClient
    from fhirbridge.probe.checks import SEARCH_PARAMS_SHOWN, TYPE_CHECKS, USED_INTERACTIONS
    from fhirbridge.probe.records import (
        PROBE_IDENTIFIER_SYSTEM,
        PROBE_TAG_SYSTEM,
        ProbeRecord,
        ProbeRecords,
    )
    from fhirbridge.probe.report import (
        AdvertisedType,
        Check,
        CheckResult,
        CheckStatus,
        Claim,
        Leftover,
        ProbeReport,
        ServerSummary,
    )
    from fhirbridge.probe.run import ProbeOptions

__all__ = [
    "PROBE_IDENTIFIER_SYSTEM",
    "PROBE_TAG_SYSTEM",
    "SEARCH_PARAMS_SHOWN",
    "TYPE_CHECKS",
    "USED_INTERACTIONS",
    "AdvertisedType",
    "Check",
    "CheckResult",
    "CheckStatus",
    "Claim",
    "Leftover",
    "ProbeOptions",
    "ProbeRecord",
    "ProbeRecords",
    "ProbeReport",
    "ServerSummary",
    "probe_server",
]


async def probe_server(
    client: FhirClient,
    options: ProbeOptions | None = None,
    *,
    records: ProbeRecords | None = None,
) -> ProbeReport:
    """Read the server's CapabilityStatement, try every check on every type, clean up, and
    report each check. ``records`` defaults to the fixture records mapped with the project's
    mapping files. The caller owns ``client`` (and closes it)."""
    from fhirbridge.probe.records import ProbeRecords
    from fhirbridge.probe.run import ProbeOptions
    from fhirbridge.probe.runner import run_probe

    return await run_probe(client, records or ProbeRecords.load(), options or ProbeOptions())


__getattr__ = lazy_exports(
    __name__,
    {
        "SEARCH_PARAMS_SHOWN": "checks",
        "TYPE_CHECKS": "checks",
        "USED_INTERACTIONS": "checks",
        "PROBE_IDENTIFIER_SYSTEM": "records",
        "PROBE_TAG_SYSTEM": "records",
        "ProbeRecord": "records",
        "ProbeRecords": "records",
        "AdvertisedType": "report",
        "Check": "report",
        "CheckResult": "report",
        "CheckStatus": "report",
        "Claim": "report",
        "Leftover": "report",
        "ProbeReport": "report",
        "ServerSummary": "report",
        "ProbeOptions": "run",
    },
)
