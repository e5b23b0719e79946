"""The callbacks pages: every stored Destination request, scoped to the user's partners, reprocess."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.datastructures import CaseInsensitiveMapping

from core.models import AuditEntry
from grants.callbacks import webhook_event_receive, webhook_rejection_record
from grants.models import Partner, Site, WebhookEvent
from portal.views import callbacks as callback_views

pytestmark = pytest.mark.django_db

SITE_UUID = uuid.UUID("8f14e45f-ceea-4e67-a2b1-0d5c3b9a7e21")
LEAD_ID = uuid.UUID("3b5d5c37-11a2-4f6e-9d4c-8a7b6c5d4e3f")
SECRETS = ["rg-password-acme", "whsec-acme", "rg-password-other", "whsec-other"]


@pytest.fixture(autouse=True)
def inline_tasks(settings):
    # Reprocessing queues a Celery task on commit; here it runs in the test's own thread.
    settings.CELERY_TASK_ALWAYS_EAGER = True


def receive(partner: Partner, body: dict | bytes, *, action: str = "", **headers: str) -> WebhookEvent:
    """A callback stored the way the webhook view stores a verified one (not yet processed)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {"X-Lead-Router-Timestamp": "2026-11-03T18:22:05.123456789Z", "Content-Type": "application/json"}
    if action:
        sent["X-Lead-Router-Action"] = action
    received = webhook_event_receive(
        partner_id=partner.pk, body=raw, headers=CaseInsensitiveMapping({**sent, **headers}), remote_addr="203.0.113.9"
    )
    assert received.event_id is not None
    return WebhookEvent.objects.get(pk=received.event_id)


def failed(event: WebhookEvent, error: str) -> WebhookEvent:
    WebhookEvent.objects.filter(pk=event.pk).update(state=WebhookEvent.State.FAILED, error=error, attempts=1)
    event.refresh_from_db()
    return event


def test_the_list_shows_each_callback_newest_first_with_its_state(acme_client, partner):
    lead = receive(partner, {"id": str(LEAD_ID).replace("-", ""), "site_uuid": str(SITE_UUID)}, action="created")
    enabled = failed(
        receive(partner, {"site_uuid": str(SITE_UUID)}, action="integration_enabled"), "OperationalError: locked"
    )
    WebhookEvent.objects.filter(pk=lead.pk).update(received_at=datetime(2026, 11, 3, 18, 0, tzinfo=UTC))
    WebhookEvent.objects.filter(pk=enabled.pk).update(received_at=datetime(2026, 11, 3, 18, 5, tzinfo=UTC))

    content = acme_client.get(reverse("portal:callback_list")).content.decode()

    assert content.index("<code>integration_enabled</code>") < content.index("<code>created</code>")
    assert "2026-11-03 18:05:00" in content
    assert str(LEAD_ID) in content  # normalised: RG sent it without dashes
    assert "OperationalError: locked" in content
    assert reverse("portal:callback_detail", args=[enabled.public_id]) in content


def test_staff_never_see_another_partners_callbacks_even_by_guessing_urls(acme_client, partner, other_partner):
    theirs = failed(
        receive(other_partner, {"site_uuid": str(SITE_UUID)}, action="integration_enabled"), "Other Co's failure"
    )
    webhook_rejection_record(partner_id=other_partner.pk, reason="Other Co's bad signature")

    listing = acme_client.get(reverse("portal:callback_list")).content.decode()
    detail = acme_client.get(reverse("portal:callback_detail", args=[theirs.public_id]))
    reprocess = acme_client.post(reverse("portal:callback_reprocess", args=[theirs.public_id]))
    filtered = acme_client.get(reverse("portal:callback_list"), {"partner": other_partner.slug})

    assert "Other Co" not in listing
    assert (detail.status_code, reprocess.status_code) == (404, 404)
    assert "Other Co" not in filtered.content.decode()
    theirs.refresh_from_db()
    assert theirs.state == WebhookEvent.State.FAILED
    assert not AuditEntry.objects.exists()


def test_the_rejected_signature_count_and_last_reason_are_shown_per_partner(root_client, partner, other_partner):
    for _ in range(3):
        webhook_rejection_record(partner_id=partner.pk, reason="Signature does not match", remote_addr="198.51.100.7")

    content = root_client.get(reverse("portal:callback_list")).content.decode()

    acme_card = content[content.index('data-partner="acme-leads"') :][:600]
    other_card = content[content.index('data-partner="other-co"') :][:600]
    assert '<div class="count">3</div>' in acme_card
    assert "Signature does not match" in acme_card
    assert "198.51.100.7" in acme_card
    assert '<div class="count">0</div>' in other_card


@pytest.mark.parametrize(
    ("filters", "shown", "hidden"),
    [
        ({"action": "integration_enabled"}, "enabled-site", "lead-site"),
        ({"state": "failed"}, "enabled-site", "lead-site"),
        ({"site": "45C48CCE2E2D4FBD8A3C7B9E1F0D6A52"}, "lead-site", "enabled-site"),
        ({"partner": "acme-leads"}, "enabled-site", "other-site"),
    ],
)
def test_the_list_filters_by_partner_action_state_and_site(root_client, partner, other_partner, filters, shown, hidden):
    sites = {
        "enabled-site": uuid.UUID("8f14e45f-ceea-4e67-a2b1-0d5c3b9a7e21"),
        "lead-site": uuid.UUID("45c48cce-2e2d-4fbd-8a3c-7b9e1f0d6a52"),
        "other-site": uuid.UUID("c9f0f895-fb98-4b91-9f2e-6a1d3e7c5b40"),
    }
    failed(receive(partner, {"site_uuid": str(sites["enabled-site"])}, action="integration_enabled"), "boom")
    receive(partner, {"id": str(LEAD_ID), "site_uuid": str(sites["lead-site"])}, action="created")
    receive(other_partner, {"site_uuid": str(sites["other-site"])}, action="integration_disabled")

    content = root_client.get(reverse("portal:callback_list"), filters).content.decode()

    assert str(sites[shown]) in content
    assert str(sites[hidden]) not in content


def test_a_malformed_site_filter_says_so_and_keeps_what_was_typed(acme_client, partner):
    receive(partner, {"site_uuid": str(SITE_UUID)}, action="integration_enabled")

    response = acme_client.get(reverse("portal:callback_list"), {"site": "8f14e45f-NOPE"})

    content = response.content.decode()
    assert response.status_code == 200
    assert "That is not a site UUID." in content
    assert 'value="8f14e45f-NOPE"' in content
    assert str(SITE_UUID) not in content


def test_pages_go_back_in_time_by_keyset_without_repeating_or_skipping(acme_client, partner, monkeypatch):
    monkeypatch.setattr(callback_views, "PAGE_SIZE", 2)
    at = datetime(2026, 11, 3, 18, 0, tzinfo=UTC)
    # Two arrive in the same microsecond: the id breaks the tie.
    times = [at, at + timedelta(seconds=1), at + timedelta(seconds=1), at + timedelta(seconds=2), at]
    events = []
    for n, when in enumerate(times):
        event = receive(partner, {"n": n}, action=f"action-{n}")
        WebhookEvent.objects.filter(pk=event.pk).update(received_at=when)
        events.append(event)

    seen: list[str] = []
    url = reverse("portal:callback_list")
    for _ in range(5):
        response = acme_client.get(url)
        seen += [row["event"].action for row in response.context["rows"]]
        if response.context["next_cursor"] is None:
            break
        url = reverse("portal:callback_list") + f"?older_than={response.context['next_cursor']}"

    assert seen == ["action-3", "action-2", "action-1", "action-4", "action-0"]


def test_the_detail_page_shows_the_body_pretty_printed_and_escaped_with_redacted_headers(acme_client, partner):
    event = receive(
        partner,
        {"id": str(LEAD_ID), "site_uuid": str(SITE_UUID), "notes": "<script>alert('x')</script>"},
        action="created",
        Authorization="Bearer rg-token-123",
    )

    content = acme_client.get(reverse("portal:callback_detail", args=[event.public_id])).content.decode()

    assert "\n  &quot;notes&quot;: &quot;&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&quot;" in content
    assert "<script>alert" not in content
    assert "X-Lead-Router-Timestamp" in content
    assert "[redacted]" in content
    assert "rg-token-123" not in content


def test_the_detail_page_shows_only_the_start_of_the_signature_and_any_header_overruled(acme_client, partner):
    signature = "8b1d7a686ad16cb6207815341454dc1254266a88cc17fd46d10eb1ad3085c0f2"
    event = receive(
        partner,
        {"action": "integration_enabled", "site_uuid": str(SITE_UUID)},
        action="integration_disabled",
        **{"X-Lead-Router-Signature": signature, "X-Lead-Router-Timestamp": "2099-01-01T00:00:00Z"},
    )

    content = acme_client.get(reverse("portal:callback_detail", args=[event.public_id])).content.decode()
    listing = acme_client.get(reverse("portal:callback_list")).content.decode()

    assert signature not in content
    assert signature[:16] not in content
    assert "8b1d7a68… (verified on arrival)" in content
    assert "X-Lead-Router-Action said &#x27;integration_disabled&#x27;; the signed body says" in content
    assert "2099-01-01T00:00:00Z is later than the request arrived" in content
    assert "<code>2099-01-01T00:00:00Z</code>" in content  # the header as sent, beside what was believed
    assert "Headers overruled." in listing


def test_a_body_that_is_not_json_is_shown_as_received_and_cannot_be_reprocessed(acme_client, partner):
    event = receive(partner, b"<html>not json</html>", action="created")

    content = acme_client.get(reverse("portal:callback_detail", args=[event.public_id])).content.decode()
    response = acme_client.post(reverse("portal:callback_reprocess", args=[event.public_id]), follow=True)

    assert "&lt;html&gt;not json&lt;/html&gt;" in content
    assert "Not a JSON object" in content
    assert "Reprocess</button>" not in content
    assert "there is nothing to process" in response.content.decode()
    assert not AuditEntry.objects.exists()


def test_reprocess_runs_a_failed_callback_again_and_audits_who_asked(
    acme_client, acme_staff, partner, django_capture_on_commit_callbacks
):
    event = failed(
        receive(partner, {"site_uuid": str(SITE_UUID), "site_domain": "alohahomes.com"}, action="integration_enabled"),
        "OperationalError: database is locked",
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = acme_client.post(reverse("portal:callback_reprocess", args=[event.public_id]))
    page = acme_client.get(response["Location"]).content.decode()

    event.refresh_from_db()
    assert response.status_code == 302
    assert (event.state, event.attempts) == (WebhookEvent.State.PROCESSED, 2)
    site = Site.objects.get(partner=partner, site_uuid=SITE_UUID)
    assert (site.status, site.domain) == (Site.Status.ACTIVE, "alohahomes.com")
    assert site.status_changes.get().webhook_event == event
    entry = AuditEntry.objects.get(action="webhook_event.reprocess")
    assert (entry.actor, entry.partner, entry.object_id) == (acme_staff, partner, str(event.public_id))
    assert entry.before == {"state": "failed", "error": "OperationalError: database is locked"}
    assert entry.after == {"state": "received"}
    assert "Reprocess requested (was failed)" in page
    assert "alohahomes.com" in page


def test_a_site_granted_by_a_callback_links_to_it_from_the_site_page_and_the_admin(
    root_client, partner, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        event = receive(partner, {"site_uuid": str(SITE_UUID)}, action="integration_enabled")
    site = Site.objects.get(partner=partner, site_uuid=SITE_UUID)
    link = reverse("portal:callback_detail", args=[event.public_id])

    site_page = root_client.get(reverse("portal:site_detail", args=[partner.slug, SITE_UUID])).content.decode()
    admin_page = root_client.get(reverse("admin:grants_site_change", args=[site.pk])).content.decode()

    assert f'<a href="{link}">(callback)</a>' in site_page
    assert f'<a href="{link}">callback</a>' in admin_page


def test_the_reprocess_form_needs_a_csrf_token(partner, acme_staff):
    event = failed(receive(partner, {"site_uuid": str(SITE_UUID)}, action="integration_enabled"), "boom")
    client = Client(enforce_csrf_checks=True)
    client.force_login(acme_staff)

    page = client.get(reverse("portal:callback_detail", args=[event.public_id])).content.decode()
    response = client.post(reverse("portal:callback_reprocess", args=[event.public_id]))

    assert page.count('name="csrfmiddlewaretoken"') == page.count('method="post"') == 2  # reprocess, log out
    assert response.status_code == 403
    event.refresh_from_db()
    assert event.state == WebhookEvent.State.FAILED


def test_the_callback_pages_show_no_secret(root_client, partner, other_partner):
    event = failed(receive(partner, {"site_uuid": str(SITE_UUID)}, action="integration_enabled"), "boom")
    webhook_rejection_record(partner_id=partner.pk, reason="Signature does not match")

    for url in (
        reverse("portal:callback_list"),
        reverse("portal:callback_list") + "?site=nope",
        reverse("portal:callback_detail", args=[event.public_id]),
    ):
        content = root_client.get(url).content.decode()
        for secret in SECRETS:
            assert secret not in content, (secret, url)


def test_anonymous_users_are_sent_to_log_in(client, partner):
    event = receive(partner, {"site_uuid": str(SITE_UUID)}, action="integration_enabled")
    for url in (reverse("portal:callback_list"), reverse("portal:callback_detail", args=[event.public_id])):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")
