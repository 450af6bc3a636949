"""The composition root: the long-lived objects fhirbridge runs with, built from ``Settings``.

Rules:

- Entry points (the command line, its commands, the REST API) build what they need here and
  hand the pieces down. Nothing below builds a FHIR client, loads the mapping files or picks
  the pull's hooks by itself, so a setting (timeout, retries, credentials, a hook) means the
  same thing in every command and route.
- Plain functions, no container: each takes ``Settings`` (or what was built from it) and
  returns one thing. Whoever opens something closes it: a ``FhirClient`` is an async context
  manager, ``database`` disposes its engine on exit.
- Settings that cannot become a working object (credentials half configured, an unreadable
  key file) raise ``WiringError`` naming the variables, before any request is sent.
- Everything the pull needs besides the client and storage comes from ``pull_hooks``; it is
  the single place where domain rules (the referral loop) are plugged into the generic pull.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias
from zoneinfo import ZoneInfo

# Each builder imports what it builds: a command pays at start-up only for the pieces it asks
# for (`sync push` loads no billing rules, `billing report` no FHIR client, neither the demo).
if TYPE_CHECKING:
    import httpx
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from fhirbridge.billing import RuleYear
    from fhirbridge.config import Settings
    from fhirbridge.fhir import FhirClient
    from fhirbridge.mapping.discharge import DischargeRules
    from fhirbridge.mapping.instruments import Instruments
    from fhirbridge.mapping.loader import Mappings
    from fhirbridge.mapping.readings import ReadingRules
    from fhirbridge.services.demo import DemoReport
    from fhirbridge.services.transitional_care import TcmPolicy
    from fhirbridge.sync.pull import PullHooks, PullReport
    from fhirbridge.sync.readings import ReadingImport, ReadingPullReport
    from fhirbridge.sync.worker import SyncWorker, WorkerOptions

__all__ = [
    "Clock",
    "Pull",
    "WiringError",
    "billing_rules",
    "database",
    "demo",
    "discharge_rules",
    "fhir_client",
    "instruments",
    "mappings",
    "pull_hooks",
    "puller",
    "reading_import",
    "reading_puller",
    "reading_rules",
    "session_factory",
    "sync_worker",
    "transitional_care_policy",
    "utc_now",
]

Clock = Callable[[], datetime]
Pull: TypeAlias = "Callable[[Sequence[str]], Awaitable[PullReport]]"


class WiringError(ValueError):
    """The settings cannot be turned into a working object; the message names what to set."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def fhir_client(
    settings: Settings,
    base_url: str | None = None,
    *,
    timeout: float | None = None,
    max_retries: int | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> FhirClient:
    """The FHIR client for ``base_url`` (default ``settings.fhir_base_url``) with the configured
    credentials, timeout and retries; ``timeout`` / ``max_retries`` override the settings for
    one use (the webhook retries little: its sender retries itself). ``transport`` replaces the
    network in tests. Another token: pass ``settings.model_copy(update={...})``."""
    from fhirbridge.fhir import FhirClient, auth_settings_from, build_auth

    url = base_url or settings.fhir_base_url
    try:
        auth = build_auth(auth_settings_from(settings), base_url=url)
    except (ValueError, OSError) as error:
        raise WiringError(f"FHIR server credentials: {error}") from error
    return FhirClient(
        url,
        auth=auth,
        timeout=settings.fhir_timeout_seconds if timeout is None else timeout,
        max_retries=settings.fhir_max_retries if max_retries is None else max_retries,
        transport=transport,
    )


def session_factory(settings: Settings, engine: Engine) -> sessionmaker[Session]:
    """Sessions on ``engine`` that know, from the mapping files, what each record syncs as."""
    from fhirbridge.persistence import make_session_factory

    return make_session_factory(engine, sync_plan=mappings(settings).plan)


def engine_for(settings: Settings, database_url: str | None = None) -> Engine:
    """An engine on ``database_url`` (default ``settings.database_url``) with the configured
    pool: matched to the server's thread pool, so requests do not queue for a connection."""
    from fhirbridge.persistence import make_engine

    return make_engine(
        database_url or settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
    )


@contextmanager
def database(
    settings: Settings, database_url: str | None = None, *, migrate_first: bool = True
) -> Iterator[sessionmaker[Session]]:
    """Sessions on ``database_url`` (default ``settings.database_url``), brought to the newest
    schema first; the engine is disposed on exit."""
    from fhirbridge.persistence import migrate

    url = database_url or settings.database_url
    if migrate_first:
        migrate(url)
    engine = engine_for(settings, url)
    try:
        yield session_factory(settings, engine)
    finally:
        engine.dispose()


@functools.cache
def _mappings_in(folder: Path) -> Mappings:
    from fhirbridge.mapping.loader import load_mappings

    return load_mappings(folder)


def mappings(settings: Settings) -> Mappings:
    """The mapping files of ``settings.mappings_dir``, loaded and checked once per process."""
    return _mappings_in(settings.mappings_dir.resolve())


def instruments(settings: Settings) -> Instruments:
    """The assessment instruments (``mappings_dir/instruments``), loaded and checked with the
    mapping files (``load_mappings``): a broken one stops start-up with its file and line."""
    return mappings(settings).instruments


@functools.cache
def _reading_rules_in(folder: Path) -> ReadingRules:
    from fhirbridge.mapping.readings import load_reading_rules

    return load_reading_rules(folder)


def reading_rules(settings: Settings) -> ReadingRules:
    """Which Observations are RPM device readings (``mappings/readings.yaml``), loaded once."""
    return _reading_rules_in(settings.mappings_dir.resolve())


def reading_import(settings: Settings, *, server_base: str | None = None) -> ReadingImport:
    """How a pull or a Bulk import stores Observations as device readings: the rules, the
    practice's time zone, and the server they come from (``server_base``; the configured
    FHIR server when not given) naming those without an identifier."""
    from fhirbridge.sync.readings import ReadingImport, ReadingSource

    return ReadingImport(
        rules=reading_rules(settings),
        zone=ZoneInfo(settings.practice_timezone),
        source=ReadingSource(server_base=server_base or settings.fhir_base_url),
    )


@functools.cache
def _discharge_rules_in(folder: Path) -> DischargeRules:
    from fhirbridge.mapping.discharge import load_discharge_rules

    return load_discharge_rules(folder, _mappings_in(folder).terminology)


def discharge_rules(settings: Settings) -> DischargeRules:
    """Which Encounters open a TCM period (``discharge.yaml`` of ``settings.mappings_dir``),
    loaded and checked once per process."""
    return _discharge_rules_in(settings.mappings_dir.resolve())


def transitional_care_policy(settings: Settings, clock: Clock) -> TcmPolicy:
    """TCM deadlines and codes: the current year's rules (the latest earlier year's before its
    file exists, so January 1 never stops a discharge) and the holiday calendar they name.
    Not cached here: the rule loader re-reads a file only when it changed, and a year's file
    added while the server runs is then used at once."""
    from fhirbridge.billing import latest_rule_year
    from fhirbridge.services.transitional_care import tcm_policy

    tz = ZoneInfo(settings.practice_timezone)
    return tcm_policy(latest_rule_year(clock().astimezone(tz).year), tz=tz)


@functools.cache
def billing_rules(year: int) -> RuleYear:
    """The billing rules of calendar year ``year``, loaded once per process."""
    from fhirbridge.billing import load_rule_year

    return load_rule_year(year)


def sync_worker(
    settings: Settings,
    *,
    client: FhirClient,
    sessions: sessionmaker[Session],
    worker_id: str,
    options: WorkerOptions | None = None,
    clock: Clock = utc_now,
) -> SyncWorker:
    """A push worker over ``client`` and ``sessions`` with the installation's mappings and
    business-identifier namespace."""
    from fhirbridge.sync.worker import SyncWorker, WorkerOptions

    return SyncWorker(
        sessions=sessions,
        client=client,
        mappings=mappings(settings),
        identifier_system=settings.identifier_system,
        worker_id=worker_id,
        options=_with_transaction_limit(options or WorkerOptions(), settings),
        clock=clock,
    )


def _with_transaction_limit(options: WorkerOptions, settings: Settings) -> WorkerOptions:
    if options.max_transaction_entries is not None or settings.fhir_max_transaction_entries is None:
        return options
    return dataclasses.replace(
        options, max_transaction_entries=settings.fhir_max_transaction_entries
    )


def pull_hooks(settings: Settings, clock: Clock) -> PullHooks:
    """What the pull (and the notification webhook) runs around each change it applies: the
    referral service refuses tracker moves the Gravity rules forbid and closes the loop of a
    referral whose Task the performer finished; a discharge Encounter of a patient we have
    opens a TCM period (``not_ours``, also used by the Bulk import)."""
    from fhirbridge.services.referral import LoopPolicy, referral_pull_hooks
    from fhirbridge.services.transitional_care import discharge_hook

    policy = LoopPolicy(
        follow_up_days=settings.referral_follow_up_days,
        tz=ZoneInfo(settings.practice_timezone),
    )
    hooks = referral_pull_hooks(clock=clock, policy=policy)
    # A discharge Encounter of a patient we have opens a TCM period (not ours otherwise).
    opens_tcm = discharge_hook(
        rules=discharge_rules(settings),
        policy=transitional_care_policy(settings, clock),
        clock=clock,
    )
    return dataclasses.replace(hooks, not_ours=opens_tcm)


def puller(
    settings: Settings,
    *,
    client: FhirClient,
    sessions: sessionmaker[Session],
    clock: Clock = utc_now,
) -> Pull:
    """``pull(resource_types)``: apply the server's changes of those types since the last pull,
    with ``pull_hooks``."""
    from fhirbridge.sync.pull import pull_changes

    hooks = pull_hooks(settings, clock)

    async def pull(resource_types: Sequence[str]) -> PullReport:
        return await pull_changes(
            client=client,
            sessions=sessions,
            mappings=mappings(settings),
            identifier_system=settings.identifier_system,
            resource_types=resource_types,
            now=clock,
            hooks=hooks,
        )

    return pull


def reading_puller(
    settings: Settings,
    *,
    client: FhirClient,
    sessions: sessionmaker[Session],
    clock: Clock = utc_now,
) -> Callable[[Sequence[str] | None, Sequence[str] | None], Awaitable[ReadingPullReport]]:
    """``pull(patient_references, codes)``: the device readings (Observations) of those
    patients (all ours when None) with those LOINC codes (readings.yaml's when None) changed
    on ``client``'s server since the last such pull."""
    from fhirbridge.sync.readings import pull_readings

    readings = reading_import(settings, server_base=client.base_url)

    async def pull(
        patient_references: Sequence[str] | None, codes: Sequence[str] | None
    ) -> ReadingPullReport:
        return await pull_readings(
            client=client,
            sessions=sessions,
            readings=readings,
            patient_references=patient_references,
            codes=codes,
            now=clock,
        )

    return pull


async def demo(
    settings: Settings,
    *,
    base_url: str,
    database_url: str,
    caseload_path: Path,
    ehr_dir: Path,
    month: tuple[int, int],
    programs_dir: Path | None = None,
) -> DemoReport:
    """The demo job on ``base_url`` and ``database_url``, in the practice's time zone; with
    ``programs_dir`` (``fixtures/demo/programs``) also its RPM, TCM and PHQ-9 steps."""
    from fhirbridge.caseload import load_caseload
    from fhirbridge.services.demo import run_demo
    from fhirbridge.services.demo_programs import load_programs

    programs = None if programs_dir is None else load_programs(programs_dir)
    with database(settings, database_url) as sessions:
        async with fhir_client(settings, base_url) as client:
            return await run_demo(
                client=client,
                sessions=sessions,
                worker=sync_worker(settings, client=client, sessions=sessions, worker_id="demo"),
                pull=puller(settings, client=client, sessions=sessions),
                rules=billing_rules(month[0]),
                caseload=load_caseload(caseload_path),
                ehr_fixtures=ehr_dir,
                month=month,
                tz=ZoneInfo(settings.practice_timezone),
                database_url=database_url,
                programs=programs,
                reading_rules=reading_rules(settings),
                instruments=instruments(settings),
            )
