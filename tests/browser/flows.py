"""What a user does in the browser, step by step, for the tests to share."""

from __future__ import annotations

from urllib.parse import urlencode

from playwright.sync_api import Page

from tests.api.support import FakeClock
from tests.browser.conftest import Screens


def sign_in_at_provider(page: Page, login: str) -> None:
    """Fill in oidc-provider's own sign-in form (any password: a development interaction)."""
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill("test password")
    page.get_by_role("button", name="Sign-in").click()


def sign_in(page: Page, app_url: str, login: str, screens: Screens | None = None) -> None:
    """Open the app and sign in as ``login`` (an account of tests/servers/oidc/accounts.json)
    through the organisation's provider."""
    page.goto(f"{app_url}/app")
    if screens is not None:
        screens.shoot("sign-in")
    page.get_by_role("link", name="Sign in with your organisation's account").click()
    if screens is not None:
        screens.shoot("provider-sign-in")
    sign_in_at_provider(page, login)
    page.wait_for_url(f"{app_url}/app/**")


def launch_url(app_url: str, fhir_base: str, launch: str | None = None) -> str:
    """Where the EHR sends the browser to launch the app (SMART App Launch)."""
    query = {"iss": fhir_base} | ({} if launch is None else {"launch": launch})
    return f"{app_url}/app/launch?{urlencode(query)}"


def time_a_call(page: Page, app_url: str, clock: FakeClock, patient_id: str, minutes: int) -> None:
    """Start the timer on the patient's page, let ``minutes`` pass, stop it: the stopped
    entry's form is then open."""
    page.goto(f"{app_url}/app/patients/{patient_id}")
    page.get_by_role("button", name="Start timer").click()
    page.locator("#running-timer").wait_for()
    clock.advance(minutes=minutes)
    page.get_by_role("button", name="Stop timer").click()
    page.wait_for_url(f"{app_url}/app/time-entries/**")
