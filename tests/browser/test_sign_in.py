"""Signing in through the installation's OpenID provider (oidc-provider on loopback)."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import Screens
from tests.browser.flows import sign_in, sign_in_at_provider


def test_a_care_manager_signs_in_and_sees_their_worklist(
    page: Page, app_url: str, screens: Screens
) -> None:
    sign_in(page, app_url, "cm-north", screens)

    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("Worklist"))
    expect(page.locator(".principal")).to_have_text("cm-north")
    screens.shoot("worklist")


def test_the_session_cookie_is_http_only_and_same_site_lax(page: Page, app_url: str) -> None:
    sign_in(page, app_url, "cm-north")

    cookie = next(c for c in page.context.cookies() if c["name"] == "fhirbridge_session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert cookie["expires"] > 0


def test_a_page_asked_for_before_signing_in_opens_after_it(page: Page, app_url: str) -> None:
    page.goto(f"{app_url}/app/patients/pat-north-2")
    expect(page).to_have_url(re.compile(r"/app/sign-in\?next="))
    page.get_by_role("link", name="Sign in with your organisation's account").click()
    sign_in_at_provider(page, "cm-north")

    expect(page).to_have_url(f"{app_url}/app/patients/pat-north-2")


def test_signing_out_ends_the_session(page: Page, app_url: str) -> None:
    sign_in(page, app_url, "cm-north")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/app/sign-in"))
    page.goto(f"{app_url}/app/worklist")

    expect(page).to_have_url(re.compile(r"/app/sign-in\?next=/app/worklist"))


def test_a_user_without_a_role_here_is_not_signed_in(page: Page, app_url: str) -> None:
    # The account has a team but no role claim and no fhirUser known to the care team.
    page.goto(f"{app_url}/app")
    page.get_by_role("link", name="Sign in with your organisation's account").click()
    sign_in_at_provider(page, "stranger")

    expect(page.get_by_role("heading", level=1)).to_have_text("Sign-in failed")
    assert not [c for c in page.context.cookies() if c["name"] == "fhirbridge_session"]
