"""A referral sent from the browser closes on its own: the push worker takes it to the shared
FHIR server (sekmet), the food bank works the Task there, the pull brings the completion back
and the referral page, refreshing itself, shows the Task completed.

The app here is the browser tests' app with the FHIR server's base URL and an identifier system
of its own, so resources other tests put on the shared server are never taken for ours.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import anyio
import httpx
import pytest
import yaml
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session, sessionmaker

from fhirbridge.config import PROJECT_ROOT, Settings
from fhirbridge.fhir import FhirClient
from fhirbridge.localserver import LocalFhirServer
from fhirbridge.mapping.loader import Mappings, load_mappings
from fhirbridge.persistence import EntityKind, Store, SyncTarget, make_engine, unit_of_work
from fhirbridge.services.referral import LoopPolicy, referral_pull_hooks
from fhirbridge.sync.pull import PullReport, pull_changes
from fhirbridge.sync.worker import PushStats, SyncWorker
from tests.api.support import FakeClock
from tests.browser import oidc
from tests.browser.conftest import Screens
from tests.browser.flows import sign_in
from tests.sessions import session_factory

PERFORMER = PROJECT_ROOT / "fixtures" / "workflow" / "performer.yaml"
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
# The page polls every 10 s (hx-trigger on #referral-status); one poll and some slack.
SELF_REFRESH_MS = 15_000

T = TypeVar("T")


def run_beside_the_browser(work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` on an event loop of its own: Playwright's sync API holds this thread's."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(anyio.run, work).result()


@pytest.fixture
def settings(
    settings: Settings, fhir_server: LocalFhirServer, authorization_server: oidc.AuthorizationServer
) -> Settings:
    return settings.model_copy(
        update={
            "fhir_base_url": fhir_server.base_url,
            "identifier_system": f"urn:fhirbridge:test-browser-{uuid.uuid4().hex[:12]}",
        }
    )


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    try:
        yield session_factory(engine)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def mappings() -> Mappings:
    return load_mappings(PROJECT_ROOT / "mappings")


def drain(
    settings: Settings, sessions: sessionmaker[Session], mappings: Mappings, clock: FakeClock
) -> PushStats:
    """Push everything the outbox holds, as the sync worker does."""

    async def go() -> PushStats:
        async with FhirClient(settings.fhir_base_url, max_retries=0) as client:
            worker = SyncWorker(
                sessions=sessions,
                client=client,
                mappings=mappings,
                identifier_system=settings.identifier_system,
                worker_id="browser-test",
                clock=clock,
            )
            return await worker.drain(patience=0)

    return run_beside_the_browser(go)


def pull(
    settings: Settings, sessions: sessionmaker[Session], mappings: Mappings, clock: FakeClock
) -> PullReport:
    """Bring back what other systems changed on the server, as the puller does."""
    hooks = referral_pull_hooks(clock=clock, policy=LoopPolicy(follow_up_days=5))

    async def go() -> PullReport:
        async with FhirClient(settings.fhir_base_url, max_retries=0) as client:
            return await pull_changes(
                client=client,
                sessions=sessions,
                mappings=mappings,
                identifier_system=settings.identifier_system,
                resource_types=["Task"],
                now=clock,
                hooks=hooks,
            )

    return run_beside_the_browser(go)


def food_bank_fulfils(base_url: str, sessions: sessionmaker[Session], referral_id: str) -> None:
    """The food bank's system accepts, starts and completes the referral Task on the server."""
    with unit_of_work(sessions) as session:
        link = Store(session).fhir_links.get(SyncTarget(EntityKind.REFERRAL, referral_id, "Task"))
    assert link is not None, "the referral Task was not pushed"
    steps: list[dict[str, Any]] = yaml.safe_load(PERFORMER.read_text())["fulfilment"]
    for step in steps:
        task_url = f"{base_url}/Task/{link.server_id}"
        current = httpx.get(task_url, headers=FHIR_JSON)
        current.raise_for_status()
        response = httpx.put(task_url, json={**current.json(), **step}, headers=FHIR_JSON)
        response.raise_for_status()


def test_a_care_manager_sees_a_referral_complete_after_the_food_bank_completes_the_task(
    page: Page,
    app_url: str,
    settings: Settings,
    sessions: sessionmaker[Session],
    mappings: Mappings,
    clock: FakeClock,
    screens: Screens,
) -> None:
    sign_in(page, app_url, "cm-north")
    page.goto(f"{app_url}/app/patients/pat-north-1")
    page.get_by_role("link", name="New referral").click()
    page.get_by_label("Kind").select_option("social-need")
    page.get_by_label("Service code system").select_option("snomed")
    page.get_by_label("Service code", exact=True).fill("710925007")
    page.get_by_label("Service (text)").fill("Provision of food")
    page.locator("input[name=categories][value=food-insecurity]").check()
    page.get_by_label("Reason").fill("Screened positive for food insecurity (Hunger Vital Sign)")
    page.get_by_label("Performer (Organization/…)").fill("Organization/cbo-foodbank-7")
    page.get_by_label("Performer name").fill("Eastside Community Food Bank")
    page.get_by_role("button", name="Send referral").click()
    page.wait_for_url(f"{app_url}/app/referrals/**")
    referral_id = page.url.rsplit("/", 1)[-1]
    expect(page.locator("#task-status")).to_have_text("requested")
    screens.shoot("referral-sent")

    pushed = drain(settings, sessions, mappings, clock)
    assert (pushed.dead, pushed.conflicts) == (0, 0), pushed
    food_bank_fulfils(settings.fhir_base_url, sessions, referral_id)
    pull(settings, sessions, mappings, clock)

    # No reload: the page's own polling brings the completion in.
    expect(page.locator("#task-status")).to_have_text("completed", timeout=SELF_REFRESH_MS)
    expect(page.get_by_text("Outcome: Provision of food")).to_be_visible()
    screens.shoot("referral-completed")
