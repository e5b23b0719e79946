"""The header's search box in a real browser at phone width: it has a row of its own, it fits,
and a phone number typed as people type it finds the lead."""

import os
import uuid

import pytest

try:
    from playwright.sync_api import Page, expect
except ImportError:  # the conftest's chromium_available explains; here only collection must not break
    if os.environ.get("REQUIRE_REAL_SERVERS") == "1":
        raise
    pytest.skip("BROWSER TESTS SKIPPED: the playwright package is not installed", allow_module_level=True)

from grants.models import Site
from leads.models import Lead
from tests.browser.staff import log_in


def test_at_phone_width_a_phone_number_typed_in_the_header_finds_the_lead(page: Page, acme, kim):
    site = Site.objects.create(partner=acme, site_uuid=uuid.uuid4(), name="Aloha Homes", source=Site.Source.MANUAL)
    Lead.objects.create(
        partner=acme, site=site, lead_id=uuid.uuid4(), email="kim.lee@example.com", name="Kim Lee", phone="808-555-0199"
    )
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, "kim")

    box = page.get_by_role("searchbox", name="Search leads, partners and sites")
    expect(box).to_be_visible()
    found = box.bounding_box()
    assert found is not None and found["x"] >= 0 and found["x"] + found["width"] <= 390
    assert found["width"] >= 200, "the box keeps room to type a phone number"

    box.fill("+1 (808) 555 0199")
    box.press("Enter")

    expect(page.get_by_role("heading", level=1)).to_contain_text("+1 (808) 555 0199")
    expect(page.get_by_role("link", name="Kim Lee")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") == 0
