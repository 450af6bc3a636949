"""The web app in a real browser: Debian's chromium driven by Playwright, the app under a real
uvicorn on 127.0.0.1 over a scratch database holding fixtures/api/caseload.yaml, and
oidc-provider (tests/servers/oidc) as both the installation's OpenID provider and the EHR's
SMART authorization server. Every process listens on a free port, so ``pytest -n 4`` runs one
set per worker.

Screenshots of each screen go to test-artifacts/screenshots/ (kept by CI as artefacts).
"""

from __future__ import annotations

import re
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, ViewportSize, sync_playwright

from fhirbridge.api import create_app
from fhirbridge.config import Settings
from fhirbridge.persistence.scratch import (
    Backend,
    DatabaseUnavailable,
    scratch_database,
    sqlite_url,
)
from tests.api.live_server import served
from tests.api.support import FakeClock, load_caseload
from tests.browser import oidc
from tests.conftest import POSTGRES_URL, ROOT
from tests.persistence.dbs import empty_database

# Playwright's own browser download does not work here: Debian's package is the browser.
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        # Never a skip: a CI run without the browser must not pass green.
        pytest.fail(f"{CHROMIUM} is missing: run scripts/bootstrap (apt-get install chromium)")
    # --no-sandbox: containers running as root cannot start chromium's sandbox; a container's
    # small /dev/shm makes it crash without --disable-dev-shm-usage.
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
    )
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def authorization_server() -> Iterator[oidc.AuthorizationServer]:
    with oidc.running() as server:
        yield server


@pytest.fixture
def backend() -> Backend:
    """SQLite; the modules whose pages write (timer, month end) run on PostgreSQL as well."""
    return "sqlite"


@pytest.fixture(params=["sqlite", "postgresql"])
def both_backends(request: pytest.FixtureRequest) -> Backend:
    chosen: Backend = request.param
    return chosen


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A SQLite file migrated and holding the caseload, copied for each test: migrating per
    test would cost more than the test."""
    with scratch_database("sqlite", workdir=tmp_path_factory.mktemp("browser-db")) as url:
        load_caseload(url)
        yield Path(url.removeprefix("sqlite:///"))


@pytest.fixture(scope="session")
def postgres_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One PostgreSQL schema per test process, emptied and filled again for each test."""
    try:
        with scratch_database(
            "postgresql", workdir=tmp_path_factory.mktemp("browser-pg"), postgres_url=POSTGRES_URL
        ) as url:
            yield url
    except DatabaseUnavailable as error:
        pytest.skip(f"PostgreSQL not reachable at {error.url} ({error.reason})")


@pytest.fixture
def database_url(backend: Backend, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        copy = tmp_path / "fhirbridge.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), copy)
        return sqlite_url(copy)
    url: str = request.getfixturevalue("postgres_database")
    empty_database(url)
    load_caseload(url)
    return url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(database_url: str, authorization_server: oidc.AuthorizationServer) -> Settings:
    return Settings(
        database_url=database_url,
        practice_timezone="UTC",
        web_session_secret=secrets.token_urlsafe(32),
        oidc_issuer=authorization_server.issuer,
        oidc_client_id=oidc.CLIENT_ID,
        oidc_scopes="openid profile fhirbridge",
        smart_launch_issuers=(authorization_server.fhir_base,),
        smart_launch_client_id=oidc.SMART_CLIENT_ID,
    )


@pytest.fixture
def app_url(settings: Settings, clock: FakeClock) -> Iterator[str]:
    with served(create_app(settings, clock=clock)) as url:
        yield url


@dataclass
class Screens:
    """Saves a screenshot of each screen a test visits, named after the test."""

    page: Page
    test_name: str

    def shoot(self, screen: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.test_name}--{screen}.png"
        self.page.screenshot(path=path, full_page=True)
        return path


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def screens(page: Page, request: pytest.FixtureRequest) -> Screens:
    return Screens(page, re.sub(r"[^A-Za-z0-9_.]+", "-", request.node.name).strip("-"))
