"""A manager's question on the overview, in a real browser at 1440 px: did the leads arrive, and
which site is in trouble?"""

import os
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

try:
    from playwright.sync_api import Page, expect
except ImportError:  # the conftest's chromium_available explains; here only collection must not break
    if os.environ.get("REQUIRE_REAL_SERVERS") == "1":
        raise
    pytest.skip("BROWSER TESTS SKIPPED: the playwright package is not installed", allow_module_level=True)

from grants.models import Partner, Site
from leads.models import Delivery, Lead
from tests.browser.staff import log_in
from tests.leads.test_stats import E422, E503, Seed

SUNSET = uuid.UUID("5d9b2f5e-7c1a-4e63-9d0b-2a8c6f1e4b70")
HARBOR = uuid.UUID("8e2c4a6b-1d3f-4a5b-9c7d-0e1f2a3b4c5d")


def lead(
    partner: Partner, site_uuid: uuid.UUID, site_name: str, attempts: list[tuple[str, int, str]], status: str
) -> None:
    seed = Seed(partner, site_uuid)
    started = timezone.now() - timedelta(hours=1)
    for minute, (outcome, code, error) in enumerate(attempts):
        seed.attempt(started + timedelta(minutes=minute), outcome, status=code, error=error)
    Delivery.objects.filter(pk=seed.delivery.pk).update(status=status, last_status_code=attempts[-1][1])
    Lead.objects.filter(pk=seed.delivery.lead_id).update(
        status=status, last_status_code=attempts[-1][1], last_error=attempts[-1][2]
    )
    Site.objects.filter(partner=partner, site_uuid=site_uuid).update(name=site_name)


def test_a_manager_reads_the_eventual_rate_and_the_worst_site_first(page: Page, kim, acme):
    lead(acme, SUNSET, "Sunset Realty", [("retry", 503, E503), ("delivered", 201, "")], "delivered")
    lead(acme, HARBOR, "Harbor Homes", [("failed", 422, E422)], "failed")
    now = timezone.now()
    Site.objects.filter(site_uuid=HARBOR).update(
        circuit_failures=5,
        circuit_opened_at=now,
        circuit_open_until=now + timedelta(minutes=5),
        circuit_last_error=E503,
    )
    page.set_viewport_size({"width": 1440, "height": 900})

    log_in(page, "kim")

    rate = page.locator("#delivery-rate")
    expect(rate).to_contain_text("Leads delivered (eventual)")
    expect(rate).to_contain_text("50.0%")
    expect(rate).to_contain_text("1 of 2 leads accepted in the window reached RG")
    expect(page.locator("#success-rate")).to_contain_text("Attempt success")
    expect(page.locator("#success-rate")).to_contain_text("1 of 3 attempts delivered")
    rows = page.locator("#site-health tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("Harbor Homes")
    expect(rows.first.get_by_role("link", name="Circuit open")).to_be_visible()
    expect(rows.nth(1)).to_contain_text("Sunset Realty")
    expect(rows.nth(1)).to_contain_text("100.0%")
    page.locator("#site-health").scroll_into_view_if_needed()
    expect(page.get_by_role("heading", name="Site health")).to_be_in_viewport()
    assert page.evaluate("document.documentElement.scrollWidth") <= 1440
