"""Callbacks and grant emails in a real browser: grant a site from a pasted email, reprocess a
failed callback, stay inside one's partners, and keep screenshots of the pages."""

import hashlib
import json
import os
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

try:
    from playwright.sync_api import Page, expect
except ImportError:  # the conftest's chromium_available explains; here only collection must not break
    if os.environ.get("REQUIRE_REAL_SERVERS") == "1":
        raise
    pytest.skip("BROWSER TESTS SKIPPED: the playwright package is not installed", allow_module_level=True)

from grants import destination
from grants.callbacks import webhook_rejection_record
from grants.emails import grant_email_receive
from grants.models import GrantEmail, Partner, Site, WebhookEvent
from tests.browser.staff import PASSWORD, log_in
from tests.grants.mail_auth import authenticated, trust_receiving_server

HARBOR = "45c48cce-2e2d-4fbd-8a3c-7b9e1f0d6a52"
SUNSET = "5d9b2f5e-7c1a-4e63-9d0b-2a8c6f1e4b70"

# What a partner's support person finds in their inbox and copies, headers and all.
PASTED_GRANT_EMAIL = f"""From: Real Geeks Lead Router <noreply@realgeeks.com>
To: support@acme-leads.example
Subject: Lead Router: Harbor Homes granted you access
Date: Tue, 03 Nov 2026 18:22:05 +0000
Message-ID: <grant-7781@mail.realgeeks.com>

Aloha,

A Real Geeks client has granted Acme Leads access to send leads to this site:

  Site: Harbor Homes
  Site UUID: {HARBOR}
  Domain: harborhomes.com

Manage access on your grant page: https://leadrouter.realgeeks.com/dev/acme-co/grant/

Mahalo,
Real Geeks
"""


@pytest.fixture(autouse=True)
def inline_tasks(settings: Any) -> None:
    # Reprocess queues a Celery task after commit; the live server runs it in its own thread.
    settings.CELERY_TASK_ALWAYS_EAGER = True


def stored_callback(
    partner: Partner,
    action: str,
    body: dict[str, Any],
    *,
    state: str = WebhookEvent.State.PROCESSED,
    error: str = "",
    minutes_ago: int = 0,
) -> WebhookEvent:
    """A callback as the webhook stored it, in a given processing state (no task is queued)."""
    raw = json.dumps(body).encode()
    envelope = destination.read_envelope(action, body)
    received = timezone.now() - timedelta(minutes=minutes_ago)
    return WebhookEvent.objects.create(
        partner=partner,
        received_at=received,
        remote_addr="54.187.16.5",
        action=action,
        body=raw,
        body_sha256=hashlib.sha256(raw).hexdigest(),
        headers={
            "Content-Type": "application/json",
            "User-Agent": "RG-LeadRouter/1.0",
            "X-Lead-Router-Action": action,
            "X-Lead-Router-Timestamp": received.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "X-Lead-Router-Signature": hashlib.sha256(b"signature of " + raw).hexdigest(),
        },
        timestamp_raw=received.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        timestamp=received,
        site_uuid=envelope.site_uuid,
        lead_id=envelope.lead_id,
        state=state,
        error=error,
        attempts=0 if state == WebhookEvent.State.RECEIVED else 1,
        claimed_at=None if state == WebhookEvent.State.RECEIVED else received,
        processed_at=received if state in (WebhookEvent.State.PROCESSED, WebhookEvent.State.IGNORED) else None,
    )


def test_staff_grant_a_site_by_pasting_its_grant_email(page: Page, kim, acme, other):
    log_in(page, "kim")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Grant emails").click()
    page.get_by_role("link", name="Paste an email").click()

    page.get_by_label("Email text").fill(PASTED_GRANT_EMAIL)
    expect(page.locator("main").get_by_label("Partner")).to_have_value(acme.slug)  # kim works for Acme only
    page.get_by_role("button", name="Read and grant").click()

    expect(page.get_by_role("status")).to_contain_text("Granted to Acme Leads: Harbor Homes.")
    expect(page.locator("h1")).to_contain_text("Lead Router: Harbor Homes granted you access")
    expect(page.get_by_role("row").filter(has_text=HARBOR).first).to_contain_text("harborhomes.com")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Sites").click()
    page.get_by_role("link", name="Acme Leads").first.click()
    row = page.get_by_role("row").filter(has_text="Harbor Homes")
    expect(row.locator(".status")).to_have_text("Active")
    expect(row).to_contain_text("Grant email")
    row.get_by_role("link", name="Harbor Homes").click()
    page.get_by_role("link", name="(email)").click()
    expect(page.locator("h1")).to_contain_text("Harbor Homes granted you access")
    assert GrantEmail.objects.get().created_by == kim


def test_staff_see_a_failed_callback_and_reprocess_it(page: Page, kim, acme):
    event = stored_callback(
        acme,
        "integration_enabled",
        {"action": "integration_enabled", "site_uuid": SUNSET, "partner_id": "acme", "site_domain": "sunset.example"},
        state=WebhookEvent.State.FAILED,
        error="OperationalError: database is locked",
    )
    webhook_rejection_record(partner_id=acme.pk, reason="Signature does not match", remote_addr="198.51.100.7")
    log_in(page, "kim")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Callbacks").click()
    expect(page.locator(".rejection.has-some .count")).to_have_text("1")
    row = page.get_by_role("row").filter(has_text="integration_enabled")
    expect(row).to_contain_text("OperationalError: database is locked")
    row.get_by_role("link").first.click()
    expect(page.locator("#callback-body")).to_contain_text('"site_domain": "sunset.example"')

    page.get_by_role("button", name="Reprocess").click()

    expect(page.get_by_role("status")).to_contain_text("Processed again: processed.")
    expect(page.locator("h1 .status")).to_have_text("processed")
    expect(page.get_by_role("row").filter(has_text="Reprocess requested (was failed)")).to_contain_text("kim")
    event.refresh_from_db()
    assert event.state == WebhookEvent.State.PROCESSED
    page.get_by_role("link", name="sunset.example").first.click()
    expect(page.locator("h1 .status")).to_have_text("Active")


def test_staff_of_one_partner_cannot_reach_another_partners_callbacks_or_emails(page: Page, kim, acme, other):
    theirs = stored_callback(other, "created", {"id": str(uuid.uuid4()), "site_uuid": SUNSET, "first_name": "Leilani"})
    their_email = grant_email_receive(
        PASTED_GRANT_EMAIL.replace("Acme Leads", "Other Co").encode(), source=GrantEmail.Source.INBOUND, partner=other
    )
    log_in(page, "kim")

    for path in ("/callbacks/", "/grant-emails/"):
        page.goto(path)
        expect(page.locator("main")).not_to_contain_text("Other Co")
        expect(page.locator("main")).not_to_contain_text("Leilani")
        expect(page.locator("main")).not_to_contain_text("Harbor Homes")
    for path in (f"/callbacks/{theirs.public_id}/", f"/grant-emails/{their_email.public_id}/"):
        response = page.goto(path)
        assert response is not None and response.status == 404, path
        expect(page.locator("body")).not_to_contain_text("Harbor Homes")


def test_screenshots_of_the_callbacks_and_grant_email_pages(
    page: Page, django_user_model, acme, other, tmp_path, settings
):
    """Always renders the pages; with PORTAL_SCREENSHOTS_DIR set, keeps the PNGs there (docs/screenshots)."""
    django_user_model.objects.create_superuser("admin", password=PASSWORD)
    lead = "3b5d5c37-11a2-4f6e-9d4c-8a7b6c5d4e3f"
    stored_callback(acme, "integration_enabled", {"site_uuid": SUNSET, "partner_id": "acme"}, minutes_ago=50)
    stored_callback(acme, "created", {"id": lead, "site_uuid": SUNSET, "first_name": "Leilani"}, minutes_ago=41)
    stored_callback(
        acme, "activity_added", {"id": lead, "site_uuid": SUNSET, "activities": [{"type": "note"}]}, minutes_ago=30
    )
    stored_callback(
        acme,
        "integration_enabled",
        {"site_uuid": HARBOR},
        state=WebhookEvent.State.FAILED,
        error="OperationalError: database is locked",
        minutes_ago=22,
    )
    stored_callback(
        acme,
        "potential_seller_v2",
        {"id": lead, "site_uuid": SUNSET},
        state=WebhookEvent.State.IGNORED,
        error="Unknown action 'potential_seller_v2': kept; reprocess it once the action is known.",
        minutes_ago=12,
    )
    stored_callback(other, "user_updated", {"site_uuid": HARBOR, "id": "agent-7"}, minutes_ago=5)
    for _ in range(3):
        webhook_rejection_record(partner_id=acme.pk, reason="Signature does not match", remote_addr="198.51.100.7")
    # Polled from the mailbox, vouched for by the receiving server: it grants by itself.
    trust_receiving_server(settings)
    grant_email_receive(authenticated(PASTED_GRANT_EMAIL.encode()), source=GrantEmail.Source.IMAP, partner=acme)
    # Addressed to no partner and without a grant link: with two partners, staff must decide.
    unmatched = grant_email_receive(
        PASTED_GRANT_EMAIL.replace("grant-7781", "grant-7790")
        .replace("Harbor Homes", "Kailua Realty")
        .replace(HARBOR, "c9f0f895-fb98-4b91-9f2e-6a1d3e7c5b40")
        .replace("harborhomes.com", "kailuarealty.com")
        .replace("Manage access on your grant page: https://leadrouter.realgeeks.com/dev/acme-co/grant/", "")
        .encode(),
        source=GrantEmail.Source.INBOUND,
    )
    assert unmatched.status == GrantEmail.Status.NEEDS_REVIEW
    log_in(page, "admin")

    out = Path(os.environ.get("PORTAL_SCREENSHOTS_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    failed = WebhookEvent.objects.get(state=WebhookEvent.State.FAILED)
    shots = {
        "callbacks.png": "/callbacks/",
        "callback.png": f"/callbacks/{failed.public_id}/",
        "grant-emails.png": "/grant-emails/",
        "grant-email.png": f"/grant-emails/{unmatched.public_id}/",
        "grant-email-paste.png": "/grant-emails/paste/",
    }
    for filename, path in shots.items():
        page.goto(path)
        expect(page.locator("main h1")).to_be_visible()
        page.screenshot(path=str(out / filename), full_page=True)
        assert (out / filename).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert Site.objects.filter(site_uuid=HARBOR, status=Site.Status.ACTIVE).exists()
