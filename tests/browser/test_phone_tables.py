"""The leads list on a phone (390 by 844 px): a failed lead's status is on screen without scrolling
sideways (the table stacks into cards, static/portal/tables.css), and with no filter in use the
filters fold away (static/portal/filters.js) so the first lead is on the first screen."""

import os

import pytest

try:
    from playwright.sync_api import Page, ViewportSize, expect
except ImportError:  # the conftest's chromium_available explains; here only collection must not break
    if os.environ.get("REQUIRE_REAL_SERVERS") == "1":
        raise
    pytest.skip("BROWSER TESTS SKIPPED: the playwright package is not installed", allow_module_level=True)

from grants.models import Partner
from tests.browser.leads import dead_with_a_body_rg_refuses, push
from tests.browser.staff import log_in

PHONE: ViewportSize = {"width": 390, "height": 844}


def test_a_failed_leads_status_is_on_a_phones_first_screen(page: Page, kim, acme: Partner, sunset_realty):
    for n in range(4):
        push(acme, f"ok{n}@example.com", first_name="Ok", last_name=str(n))
    dead_with_a_body_rg_refuses(acme, "kai.akana@example.com", first_name="Kai", last_name="Akana")
    page.set_viewport_size(PHONE)
    log_in(page, "kim")
    page.goto("/leads/")

    filters = page.locator("details.filters")
    expect(filters).not_to_have_attribute("open", "")
    first = page.locator("table.leads tbody tr").first
    expect(first).to_contain_text("Kai Akana")
    row = first.bounding_box()
    assert row is not None and row["y"] < PHONE["height"], "the first lead is below the fold"

    badge = first.locator("span.status.dead, span.status.failed")
    expect(badge).to_be_visible()
    box = badge.bounding_box()
    assert box is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], f"status badge off screen: {box}"
    assert box["y"] + box["height"] <= PHONE["height"], f"status badge below the fold: {box}"
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") == 0

    # A filter in use keeps the form open, even on a phone.
    page.goto("/leads/?status=dead")
    expect(filters).to_have_attribute("open", "")
    expect(filters.locator("summary")).to_contain_text("Status")
