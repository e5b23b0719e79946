"""Every kind of dashboard page fits the window, on a laptop and on a phone, even when the data holds
values no layout expects: a lead whose name, email, source and notes are 300+ characters without a
space, a partner and a site with 200-character names. Also: at phone width the nav reaches every
section. With PORTAL_SCREENSHOTS_DIR set, the pages' screenshots are kept there.
"""

import json
import os
import uuid
from pathlib import Path

import pytest
from django.utils.datastructures import CaseInsensitiveMapping

try:
    from playwright.sync_api import Page, ViewportSize, expect
except ImportError:  # the conftest's chromium_available explains; here only collection must not break
    if os.environ.get("REQUIRE_REAL_SERVERS") == "1":
        raise
    pytest.skip("BROWSER TESTS SKIPPED: the playwright package is not installed", allow_module_level=True)

from alerts.models import Channel, Incident
from alerts.services import channel_create
from core.audit import audit_record
from grants.callbacks import webhook_event_receive
from grants.emails import grant_email_receive
from grants.models import GrantEmail, Partner, Site, WebhookEvent
from grants.services import partner_create, site_grant
from leads.models import Delivery, Lead
from leads.services import lead_submit
from sandbox.services import sandbox_account_ensure
from tests.browser.staff import PASSWORD, RG_PASSWORD, log_in

SITE_UUID = uuid.UUID("5d9b2f5e-7c1a-4e63-9d0b-2a8c6f1e4b70")
SIZES: dict[str, ViewportSize] = {"desktop": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}

# No spaces anywhere: nothing to wrap at unless the layout allows breaking inside a word.
PARTNER_NAME = "Kailua" + "K" * 194
SITE_NAME = "Lanikai" + "L" * 193
FIRST_NAME = "Kealoha" + "k" * 293  # 300: a lead's name column holds no more
EMAIL = "m" * 300 + "@example.com"
SOURCE = "Campaign" + "s" * 312
NOTES = "Notes" + "n" * 395
ERROR = "Real Geeks answered 422: " + "e" * 475


@pytest.fixture
def ugly(transactional_db, sandbox_as_rg, django_user_model) -> dict[str, str]:
    """One of each kind of object, every one with a value far longer than any column; the paths of their pages."""
    django_user_model.objects.create_superuser("ops", password=PASSWORD)
    # partner_create derives a slug of at most 100 characters from the name, so the name comes after.
    partner = partner_create(name="Kailua", rg_username="kailua", rg_password=RG_PASSWORD, webhook_secret="whsec-k")
    Partner.objects.filter(pk=partner.pk).update(name=PARTNER_NAME)
    partner.refresh_from_db()
    sandbox_account_ensure(username="kailua", password=RG_PASSWORD, site_uuids=[SITE_UUID])
    site_grant(partner=partner, site_uuid=SITE_UUID, name=SITE_NAME, source=Site.Source.MANUAL, note=NOTES)
    delivery = lead_submit(
        partner=partner,
        site_uuid=SITE_UUID,
        operation="create_lead",
        data={"source": SOURCE, "email": EMAIL, "first_name": FIRST_NAME, "notes": NOTES, "phone": "808-555-0199"},
    )
    # A failure whose message is as long as the column holds, on the lead and on its delivery.
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.FAILED, last_error=ERROR)
    Lead.objects.filter(pk=delivery.lead_id).update(status=Lead.Status.FAILED, last_status_code=422, last_error=ERROR)
    lead = Lead.objects.get(pk=delivery.lead_id)
    audit_record(
        actor=None, action="lead.edit_resend", obj=lead, partner=partner, before={"notes": ""}, after={"notes": NOTES}
    )

    body = {"id": str(lead.lead_id), "site_uuid": str(SITE_UUID), "first_name": FIRST_NAME, "source": SOURCE}
    received = webhook_event_receive(
        partner_id=partner.pk,
        body=json.dumps(body).encode(),
        headers=CaseInsensitiveMapping({"X-Lead-Router-Action": "created", "X-Custom-" + "h" * 120: NOTES}),
        remote_addr="203.0.113.9",
    )
    assert received.event_id is not None
    WebhookEvent.objects.filter(pk=received.event_id).update(state=WebhookEvent.State.FAILED, error=ERROR)
    event = WebhookEvent.objects.get(pk=received.event_id)

    grant_email = grant_email_receive(
        (
            f"From: Real Geeks <noreply@realgeeks.com>\nTo: {EMAIL}\nSubject: Granted{'g' * 240}\n"
            f"Message-ID: <layout-1@mail.realgeeks.com>\n\nSite: {SITE_NAME}\nSite UUID: {SITE_UUID}\n"
            f"Domain: {'d' * 60}.example.com\n{NOTES}\n"
        ).encode(),
        source=GrantEmail.Source.INBOUND,
        partner=partner,
    )

    channel, _ = channel_create(
        partner=partner,
        kind=Channel.Kind.WEBHOOK,
        name="Pager" + "p" * 195,
        target="https://hooks.example.com/" + "t" * 300,
    )
    incident = Incident.objects.create(
        partner=partner,
        rule=Incident.Rule.NEEDS_HUMAN,
        title="Failed" + "f" * 294,
        details={"summary": NOTES},
    )
    return {
        "overview": "/",
        "leads": "/leads/",
        "lead": f"/partners/{partner.slug}/leads/{lead.lead_id}/",
        "lead-edit": f"/partners/{partner.slug}/leads/{lead.lead_id}/edit/",
        "bulk": f"/bulk/?partner={partner.slug}&http_status=422",
        "sites": "/sites/",
        "site-list": f"/partners/{partner.slug}/sites/",
        "site": f"/partners/{partner.slug}/sites/{SITE_UUID}/",
        "callbacks": "/callbacks/",
        "callback": f"/callbacks/{event.public_id}/",
        "grant-emails": "/grant-emails/",
        "grant-email": f"/grant-emails/{grant_email.public_id}/",
        "partners": "/partners/",
        "partner": f"/partners/{partner.slug}/",
        "partner-edit": f"/partners/{partner.slug}/edit/",
        "audit": "/audit/",
        "alerts": "/alerts/",
        "incident": f"/alerts/incidents/{incident.public_id}/",
        "channel": f"/alerts/channels/{channel.public_id}/",
    }


def overflow(page: Page) -> int:
    """How many pixels the page is wider than the window (0 when it fits)."""
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


def off_screen(page: Page, selector: str) -> list[str]:
    """The texts of visible elements matching `selector` that are not wholly inside the window's width."""
    return list(
        page.evaluate(
            """selector => [...document.querySelectorAll(selector)]
                .filter(el => el.getClientRects().length)
                .map(el => [el, el.getBoundingClientRect()])
                .filter(([, box]) => box.left < 0 || box.right > window.innerWidth)
                .map(([el]) => el)
                .map(el => el.textContent.trim())""",
            selector,
        )
    )


@pytest.mark.parametrize("size", SIZES)
def test_no_page_is_wider_than_the_window_with_long_values(page: Page, ugly, size, tmp_path):
    page.set_viewport_size(SIZES[size])
    log_in(page, "ops")
    out = Path(os.environ.get("PORTAL_SCREENSHOTS_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)

    too_wide: dict[str, int] = {}
    for name, path in ugly.items():
        response = page.goto(path)
        assert response is not None and response.status == 200, path
        expect(page.locator("main h1")).to_be_visible()
        if extra := overflow(page):
            too_wide[name] = extra
        # "long-": the ugly data, apart from the realistic screenshots of the same pages.
        page.screenshot(path=str(out / f"long-{name}-{size}.png"), full_page=True)

    assert too_wide == {}, f"pages wider than {SIZES[size]['width']} px, by how many px: {too_wide}"


@pytest.mark.parametrize("size", SIZES)
def test_long_values_are_cut_in_lists_and_whole_on_hover_and_on_the_lead_page(page: Page, ugly, size):
    page.set_viewport_size(SIZES[size])
    log_in(page, "ops")

    page.goto(ugly["leads"])
    name = page.locator("table.leads td.who strong")
    expect(name).to_have_attribute("title", FIRST_NAME)
    assert name.evaluate("el => el.scrollWidth > el.clientWidth"), "the list shows the long name cut"
    expect(page.locator("table.leads").get_by_title(SITE_NAME)).to_be_visible()

    page.get_by_title(FIRST_NAME).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(FIRST_NAME)
    assert overflow(page) == 0
    assert off_screen(page, ".page-head .lead-actions :is(a, button)") == [], "every action of the lead is on screen"
    expect(page.locator("dl.facts")).to_contain_text(EMAIL[:254])


def test_at_phone_width_the_nav_reaches_every_section(page: Page, ugly):
    page.set_viewport_size(SIZES["phone"])
    log_in(page, "ops")
    nav = page.get_by_role("navigation", name="Main")
    links = nav.get_by_role("link")
    names = links.all_inner_texts()
    assert names == [
        "Overview",
        "Leads",
        "Bulk retry",
        "Sites",
        "Callbacks",
        "Grant emails",
        "Alerts",
        "Partners",
        "Audit",
        "Admin",
    ]

    for name in names:
        page.goto(ugly["lead"])  # the widest page, from which each section must still be in reach
        assert off_screen(page, "header.top nav a") == [], "every nav link is inside the window"
        link = nav.get_by_role("link", name=name, exact=True)
        expect(link).to_be_visible()
        href = link.get_attribute("href")
        link.click()
        page.wait_for_url(f"**{href}")
        assert overflow(page) == 0 or name == "Admin", name
