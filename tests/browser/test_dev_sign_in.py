"""The development sign-in of `fhirbridge demo --serve`: off unless a setting turns it on."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from fhirbridge.api import create_app
from fhirbridge.config import Settings
from tests.api.live_server import served
from tests.api.support import FakeClock
from tests.browser.conftest import Screens


@pytest.fixture
def dev_app_url(settings: Settings, clock: FakeClock) -> Iterator[str]:
    dev = settings.model_copy(
        update={"web_dev_sign_in": True, "oidc_issuer": None, "oidc_client_id": None}
    )
    with served(create_app(dev, clock=clock)) as url:
        yield url


def test_the_development_sign_in_is_off_by_default(app_url: str) -> None:
    with httpx.Client() as client:
        page = client.get(f"{app_url}/app/sign-in")
        answer = client.post(
            f"{app_url}/app/sign-in/dev", data={"staff_id": "cm-north", "role": "care-manager"}
        )

    assert "evelopment sign-in" not in page.text
    assert answer.status_code == 404
    assert "fhirbridge_session" not in answer.headers.get("set-cookie", "")


def test_the_development_sign_in_signs_in_as_the_chosen_member(
    page: Page, dev_app_url: str, screens: Screens
) -> None:
    page.goto(f"{dev_app_url}/app")
    expect(page.get_by_role("heading", name="Development sign-in")).to_be_visible()
    screens.shoot("development-sign-in")

    page.get_by_label("Care team member").select_option("cm-north")
    page.get_by_label("Role").select_option("care-manager")
    page.get_by_role("button", name="Sign in (development)").click()

    expect(page.locator(".principal")).to_have_text("cm-north")
