"""The leads pages in a real browser. Real Geeks is the sandbox of the same live server, and tasks
run inline, so a delivery staff start from a page happens, over HTTP, before the next page loads.

Staff find a failed lead by search, edit and resend it and see the new attempt delivered; patch
a lead; and cannot reach another partner's lead. Also screenshots of the list and a lead page.
"""

import os
import uuid
from pathlib import Path

import pytest

try:
    from playwright.sync_api import Page, expect
except ImportError:  # the conftest's chromium_available explains; here only collection must not break
    if os.environ.get("REQUIRE_REAL_SERVERS") == "1":
        raise
    pytest.skip("BROWSER TESTS SKIPPED: the playwright package is not installed", allow_module_level=True)

from grants.models import Partner, Site
from grants.services import partner_create, site_grant
from leads.models import Lead
from sandbox.faults import faults_update
from sandbox.models import SandboxLead
from sandbox.services import sandbox_account_ensure
from tests.browser.leads import push
from tests.browser.staff import RG_PASSWORD, log_in
from tests.leads.long_history import long_history

SITE_UUID = uuid.UUID("5d9b2f5e-7c1a-4e63-9d0b-2a8c6f1e4b70")


@pytest.fixture
def acme(transactional_db, sandbox_as_rg) -> Partner:
    partner = partner_create(name="Acme Leads", rg_username="acme", rg_password=RG_PASSWORD, webhook_secret="whsec-a")
    sandbox_account_ensure(username="acme", password=RG_PASSWORD, site_uuids=[SITE_UUID])
    site_grant(partner=partner, site_uuid=SITE_UUID, source=Site.Source.MANUAL, name="Sunset Realty")
    return partner


def failed_push(partner: Partner, email: str, settings, **fields: str) -> Lead:
    """A lead whose only attempt met an RG outage (a 503) with no retries left: it failed."""
    attempts, settings.DELIVERY_MAX_ATTEMPTS = settings.DELIVERY_MAX_ATTEMPTS, 1
    faults_update(changes={"outage": True, "remaining": 1})
    lead = push(partner, email, SITE_UUID, **fields)
    settings.DELIVERY_MAX_ATTEMPTS = attempts
    lead.refresh_from_db()
    assert (lead.status, lead.last_status_code) == ("failed", 503)
    return lead


def test_staff_find_a_failed_lead_edit_and_resend_it_and_see_it_delivered(page: Page, settings, kim, acme):
    push(acme, "mele@example.com", first_name="Mele")
    lead = failed_push(acme, "kai.akana@example.com", settings, first_name="Kai", last_name="Akana", phone="808-123")
    log_in(page, "kim")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Leads").click()
    page.locator("main").get_by_label("Search").fill("Kai.Akana@example.com")
    page.locator("main").get_by_role("button", name="Search").click()
    rows = page.locator("table.leads tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Failed")
    expect(rows.first).to_contain_text("503")
    rows.first.get_by_role("link", name="Kai Akana").click()

    expect(page.get_by_role("heading", level=1)).to_contain_text("Failed")
    expect(page.locator(".timeline")).to_contain_text("Real Geeks answered 503")
    page.get_by_role("link", name="Edit and resend").click()
    page.get_by_label("Phone", exact=True).fill("808-123-4567")
    page.get_by_label("Reason").fill("The customer confirmed the full number")
    page.get_by_role("button", name="Preview changes").click()

    expect(page.get_by_role("heading", name="Check the changes")).to_be_visible()
    expect(page.locator("table.diff")).to_contain_text("808-123-4567")
    page.get_by_role("button", name="Send to Real Geeks").click()

    expect(page.get_by_role("status")).to_contain_text("Changed phone and resent the lead as delivery #2")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Delivered")
    newest = page.locator(".timeline > li").first
    expect(newest).to_contain_text("#2 Create lead")
    expect(newest).to_contain_text("Resend by kim")
    expect(newest.locator("table.attempts")).to_contain_text("201")
    expect(newest.locator("table.attempts")).to_contain_text("Delivered")
    expect(page.locator("#audit-title + table")).to_contain_text("lead.edit_resend")

    at_rg = SandboxLead.objects.get(lead_id=lead.lead_id)
    assert at_rg.data["phone"] == "808-123-4567"


def test_staff_patch_a_lead_and_rg_gets_only_the_change(page: Page, kim, acme):
    lead = push(acme, "noe@example.com", first_name="Noe", city="Hilo")
    log_in(page, "kim")
    page.goto(f"/partners/{acme.slug}/leads/{lead.lead_id}/")

    page.get_by_role("link", name="Patch fields").click()
    page.get_by_label("Notes").fill("Prefers a call after 5pm")
    page.get_by_role("button", name="Send the changes").click()

    expect(page.get_by_role("status")).to_contain_text("Sent notes to Real Geeks as an update (delivery #2)")
    newest = page.locator(".timeline > li").first
    expect(newest).to_contain_text("#2 Update lead")
    expect(newest.locator("table.attempts")).to_contain_text(f"PATCH {acme.api_url()}/sites/{SITE_UUID}/leads/")
    expect(newest.locator("table.attempts")).to_contain_text("200")
    at_rg = SandboxLead.objects.get(lead_id=lead.lead_id)
    assert (at_rg.data["notes"], at_rg.data["city"]) == ("Prefers a call after 5pm", "Hilo")


def test_staff_page_through_a_long_history_to_the_first_delivery_and_attempt(page: Page, kim, acme):
    lead = push(acme, "kai.akana@example.com", first_name="Kai")
    long_history(lead, deliveries=60, attempts=12)
    log_in(page, "kim")
    page.goto(f"/partners/{acme.slug}/leads/{lead.lead_id}/")

    expect(page.locator(".timeline > li")).to_have_count(50)
    expect(page.locator("#timeline-title")).to_contain_text("deliveries #11 to #60 of 60")
    newest = page.locator(".timeline > li").first
    expect(newest.locator("table.attempts tbody tr:not(.engineer-row)")).to_have_count(10)
    expect(newest).to_contain_text("The latest 10 of 12 attempts.")
    page.get_by_role("link", name="Older deliveries").click()

    expect(page.locator(".timeline > li")).to_have_count(10)
    expect(page.locator(".timeline > li").last).to_contain_text("#1 Create lead")
    page.get_by_role("link", name="Newest").click()
    page.locator(".timeline > li").first.get_by_role("link", name="Older attempts").click()

    expect(page.get_by_role("heading", level=1)).to_contain_text("Delivery #60")
    expect(page.locator("table.attempts tbody tr:not(.engineer-row)")).to_have_count(2)
    expect(page.locator("table.attempts tbody tr:not(.engineer-row)").last).to_contain_text("503")
    expect(page.get_by_role("link", name="Older attempts")).to_have_count(0)
    page.get_by_role("link", name="Kai", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Kai")


def test_a_staff_member_cannot_open_another_partners_lead(page: Page, kim, acme):
    other = partner_create(name="Other Realty", rg_username="other", rg_password="pw-other", webhook_secret="whsec-o")
    theirs = push(other, "theirs@example.com", site_uuid=uuid.UUID("1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e"))
    log_in(page, "kim")

    for path in (f"/partners/{other.slug}/leads/{theirs.lead_id}/", f"/partners/{acme.slug}/leads/{theirs.lead_id}/"):
        response = page.goto(path)
        assert response is not None and response.status == 404, path
    page.goto(f"/leads/?q={theirs.lead_id}")
    expect(page.locator("table.leads")).to_contain_text("No leads match these filters.")
    expect(page.locator("body")).not_to_contain_text("theirs@example.com")


def test_screenshots_of_the_leads_list_and_a_lead_page(page: Page, settings, kim, acme, tmp_path):
    """Always renders the pages; with PORTAL_SCREENSHOTS_DIR set, keeps the PNGs there (docs/screenshots)."""
    for email, first, last in [
        ("ana.kealoha@example.com", "Ana", "Kealoha"),
        ("bo.nakamura@example.com", "Bo", "Nakamura"),
        ("cy.silva@example.com", "Cy", "Silva"),
    ]:
        push(acme, email, first_name=first, last_name=last, phone="808-555-0142")
    push(acme, "held@example.com", site_uuid=uuid.UUID("7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d"), first_name="Dee")
    sandbox_account_ensure(username="acme", password="a-different-password", site_uuids=[])
    denied = push(acme, "lani@example.com", first_name="Lani", last_name="Moku")  # RG: 401
    sandbox_account_ensure(username="acme", password=RG_PASSWORD, site_uuids=[SITE_UUID])
    lead = failed_push(acme, "kai.akana@example.com", settings, first_name="Kai", last_name="Akana", phone="808-123")
    assert Lead.objects.get(pk=denied.pk).last_status_code == 401

    out = Path(os.environ.get("PORTAL_SCREENSHOTS_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    log_in(page, "kim")
    page.goto(f"/partners/{acme.slug}/leads/{lead.lead_id}/edit/")
    page.get_by_label("Phone", exact=True).fill("808-123-4567")
    page.get_by_label("City").fill("Kailua")
    page.get_by_label("Reason").fill("The customer confirmed the full number")
    page.get_by_role("button", name="Preview changes").click()
    expect(page.get_by_role("heading", name="Check the changes")).to_be_visible()
    page.screenshot(path=str(out / "lead-edit-preview.png"), full_page=True)
    page.get_by_role("button", name="Send to Real Geeks").click()
    expect(page.get_by_role("status")).to_contain_text("resent")

    for filename, path in {"leads.png": "/leads/", "lead.png": f"/partners/{acme.slug}/leads/{lead.lead_id}/"}.items():
        page.goto(path)
        expect(page.locator("main h1")).to_be_visible()
        if filename == "lead.png":
            for details in page.locator(".timeline > li").first.locator("table.attempts details").all():
                details.locator("summary").click()  # show the attempt's request and response
        page.screenshot(path=str(out / filename), full_page=True)
        assert (out / filename).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
