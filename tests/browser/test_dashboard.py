"""The staff dashboard in a real browser: log in, grant, issue keys, and stay inside one's partners."""

import os
import re
import uuid
from pathlib import Path

import pytest
from django.conf import settings

try:
    from playwright.sync_api import Page, expect
except ImportError:  # the conftest's chromium_available explains; here only collection must not break
    if os.environ.get("REQUIRE_REAL_SERVERS") == "1":
        raise
    pytest.skip("BROWSER TESTS SKIPPED: the playwright package is not installed", allow_module_level=True)

from grants.models import ApiKey, Site
from grants.services import api_key_issue, site_grant, site_revoke
from tests.browser.staff import PASSWORD, log_in

SITE_UUID = "5d9b2f5e-7c1a-4e63-9d0b-2a8c6f1e4b70"


def test_staff_log_in_and_land_on_the_overview(page: Page, kim, acme):
    page.goto("/partners/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/partners/"))

    log_in(page, "kim")

    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Sites")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Acme Leads")


def test_repeated_wrong_passwords_lock_the_account_with_a_clear_message(page: Page, kim):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(page, "kim", "wrong-password")
        expect(page.get_by_text("didn't match")).to_be_visible()
    log_in(page, "kim", "wrong-password")
    expect(page.get_by_role("heading", name="Too many failed log-ins")).to_be_visible()

    log_in(page, "kim")  # the right password no longer helps
    expect(page.get_by_role("heading", name="Too many failed log-ins")).to_be_visible()


def test_a_site_granted_by_hand_shows_as_active(page: Page, kim, acme):
    log_in(page, "kim")
    page.goto(f"/partners/{acme.slug}/sites/")

    page.get_by_label("Site UUID").fill(SITE_UUID)
    page.get_by_label("Name").fill("Sunset Realty")
    page.get_by_label("Note").fill("Owner phoned support")
    page.get_by_role("button", name="Grant site").click()

    expect(page.get_by_role("status")).to_contain_text("Sunset Realty is granted and active")
    expect(page.locator("h1 .status")).to_have_text("Active")
    expect(page.locator("table").last).to_contain_text("Owner phoned support")
    page.get_by_role("link", name="Acme Leads").first.click()
    row = page.get_by_role("row").filter(has_text="Sunset Realty")
    expect(row.locator(".status")).to_have_text("Active")
    expect(row).to_contain_text("Granted by staff")


def test_a_malformed_uuid_is_refused_and_what_was_typed_stays(page: Page, kim, acme):
    log_in(page, "kim")
    page.goto(f"/partners/{acme.slug}/sites/")

    page.get_by_label("Site UUID").fill("5d9b2f5e-7c1a-NOPE")
    page.get_by_label("Name").fill("Typo Realty")
    page.get_by_role("button", name="Grant site").click()

    expect(page.get_by_text("That is not a site UUID.")).to_be_visible()
    expect(page.get_by_label("Site UUID")).to_have_value("5d9b2f5e-7c1a-NOPE")
    expect(page.get_by_label("Name")).to_have_value("Typo Realty")
    assert not Site.objects.exists()


def test_the_grant_url_copy_button_copies_it(page: Page, kim, acme):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    log_in(page, "kim")
    page.goto(f"/partners/{acme.slug}/sites/")

    page.get_by_role("button", name="Copy").click()

    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == acme.grant_url()


def test_an_issued_api_key_secret_is_shown_exactly_once(page: Page, kim, acme):
    log_in(page, "kim")
    page.goto(f"/partners/{acme.slug}/")

    page.get_by_label("Label").fill("CRM production")
    page.get_by_role("button", name="Issue a key").click()

    secret = page.locator("#key-secret").inner_text().strip()
    key = ApiKey.objects.get(partner=acme)
    assert ApiKey.objects.authenticate(key.key_id, secret) == key
    page.get_by_role("link", name="Done").click()
    keys = page.locator("section.card", has=page.get_by_role("heading", name="API keys"))
    expect(keys.get_by_role("row").filter(has_text="CRM production")).to_contain_text(key.key_id)
    assert secret not in page.content()
    page.reload()
    assert secret not in page.content()

    page.once("dialog", lambda dialog: dialog.accept())
    keys.get_by_role("row").filter(has_text="CRM production").get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("status")).to_contain_text(f"Key {key.key_id} revoked")
    assert ApiKey.objects.authenticate(key.key_id, secret) is None


def test_staff_of_one_partner_cannot_see_another_partners_pages(page: Page, kim, acme, other):
    site_grant(partner=other, site_uuid=uuid.UUID(SITE_UUID), name="Other Realty", source=Site.Source.COMMAND)
    key, _ = api_key_issue(partner=other, label="other crm")
    log_in(page, "kim")

    for path in ("/partners/", "/sites/", "/"):
        page.goto(path)
        expect(page.locator("main")).to_contain_text("Acme Leads")
        expect(page.locator("main")).not_to_contain_text("Other Co")

    for path in (
        f"/partners/{other.slug}/",
        f"/partners/{other.slug}/edit/",
        f"/partners/{other.slug}/sites/",
        f"/partners/{other.slug}/sites/{SITE_UUID}/",
    ):
        response = page.goto(path)
        assert response is not None and response.status == 404, path
        expect(page.locator("body")).not_to_contain_text("Other Realty")
        expect(page.locator("body")).not_to_contain_text(key.key_id)


def test_screenshots_of_the_sites_and_partners_pages(page: Page, django_user_model, acme, other, tmp_path):
    """Always renders the pages; with PORTAL_SCREENSHOTS_DIR set, keeps the PNGs there (docs/screenshots)."""
    django_user_model.objects.create_superuser("admin", password=PASSWORD)
    for n, (name, source) in enumerate(
        [
            ("Sunset Realty", Site.Source.CALLBACK),
            ("Harbor Homes", Site.Source.EMAIL),
            ("Maple Street Group", Site.Source.MANUAL),
            ("Gone Homes", Site.Source.EMAIL),
        ]
    ):
        site = site_grant(
            partner=acme,
            site_uuid=uuid.UUID(int=0x5D9B2F5E7C1A4E639D0B2A8C6F1E4B70 + n),
            name=name,
            source=source,
            note="integration_enabled" if source == Site.Source.CALLBACK else "",
        )
        if name == "Gone Homes":
            site_revoke(site=site, source=Site.Source.CALLBACK, note="integration_disabled")
    api_key_issue(partner=acme, label="CRM production")
    api_key_issue(partner=acme, label="Website forms")
    log_in(page, "admin")
    page.goto(f"/partners/{acme.slug}/sites/")
    page.get_by_label("Site UUID").fill("9a3c1e7b-2d4f-4b6a-8c0e-1f2a3b4c5d6e")
    page.get_by_label("Name").fill("Lakeside Properties")
    page.get_by_label("Note").fill("Grant email went to spam; owner confirmed by phone")
    page.get_by_role("button", name="Grant site").click()
    expect(page.get_by_role("status")).to_contain_text("granted and active")

    out = Path(os.environ.get("PORTAL_SCREENSHOTS_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    shots = {
        "sites.png": f"/partners/{acme.slug}/sites/",
        "partners.png": "/partners/",
        "partner.png": f"/partners/{acme.slug}/",
        "partner-edit.png": f"/partners/{acme.slug}/edit/",
        "site.png": f"/partners/{acme.slug}/sites/9a3c1e7b-2d4f-4b6a-8c0e-1f2a3b4c5d6e/",
        "audit.png": "/audit/",
    }
    for filename, path in shots.items():
        page.goto(path)
        expect(page.locator("main h1")).to_be_visible()
        page.screenshot(path=str(out / filename), full_page=True)
        assert (out / filename).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
