"""Audit entries link to their objects' pages, when the object still exists and the user may see
it; the links are found per page in a few queries, not one per row."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.audit import audit_record
from core.models import AuditEntry
from grants.models import Partner, Site
from grants.services import api_key_issue, site_grant
from leads.models import Lead
from leads.services import lead_submit

pytestmark = pytest.mark.django_db

SITE_UUID = uuid.UUID("8f14e45f-ceea-4e67-a2b1-0d5c3b9a7e21")


def lead_for(partner: Partner, email: str = "kai@example.com") -> Lead:
    data = {"source": "Zillow", "email": email, "first_name": "Kai"}
    return lead_submit(partner=partner, site_uuid=SITE_UUID, operation="create_lead", data=data).lead


def audit_page(client) -> str:
    response = client.get(reverse("portal:audit_list"))
    assert response.status_code == 200
    return response.content.decode()


def test_entries_link_to_the_lead_delivery_site_and_partner_they_name(acme_client, acme_staff, partner):
    site = site_grant(partner=partner, site_uuid=SITE_UUID, source=Site.Source.MANUAL, name="Aloha Homes")
    lead = lead_for(partner)
    delivery = lead.deliveries.get()
    for action, obj in [
        ("lead.resend", lead),
        ("delivery.cancel", delivery),
        ("site.note", site),
        ("partner.edit", partner),
    ]:
        audit_record(actor=acme_staff, action=action, obj=obj, partner=partner)

    content = audit_page(acme_client)

    assert f'<a href="{reverse("portal:lead_detail", args=[partner.slug, lead.lead_id])}">lead' in content
    delivery_url = reverse("portal:delivery_detail", args=[partner.slug, lead.lead_id, delivery.public_id])
    assert f'<a href="{delivery_url}">delivery' in content
    assert f'<a href="{reverse("portal:site_detail", args=[partner.slug, SITE_UUID])}">site' in content
    assert f'<a href="{reverse("portal:partner_detail", args=[partner.slug])}">partner' in content


def test_an_api_key_links_to_its_partners_page(acme_client, acme_staff, partner):
    key, _secret = api_key_issue(partner=partner, label="CRM")
    audit_record(actor=acme_staff, action="api_key.revoke", obj=key, partner=partner)

    content = audit_page(acme_client)

    assert (
        f'<a href="{reverse("portal:partner_detail", args=[partner.slug])}">apikey <code>{key.key_id}</code>' in content
    )


def test_a_deleted_object_shows_as_plain_text(acme_client, acme_staff, partner):
    site_grant(partner=partner, site_uuid=SITE_UUID, source=Site.Source.MANUAL, name="Aloha Homes")
    lead = lead_for(partner)
    audit_record(actor=acme_staff, action="lead.resend", obj=lead, partner=partner)
    Lead.objects.filter(pk=lead.pk).delete()

    content = audit_page(acme_client)

    assert f"lead <code>{lead.lead_id}</code>" in content
    assert reverse("portal:lead_detail", args=[partner.slug, lead.lead_id]) not in content


def test_an_object_of_a_partner_the_user_cannot_see_is_not_linked(root_client, acme_client, partner, other_partner):
    site_grant(partner=other_partner, site_uuid=SITE_UUID, source=Site.Source.MANUAL, name="Theirs")
    theirs = lead_for(other_partner)
    # Recorded against Acme (as a misfiled entry would be), so Acme's staff see the entry itself.
    AuditEntry.objects.create(partner=partner, action="lead.resend", object_type="lead", object_id=str(theirs.lead_id))
    url = reverse("portal:lead_detail", args=[other_partner.slug, theirs.lead_id])

    assert url not in audit_page(acme_client)


def test_the_audit_page_finds_links_in_a_fixed_number_of_queries(acme_client, acme_staff, partner):
    site_grant(partner=partner, site_uuid=SITE_UUID, source=Site.Source.MANUAL, name="Aloha Homes")

    def queries_for(count: int) -> int:
        for n in range(count):
            audit_record(
                actor=acme_staff, action="lead.resend", obj=lead_for(partner, f"l{n}@example.com"), partner=partner
            )
        with CaptureQueriesContext(connection) as captured:
            audit_page(acme_client)
        return len(captured)

    few = queries_for(2)
    many = queries_for(20)

    assert many == few


def test_unknown_object_types_and_non_uuid_ids_render_without_links(acme_client, partner):
    AuditEntry.objects.create(partner=partner, action="lead.resend", object_type="lead", object_id="42")
    AuditEntry.objects.create(partner=partner, action="thing.poke", object_type="thing", object_id="x")

    content = audit_page(acme_client)

    assert "lead <code>42</code>" in content
    assert "thing <code>x</code>" in content
