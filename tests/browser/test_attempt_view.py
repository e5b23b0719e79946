"""The engineer's task in a real browser: copy the cURL of a failed attempt and see the field
Real Geeks named. Real Geeks is the live server's sandbox, and tasks run inline.

The portal checks bodies with RG's own rules, so a body RG refuses with a 422 naming a field can
only be one accepted before a rule existed: the test writes such a payload into the delivery,
then staff retry it and the sandbox refuses it for real.
"""

import os
import shlex
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
from sandbox.services import sandbox_account_ensure
from tests.browser.leads import dead_with_a_body_rg_refuses
from tests.browser.staff import RG_PASSWORD, log_in

SITE_UUID = uuid.UUID("5d9b2f5e-7c1a-4e63-9d0b-2a8c6f1e4b70")


@pytest.fixture
def acme(transactional_db, sandbox_as_rg) -> Partner:
    partner = partner_create(name="Acme Leads", rg_username="acme", rg_password=RG_PASSWORD, webhook_secret="whsec-a")
    sandbox_account_ensure(username="acme", password=RG_PASSWORD, site_uuids=[SITE_UUID])
    site_grant(partner=partner, site_uuid=SITE_UUID, source=Site.Source.MANUAL, name="Sunset Realty")
    return partner


def test_an_engineer_copies_the_curl_of_a_refused_attempt_and_sees_the_field_rg_named(
    page: Page, settings, kim, acme, live_server
):
    lead = dead_with_a_body_rg_refuses(acme, "kai.akana@example.com", SITE_UUID, first_name="Kai")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    log_in(page, "kim")
    page.goto(f"/partners/{acme.slug}/leads/{lead.lead_id}/")
    page.get_by_role("button", name="Retry now").click()
    expect(page.locator(".timeline")).to_contain_text("Property field 'full_baths' is not a valid integer.")

    page.get_by_role("link", name="Headers, cURL and diffs").click()
    newest = page.locator("details.engineer").first
    expect(newest.locator("summary")).to_contain_text("attempt #2")
    expect(newest.locator("mark.offending")).to_be_visible()  # open: the attempt failed
    expect(newest.locator("mark.offending")).to_contain_text('"full_baths": 2.5')
    expect(newest.locator("dl.headers")).to_contain_text("Basic [redacted]")
    expect(newest.locator("ol.diff li.add").filter(has_text="full_baths")).to_have_count(1)

    newest.get_by_role("button", name="Copy as cURL").click()
    expect(newest.get_by_role("button", name="Copied")).to_be_visible()
    copied = page.evaluate("navigator.clipboard.readText()")
    argv = shlex.split(copied.replace(" \\\n", " "))
    assert argv[argv.index("-u") + 1] == "$RG_USERNAME:$RG_PASSWORD"
    assert '"full_baths": 2.5' in argv[argv.index("--data-binary") + 1]
    assert RG_PASSWORD not in copied and "Authorization" not in copied
    if os.environ.get("PORTAL_SCREENSHOTS_DIR"):  # docs/screenshots, as tests/browser/test_lead_pages.py
        page.screenshot(path=str(Path(os.environ["PORTAL_SCREENSHOTS_DIR"]) / "delivery-attempt.png"), full_page=True)
