"""A lead's page lists RG's newest callbacks about it and links to all of them; the callbacks list
filters by lead id and refuses a malformed one with a form error."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.datastructures import CaseInsensitiveMapping

from grants.callbacks import webhook_event_receive
from grants.models import Partner, Site, WebhookEvent
from grants.services import site_grant
from leads.models import Lead
from leads.services import lead_submit
from portal.views import leads as lead_views

pytestmark = pytest.mark.django_db

SITE_UUID = uuid.UUID("8f14e45f-ceea-4e67-a2b1-0d5c3b9a7e21")
STRANGER_ID = uuid.UUID("11111111-2222-4333-8444-555555555555")


def lead_for(partner: Partner) -> Lead:
    site_grant(partner=partner, site_uuid=SITE_UUID, source=Site.Source.MANUAL, name="Aloha Homes")
    data = {"source": "Zillow", "email": "kai@example.com", "first_name": "Kai"}
    return lead_submit(partner=partner, site_uuid=SITE_UUID, operation="create_lead", data=data).lead


def callback(partner: Partner, lead_id: uuid.UUID, action: str, at: datetime) -> WebhookEvent:
    """A stored callback naming `lead_id` (RG drops the dashes; the webhook normalises)."""
    body = json.dumps({"action": action, "id": lead_id.hex, "site_uuid": str(SITE_UUID), "n": at.isoformat()})
    received = webhook_event_receive(
        partner_id=partner.pk,
        body=body.encode(),
        headers=CaseInsensitiveMapping({"Content-Type": "application/json"}),
        remote_addr="203.0.113.9",
    )
    assert received.event_id is not None  # a new body, so stored
    WebhookEvent.objects.filter(pk=received.event_id).update(received_at=at)
    return WebhookEvent.objects.get(pk=received.event_id)


def lead_url(lead: Lead) -> str:
    return reverse("portal:lead_detail", args=[lead.partner.slug, lead.lead_id])


def test_the_lead_page_lists_its_callbacks_newest_first_with_links(acme_client, partner):
    lead = lead_for(partner)
    older = callback(partner, lead.lead_id, "lead_updated", datetime(2026, 11, 3, 18, 0, tzinfo=UTC))
    newer = callback(partner, lead.lead_id, "activity_added", datetime(2026, 11, 3, 18, 5, tzinfo=UTC))
    callback(partner, STRANGER_ID, "lead_deleted", datetime(2026, 11, 3, 18, 6, tzinfo=UTC))

    content = acme_client.get(lead_url(lead)).content.decode()

    section = content[content.index('id="callbacks-title"') :]
    section = section[: section.index("</section>")]
    assert section.index("<code>activity_added</code>") < section.index("<code>lead_updated</code>")
    assert "lead_deleted" not in section  # another lead's
    assert reverse("portal:callback_detail", args=[newer.public_id]) in section
    assert reverse("portal:callback_detail", args=[older.public_id]) in section
    assert 'datetime="2026-11-03T18:05:00Z"' in section
    assert f'href="/callbacks/?partner={partner.slug}&amp;lead={lead.lead_id}">All 2 callbacks</a>' in section


def test_the_lead_page_shows_the_newest_few_and_counts_them_all(acme_client, partner, monkeypatch):
    monkeypatch.setattr(lead_views, "LEAD_CALLBACKS", 2)
    lead = lead_for(partner)
    start = datetime(2026, 11, 3, 18, 0, tzinfo=UTC)
    events = [callback(partner, lead.lead_id, f"action_{n}", start + timedelta(minutes=n)) for n in range(3)]

    content = acme_client.get(lead_url(lead)).content.decode()

    assert "action_2" in content and "action_1" in content
    assert reverse("portal:callback_detail", args=[events[0].public_id]) not in content
    assert "All 3 callbacks</a>" in content


def test_a_lead_without_callbacks_says_so(acme_client, partner):
    content = acme_client.get(lead_url(lead_for(partner))).content.decode()

    assert "Real Geeks has sent no callback about this lead." in content
    assert "All 0 callbacks" not in content


def test_another_partners_callbacks_about_the_same_lead_id_stay_off_the_page(acme_client, partner, other_partner):
    lead = lead_for(partner)
    callback(other_partner, lead.lead_id, "other_cos_event", datetime(2026, 11, 3, 18, 0, tzinfo=UTC))

    content = acme_client.get(lead_url(lead)).content.decode()

    assert "other_cos_event" not in content


def test_the_callbacks_query_uses_the_partial_lead_index(acme_client, partner):
    lead = lead_for(partner)
    callback(partner, lead.lead_id, "lead_updated", datetime(2026, 11, 3, 18, 0, tzinfo=UTC))

    with CaptureQueriesContext(connection) as queries:
        acme_client.get(lead_url(lead))

    sql = next(q["sql"] for q in queries.captured_queries if '"grants_webhookevent"' in q["sql"])
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
        plan = " ".join(str(row) for row in cursor.fetchall())
    assert "webhook_event_lead_recv" in plan


def test_the_callbacks_list_filters_to_one_lead(acme_client, partner):
    lead = lead_for(partner)
    callback(partner, lead.lead_id, "ours", datetime(2026, 11, 3, 18, 0, tzinfo=UTC))
    callback(partner, STRANGER_ID, "theirs", datetime(2026, 11, 3, 18, 1, tzinfo=UTC))

    content = acme_client.get(reverse("portal:callback_list"), {"lead": lead.lead_id.hex}).content.decode()

    assert "<code>ours</code>" in content
    assert "<code>theirs</code>" not in content


@pytest.mark.parametrize("bad", ["not-a-uuid", "1' OR '1'='1", "<script>x</script>", "0" * 300, "\x00"])
def test_a_malformed_lead_filter_is_a_form_error_and_lists_nothing(acme_client, partner, bad):
    callback(partner, STRANGER_ID, "theirs", datetime(2026, 11, 3, 18, 1, tzinfo=UTC))

    response = acme_client.get(reverse("portal:callback_list"), {"lead": bad})

    content = response.content.decode()
    assert response.status_code == 200
    assert "That is not a lead id." in content
    assert "<code>theirs</code>" not in content
    assert "<script>x</script>" not in content
