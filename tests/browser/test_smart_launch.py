"""SMART App Launch from the EHR, whose authorization server oidc-provider plays: the launch
context's patient opens, mapped to our record through its FHIR link."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from tests.browser.conftest import Screens
from tests.browser.flows import launch_url, sign_in_at_provider
from tests.browser.oidc import AuthorizationServer


def test_an_ehr_launch_opens_the_launched_patient(
    page: Page, app_url: str, authorization_server: AuthorizationServer, screens: Screens
) -> None:
    # launch-ehr-1001 is the EHR's launch context for its Patient/ehr-1001, our pat-north-1.
    page.goto(launch_url(app_url, authorization_server.fhir_base, "launch-ehr-1001"))
    sign_in_at_provider(page, "cm-north")

    expect(page).to_have_url(f"{app_url}/app/patients/pat-north-1")
    expect(page.get_by_role("heading", level=1)).to_contain_text("pat-north-1")
    screens.shoot("launched-patient")


def test_a_standalone_launch_opens_the_patient_chosen_at_the_ehr(
    page: Page, app_url: str, authorization_server: AuthorizationServer
) -> None:
    # Without a launch context the EHR has the user pick a patient: ehr-1002, our pat-north-2.
    page.goto(launch_url(app_url, authorization_server.fhir_base))
    sign_in_at_provider(page, "cm-north")

    expect(page).to_have_url(f"{app_url}/app/patients/pat-north-2")


def test_launching_another_teams_patient_answers_as_for_a_missing_one(
    page: Page, app_url: str, authorization_server: AuthorizationServer, screens: Screens
) -> None:
    # Patient/ehr-2001 is our pat-south-1, of team south; cm-north works for team north.
    page.goto(launch_url(app_url, authorization_server.fhir_base, "launch-ehr-2001"))
    sign_in_at_provider(page, "cm-north")

    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    expect(page.locator("main")).not_to_contain_text(re.compile("south|ehr-2001"))
    screens.shoot("launched-other-team")


def test_a_launch_from_an_ehr_not_allowed_here_is_refused_before_any_request_to_it(
    app_url: str,
) -> None:
    with httpx.Client() as client:
        answer = client.get(
            f"{app_url}/app/launch",
            params={"iss": "http://169.254.169.254/fhir", "launch": "x"},
        )

    assert answer.status_code == 400
    assert "location" not in answer.headers
    assert "not allowed to launch" in answer.text
