"""Django admin for callbacks and grant emails: pages render, bodies show, the actions work."""

from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from core.models import AuditEntry
from grants.emails import grant_email_receive
from grants.models import GrantEmail, Partner, WebhookEvent
from tests.grants.conftest import SITE_UUID

EMAILS = Path(__file__).parent / "emails"


@pytest.fixture
def admin_client(client, db):
    client.force_login(User.objects.create_superuser("root", password="pw-root-123"))
    return client


def test_a_callback_page_shows_its_body_and_headers_but_no_credentials(admin_client, rg):
    body = f'{{"action": "integration_enabled", "site_uuid": "{SITE_UUID}"}}'.encode()
    rg.post(body, Authorization="Basic c2VjcmV0")
    event = WebhookEvent.objects.get()
    assert admin_client.get("/admin/grants/webhookevent/").status_code == 200
    page = admin_client.get(f"/admin/grants/webhookevent/{event.pk}/change/").content.decode()
    assert "integration_enabled" in page and str(SITE_UUID) in page
    assert "c2VjcmV0" not in page
    for path in ("webhookrejection", "inboundlead", "siteagent"):
        assert admin_client.get(f"/admin/grants/{path}/").status_code == 200


def test_the_reprocess_action_queues_failed_callbacks_again_and_audits_it(admin_client, rg, on_commit):
    rg.send("created", site_uuid=str(SITE_UUID))  # no lead id: fails
    event = WebhookEvent.objects.get()
    with on_commit(execute=True):
        response = admin_client.post(
            "/admin/grants/webhookevent/", {"action": "reprocess_webhook_events", "_selected_action": [event.pk]}
        )
    assert response.status_code == 302
    event.refresh_from_db()
    assert event.attempts == 2
    assert AuditEntry.objects.get().action == "webhook_event.reprocess"


def test_a_grant_email_page_shows_the_raw_message(admin_client, partner):
    grant_email = grant_email_receive((EMAILS / "01_plain.eml").read_bytes(), source=GrantEmail.Source.IMPORT)
    assert admin_client.get("/admin/grants/grantemail/").status_code == 200
    page = admin_client.get(f"/admin/grants/grantemail/{grant_email.pk}/change/").content.decode()
    assert "Site UUID: 8f14e45f-ceea-4e67-a2b1-0d5c3b9a7e21" in page


def test_the_reparse_action_grants_a_message_once_its_partner_is_known(admin_client, partner, other_partner):
    raw = (EMAILS / "05_forwarded_inline.eml").read_bytes()  # sent to grants@acme-leads.example
    grant_email = grant_email_receive(raw, source=GrantEmail.Source.IMPORT)
    assert grant_email.status == GrantEmail.Status.NEEDS_REVIEW
    Partner.objects.filter(pk=partner.pk).update(grant_email_address="grants@acme-leads.example")
    admin_client.post(
        "/admin/grants/grantemail/", {"action": "reparse_grant_emails", "_selected_action": [grant_email.pk]}
    )
    grant_email.refresh_from_db()
    assert (grant_email.status, grant_email.partner) == (GrantEmail.Status.GRANTED, partner)


RG_URL = "https://receivers.leadrouter.realgeeks.com/rest"


def partner_form(partner: Partner, **changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": partner.name,
        "slug": partner.slug,
        "rg_username": partner.rg_username,
        "rg_partner_id": partner.rg_partner_id,
        "rg_company_id": partner.rg_company_id,
        "rg_api_url": partner.rg_api_url,
        "grant_email_address": partner.grant_email_address,
        "is_active": "on",
        "staff": [user.pk for user in partner.staff.all()],
        "new_rg_password": "",
        "new_webhook_secret": "",
    }
    data.update(changes)
    return data


def test_a_partners_staff_cannot_change_its_rg_api_url_in_the_admin(client, django_user_model, partner):
    user = django_user_model.objects.create_user("kim", password="kim-password-123", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_partner", "change_partner"]))
    partner.staff.add(user)
    client.force_login(user)
    url = reverse("admin:grants_partner_change", args=[partner.pk])

    page = client.get(url).content.decode()
    response = client.post(url, partner_form(partner, rg_api_url="http://127.0.0.1:8025/collect"))

    assert 'name="rg_api_url"' not in page
    assert response.status_code == 302
    assert Partner.objects.get(pk=partner.pk).rg_api_url == ""


def test_the_admin_refuses_an_rg_api_url_outside_the_allowed_hosts(admin_client, partner):
    response = admin_client.post(
        reverse("admin:grants_partner_change", args=[partner.pk]),
        partner_form(partner, rg_api_url="https://169.254.169.254/latest/", new_rg_password="rg-password-acme"),
    )

    assert response.status_code == 200
    assert "REALGEEKS_ALLOWED_HOSTS" in response.content.decode()
    assert Partner.objects.get(pk=partner.pk).rg_api_url == ""


def test_changing_the_rg_api_url_in_the_admin_needs_the_rg_password_again(admin_client, partner):
    url = reverse("admin:grants_partner_change", args=[partner.pk])

    refused = admin_client.post(url, partner_form(partner, rg_api_url=RG_URL))
    assert refused.status_code == 200
    assert "Enter the RG password again to change the RG API URL" in refused.content.decode()
    assert Partner.objects.get(pk=partner.pk).rg_api_url == ""

    accepted = admin_client.post(url, partner_form(partner, rg_api_url=RG_URL, new_rg_password="rg-password-acme"))
    assert accepted.status_code == 302
    assert Partner.objects.get(pk=partner.pk).rg_api_url == RG_URL


def test_a_partners_staff_cannot_add_a_partner_outside_their_partners_in_the_admin(client, django_user_model):
    # A new partner has no staff, and staff cannot name any (the field is read-only for them):
    # the partner would be one they could never see, so the save is refused and rolled back.
    user = django_user_model.objects.create_user("kim", password="kim-password-123", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_partner", "add_partner"]))
    client.force_login(user)
    form = {"name": "Shadow Co", "slug": "shadow", "rg_username": "shadow", "is_active": "on"}

    response = client.post(
        reverse("admin:grants_partner_add"), {**form, "new_rg_password": "pw-shadow", "new_webhook_secret": "whsec-s"}
    )

    assert response.status_code == 403
    assert not Partner.objects.filter(slug="shadow").exists()
    assert not AuditEntry.objects.filter(action="partner.create").exists()
