"""Self-refreshing pages in a real browser: a lead's page picks up a delivery's new status from
the server without a reload, pauses while a <details> in it is open, and its times say how long
ago they were (times.js keeps that current)."""

import os
import re
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
from grants.services import site_grant
from leads.models import Delivery, Lead
from tests.browser.staff import log_in

SITE_UUID = uuid.UUID("5d9b2f5e-7c1a-4e63-9d0b-2a8c6f1e4b70")
# refresh.js refreshes every 10 s; one period and the fetch, with room for a busy machine.
REFRESHED_WITHIN_MS = 14_000


def retrying_lead(partner: Partner) -> Delivery:
    """A lead whose one delivery is waiting for its next attempt (no worker touches it here)."""
    site = site_grant(partner=partner, site_uuid=SITE_UUID, source=Site.Source.MANUAL, name="Sunset Realty")
    lead = Lead.objects.create(
        partner=partner, site=site, lead_id=uuid.uuid4(), email="kai@example.com", status="retrying"
    )
    Lead.objects.filter(pk=lead.pk).update(created=timezone.now() - timedelta(minutes=3))
    return Delivery.objects.create(
        lead=lead,
        sequence=1,
        operation="create_lead",
        payload={"id": str(lead.lead_id), "source": "Web", "email": "kai@example.com"},
        status="retrying",
        attempt_count=1,
    )


def open_lead(page: Page, delivery: Delivery) -> None:
    log_in(page, "kim")
    page.goto(f"/partners/{delivery.lead.partner.slug}/leads/{delivery.lead.lead_id}/")
    # A marker a reload would lose: the page must update in place.
    page.evaluate("window.notReloaded = true")


def test_the_lead_page_shows_a_delivery_delivered_server_side_without_a_reload(page: Page, kim, acme):
    delivery = retrying_lead(acme)
    open_lead(page, delivery)
    status = page.locator(f"#delivery-{delivery.public_id} .delivery-head .status")
    expect(status).to_have_text("Retrying")

    Delivery.objects.filter(pk=delivery.pk).update(status="delivered", delivered_at=timezone.now())

    expect(status).to_have_text("Delivered", timeout=REFRESHED_WITHIN_MS)
    expect(page.locator(".refresh-status")).to_have_text(re.compile(r"^Updated \d\d:\d\d UTC$"))
    assert page.evaluate("window.notReloaded") is True


def test_an_open_details_pauses_the_refresh(page: Page, kim, acme):
    delivery = retrying_lead(acme)
    open_lead(page, delivery)
    page.locator(f"#delivery-{delivery.public_id} details.body summary").click()

    Delivery.objects.filter(pk=delivery.pk).update(status="delivered", delivered_at=timezone.now())

    expect(page.locator(".refresh-status")).to_have_text("Auto-refresh paused", timeout=REFRESHED_WITHIN_MS)
    expect(page.locator(f"#delivery-{delivery.public_id} .delivery-head .status")).to_have_text("Retrying")
    page.locator(f"#delivery-{delivery.public_id} details.body summary").click()  # closed: it goes on
    expect(page.locator(f"#delivery-{delivery.public_id} .delivery-head .status")).to_have_text(
        "Delivered", timeout=REFRESHED_WITHIN_MS
    )


def test_times_say_how_long_ago_in_utc(page: Page, kim, acme):
    delivery = retrying_lead(acme)
    open_lead(page, delivery)

    created = page.locator("dl.facts time.when").first
    expect(created).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC · 3 min ago$"))
    expect(created).to_have_attribute("datetime", re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"))
    # times.js words it as the server does: rewriting the relative part changes nothing.
    page.evaluate("document.dispatchEvent(new CustomEvent('portal:refreshed'))")
    expect(created.locator(".ago")).to_have_text("3 min ago")
