"""A care manager never sees another team's patient, however they ask for it."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import Screens
from tests.browser.flows import sign_in


def test_another_teams_patient_page_answers_not_found(
    page: Page, app_url: str, screens: Screens
) -> None:
    sign_in(page, app_url, "cm-north")

    answer = page.goto(f"{app_url}/app/patients/pat-south-1")

    assert answer is not None
    assert answer.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    screens.shoot("other-team-patient")


def test_another_teams_patient_answers_as_a_missing_one_does(page: Page, app_url: str) -> None:
    sign_in(page, app_url, "cm-north")

    other_team = page.goto(f"{app_url}/app/patients/pat-south-1")
    assert other_team is not None
    other_team_text = page.locator("main").inner_text()
    missing = page.goto(f"{app_url}/app/patients/pat-nowhere")
    assert missing is not None
    missing_text = page.locator("main").inner_text()

    assert (other_team.status, other_team_text) == (missing.status, missing_text)


def test_the_patient_list_holds_only_the_teams_patients(page: Page, app_url: str) -> None:
    sign_in(page, app_url, "cm-north")

    page.goto(f"{app_url}/app/patients")

    main = page.locator("main")
    expect(main).to_contain_text("pat-north-1")
    expect(main).to_contain_text("pat-north-2")
    expect(main).not_to_contain_text("pat-south-1")
