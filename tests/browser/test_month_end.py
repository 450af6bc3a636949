"""Month end for billing users: the report of the month, downloaded as CSV."""

from __future__ import annotations

import csv

import pytest
from playwright.sync_api import Browser, Page, expect

from fhirbridge.persistence.scratch import Backend
from tests.api.support import FakeClock
from tests.browser.conftest import VIEWPORT, Screens
from tests.browser.flows import sign_in, time_a_call


@pytest.fixture
def backend(both_backends: Backend) -> Backend:
    return both_backends


def test_a_billing_user_downloads_the_months_csv(
    page: Page, browser: Browser, app_url: str, clock: FakeClock, screens: Screens
) -> None:
    # A care manager times a 25-minute call with pat-north-1 (CCM) in October.
    sign_in(page, app_url, "cm-north")
    time_a_call(page, app_url, clock, "pat-north-1", minutes=25)
    page.get_by_role("button", name="Save entry").click()
    billing = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    billing_page = billing.new_page()
    sign_in(billing_page, app_url, "billing")

    billing_page.goto(f"{app_url}/app/month-end?month=2026-10&team=north")
    expect(billing_page.get_by_role("heading", level=1)).to_have_text("Month end")
    Screens(billing_page, screens.test_name).shoot("month-end")
    with billing_page.expect_download() as download_info:
        billing_page.get_by_role("link", name="Download CSV").click()
    download = download_info.value

    assert download.suggested_filename == "billing-north-2026-10.csv"
    with open(download.path(), encoding="utf-8", newline="") as text:
        rows = {(r["patient_id"], r["code"]): r for r in csv.DictReader(text)}
    assert rows[("pat-north-1", "99490")]["outcome"] == "earned"
    billing.close()
