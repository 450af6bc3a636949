"""The demo job: a month of care management, stored, synced and billed on embedded defaults.

1. store the demo caseload; every record and its pending push land in one transaction;
2. drain the outbox with the sync worker (idempotent transactions, profile checks first);
3. play the food bank: on the FHIR server, as the performer would, accept the food referral's
   Task, start it and complete it with a resulting activity;
4. pull: the tracker's new status is applied and closes the loop (order completed, goal
   updated, a follow-up call created for the care manager), and those changes are pushed;
5. roll up the month in SQL, record the ChargeItems it earns, and push those too.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.billing import load_rule_year
from fhirbridge.billing.report import Report
from fhirbridge.caseload import load_caseload
from fhirbridge.conformance import default_checker
from fhirbridge.domain import Referral
from fhirbridge.fhir import FhirClient
from fhirbridge.mapping.loader import load_mappings
from fhirbridge.persistence import (
    EntityKind,
    Store,
    SyncTarget,
    make_engine,
    make_session_factory,
    migrate,
    unit_of_work,
)
from fhirbridge.services.billing import ChargeRun, monthly_report, record_charges
from fhirbridge.services.caseload import store_caseload
from fhirbridge.services.referral import LoopPolicy, referral_loop_closer
from fhirbridge.sync.pull import pull_changes
from fhirbridge.sync.worker import PushStats, SyncWorker

__all__ = ["DemoReport", "run_demo"]


@dataclass
class DemoReport:
    patients: int
    database_url: str
    pushed: PushStats = field(default_factory=PushStats)
    resources_by_type: Counter[str] = field(default_factory=Counter)
    outbox: dict[str, int] = field(default_factory=dict)
    billing: Report | None = None
    charges: ChargeRun | None = None
    pulled: int = 0
    referral: Referral | None = None

    @property
    def created(self) -> int:
        return self.pushed.pushed

    @property
    def unchanged(self) -> int:
        return self.pushed.unchanged


DEMO_FOOD_REFERRAL = "r-1001-food"
_RESULTING_ACTIVITY = {
    "type": {
        "coding": [
            {
                "system": "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/"
                "SDOHCC-CodeSystemTemporaryCodes",
                "code": "resulting-activity",
            }
        ]
    },
    "valueCodeableConcept": {
        "coding": [
            {
                "system": "http://snomed.info/sct",
                "code": "710925007",
                "display": "Provision of food",
            }
        ]
    },
}


def _now() -> datetime:
    return datetime.now(UTC)


async def _food_bank_completes(
    client: FhirClient, sessions: sessionmaker[Session], referral_id: str
) -> None:
    """What the community organisation's system does on the shared FHIR server."""
    with sessions() as session:
        link = Store(session).fhir_links.get(SyncTarget(EntityKind.REFERRAL, referral_id, "Task"))
    if link is None:
        raise RuntimeError(f"referral {referral_id} was not pushed")
    task = (await client.read("Task", link.server_id)).resource or {}
    for status in ("accepted", "in-progress", "completed"):
        task = {**task, "status": status, "owner": {"reference": "Organization/cbo-foodbank-7"}}
        if status == "completed":
            task["output"] = [_RESULTING_ACTIVITY]
        version = (task.get("meta") or {}).get("versionId")
        result = await client.update(task, if_match=version)
        task = result.resource or task


async def run_demo(
    *,
    database_url: str,
    caseload_path: Path,
    mappings_dir: Path,
    fhir_base_url: str,
    identifier_system: str,
    month: tuple[int, int],
    tz: ZoneInfo,
) -> DemoReport:
    mappings = load_mappings(mappings_dir)
    default_checker()  # profile files are data too: fail at start-up, not mid-push
    rules = load_rule_year(month[0])
    caseload = load_caseload(caseload_path)
    migrate(database_url)
    engine = make_engine(database_url)
    try:
        sessions = make_session_factory(engine)
        with unit_of_work(sessions) as session:
            store_caseload(store=Store(session), caseload=caseload, mappings=mappings)
        report = DemoReport(patients=len(caseload.patients), database_url=database_url)
        async with FhirClient(fhir_base_url) as client:
            worker = SyncWorker(
                sessions=sessions,
                client=client,
                mappings=mappings,
                identifier_system=identifier_system,
                worker_id="demo",
            )
            report.pushed.add(await worker.drain())
            await _food_bank_completes(client, sessions, DEMO_FOOD_REFERRAL)
            pulled = await pull_changes(
                client=client,
                sessions=sessions,
                mappings=mappings,
                identifier_system=identifier_system,
                resource_types=["Task"],
                now=_now,
                after_apply=referral_loop_closer(clock=_now, policy=LoopPolicy(tz=tz)),
            )
            report.pulled = len(pulled.applied)
            report.pushed.add(await worker.drain())
            with sessions() as session:
                report.referral = Store(session).referrals.get(DEMO_FOOD_REFERRAL)
            with unit_of_work(sessions) as session:
                report.billing = monthly_report(session=session, month=month, tz=tz, rules=rules)
                report.charges = record_charges(session=session, report=report.billing)
            report.pushed.add(await worker.drain())
        with sessions() as session:
            store = Store(session)
            report.outbox = {s.value: n for s, n in store.outbox.counts().items()}
            report.resources_by_type.update(store.fhir_links.counts_by_type())
        return report
    finally:
        engine.dispose()
