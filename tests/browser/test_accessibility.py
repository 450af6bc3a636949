"""Every screen passes axe-core's WCAG 2.1 A and AA rules (labels, names, contrast, landmarks,
keyboard-reachable controls), at the desktop size and at tablet width."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from tests.browser.flows import sign_in

AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
TABLET = {"width": 820, "height": 1180}

CARE_MANAGER_SCREENS = [
    "/app/worklist",
    "/app/thresholds",
    "/app/patients",
    "/app/patients/pat-north-1",
    "/app/patients/pat-north-1/referrals/new",
]


def _violations(page: Page) -> list[dict[str, Any]]:
    if not AXE.is_file():
        pytest.fail(f"axe-core is missing at {AXE}: run scripts/browser-deps")
    page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG
    )
    return [
        {"rule": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in result["violations"]
    ]


@pytest.mark.parametrize("path", CARE_MANAGER_SCREENS)
def test_a_care_managers_screen_has_no_accessibility_violations(
    page: Page, app_url: str, path: str
) -> None:
    sign_in(page, app_url, "cm-north")
    answer = page.goto(app_url + path)
    assert answer is not None
    assert answer.status == 200
    assert _violations(page) == []


@pytest.mark.parametrize("path", ["/app/worklist", "/app/patients/pat-north-1"])
def test_a_screen_at_tablet_width_has_no_accessibility_violations(
    page: Page, app_url: str, path: str
) -> None:
    page.set_viewport_size(TABLET)
    sign_in(page, app_url, "cm-north")
    answer = page.goto(app_url + path)
    assert answer is not None
    assert answer.status == 200
    assert _violations(page) == []


def test_the_month_end_screen_has_no_accessibility_violations(page: Page, app_url: str) -> None:
    sign_in(page, app_url, "billing")
    answer = page.goto(f"{app_url}/app/month-end?month=2026-10&team=north")
    assert answer is not None
    assert answer.status == 200
    assert _violations(page) == []


def test_the_sign_in_page_has_no_accessibility_violations(page: Page, app_url: str) -> None:
    page.goto(f"{app_url}/app/sign-in")
    assert _violations(page) == []


def test_the_sync_status_screen_has_no_accessibility_violations(page: Page, app_url: str) -> None:
    sign_in(page, app_url, "admin")
    answer = page.goto(f"{app_url}/app/sync")
    assert answer is not None
    assert answer.status == 200
    assert _violations(page) == []
