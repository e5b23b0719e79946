"""Screenshots of the pages staff open on a phone (390 by 844 px, full page), and of the search
results on a laptop, for docs/screenshots: the overview, the leads list, a failed lead's page and
the header search's results. Always rendered and checked; kept in PORTAL_SCREENSHOTS_DIR when set.

The data is realistic: a day of delivery history, leads delivered through the sandbox (standing
in for Real Geeks), and one lead RG refused with a 422 naming a field.
"""

import os
import uuid
from pathlib import Path

import pytest

try:
    from playwright.sync_api import Page, ViewportSize, expect
except ImportError:  # the conftest's chromium_available explains; here only collection must not break
    if os.environ.get("REQUIRE_REAL_SERVERS") == "1":
        raise
    pytest.skip("BROWSER TESTS SKIPPED: the playwright package is not installed", allow_module_level=True)

from grants.models import Partner
from leads.delivery import delivery_retry
from leads.models import Delivery, Lead
from tests.browser.history import a_day_of_history
from tests.browser.leads import dead_with_a_body_rg_refuses, push
from tests.browser.staff import log_in

PHONE: ViewportSize = {"width": 390, "height": 844}
LAPTOP: ViewportSize = {"width": 1280, "height": 900}
# The day of history goes to a site of its own, so the leads pushed to Sunset Realty stay real.
KAILUA = uuid.UUID("3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f")
PNG = b"\x89PNG\r\n\x1a\n"


def refused_lead(acme: Partner) -> Lead:
    lead = dead_with_a_body_rg_refuses(acme, "kai.akana@example.com", first_name="Kai", last_name="Akana")
    delivery_retry(delivery=Delivery.objects.get(lead=lead))
    lead.refresh_from_db()
    return lead


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("PORTAL_SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def leads(acme, sunset_realty) -> Lead:
    """A few delivered leads with phones as people type them, and Kai's refused one (returned)."""
    for email, first, last, phone in [
        ("ana.kealoha@example.com", "Ana", "Kealoha", "808-555-0142"),
        ("bo.nakamura@example.com", "Bo", "Nakamura", "(808) 555-0177"),
        ("cy.silva@example.com", "Cy", "Silva", "+1 808 555 0110"),
        ("mele.kahale@example.com", "Mele", "Kahale", "8085550165"),
    ]:
        push(acme, email, first_name=first, last_name=last, phone=phone)
    a_day_of_history(acme, KAILUA)
    return refused_lead(acme)


def keep(page: Page, out: Path, filename: str) -> None:
    page.screenshot(path=str(out / filename), full_page=True)
    assert (out / filename).read_bytes()[:8] == PNG
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") == 0, f"{filename} is too wide"


def test_screenshots_of_the_overview_leads_a_lead_and_search_at_phone_size(page: Page, kim, acme, leads, out):
    page.set_viewport_size(PHONE)
    log_in(page, "kim")

    expect(page.locator("#delivery-rate .value")).to_be_visible()
    expect(page.locator("#held-by-site")).to_contain_text("Harbor Homes")
    keep(page, out, "overview-phone.png")

    page.goto("/leads/")
    expect(page.locator("table.leads")).to_contain_text("Mele Kahale")
    keep(page, out, "leads-phone.png")

    page.goto(f"/partners/{acme.slug}/leads/{leads.lead_id}/")
    expect(page.locator("dl.facts")).to_contain_text("Property field 'full_baths' is not a valid integer.")
    keep(page, out, "lead-phone.png")

    page.locator("header input[name=q]").fill("808 555")
    page.locator("header input[name=q]").press("Enter")
    expect(page.locator("table.leads tbody tr")).to_have_count(4)
    keep(page, out, "search-phone.png")


def test_screenshot_of_the_search_results_at_laptop_size(page: Page, kim, acme, leads, out):
    page.set_viewport_size(LAPTOP)
    log_in(page, "kim")

    page.locator("header input[name=q]").fill("808 555")
    page.locator("header input[name=q]").press("Enter")
    expect(page.locator("table.leads tbody tr")).to_have_count(4)
    keep(page, out, "search.png")
