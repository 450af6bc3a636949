"""The timer on the patient page, and the refusal of time that overlaps recorded time."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from fhirbridge.persistence.scratch import Backend
from tests.api.support import FakeClock
from tests.browser.conftest import Screens
from tests.browser.flows import sign_in, time_a_call


@pytest.fixture
def backend(both_backends: Backend) -> Backend:
    return both_backends


def test_a_care_manager_starts_and_stops_a_timer_and_gets_the_entry_filled_in(
    page: Page, app_url: str, clock: FakeClock, screens: Screens
) -> None:
    sign_in(page, app_url, "cm-north")
    page.goto(f"{app_url}/app/patients/pat-north-1")
    page.get_by_role("button", name="Start timer").click()

    expect(page.locator("#running-timer")).to_contain_text("Timer running")
    screens.shoot("timer-running")
    clock.advance(minutes=25)
    page.get_by_role("button", name="Stop timer").click()

    expect(page).to_have_url(re.compile(r"/app/time-entries/[^/?]+\?stopped="))
    expect(page.get_by_role("status")).to_contain_text("25 minutes")
    # The test clock stands at 2026-10-15T15:00Z; the practice's zone is UTC.
    expect(page.get_by_label("Start", exact=True)).to_have_value("2026-10-15T15:00")
    expect(page.get_by_label("End", exact=True)).to_have_value("2026-10-15T15:25")
    screens.shoot("stopped-entry-form")


def test_the_running_timer_survives_a_reload_and_shows_in_a_second_tab(
    page: Page, app_url: str
) -> None:
    sign_in(page, app_url, "cm-north")
    page.goto(f"{app_url}/app/patients/pat-north-1")
    page.get_by_role("button", name="Start timer").click()

    page.reload()
    second_tab = page.context.new_page()
    second_tab.goto(f"{app_url}/app/worklist")

    expect(page.locator("#running-timer")).to_contain_text("pat-north-1")
    expect(second_tab.locator("#running-timer")).to_contain_text("pat-north-1")


def test_an_entry_overlapping_recorded_time_is_refused_next_to_its_start(
    page: Page, app_url: str, clock: FakeClock, screens: Screens
) -> None:
    sign_in(page, app_url, "cm-north")
    time_a_call(page, app_url, clock, "pat-north-1", minutes=25)  # 15:00 to 15:25
    page.get_by_role("button", name="Save entry").click()
    page.goto(f"{app_url}/app/patients/pat-north-1/time-entries/new")

    page.get_by_label("Start", exact=True).fill("2026-10-15T15:10")
    page.get_by_label("End", exact=True).fill("2026-10-15T15:20")
    page.get_by_role("button", name="Record entry").click()

    start = page.get_by_label("Start", exact=True)
    expect(start).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#start-error")).to_contain_text("overlaps")
    screens.shoot("overlap-refused")
