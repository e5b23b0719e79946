"""Every dashboard and admin page, rendered with secrets set, must not contain any of them."""

import uuid

import pytest
from django.urls import reverse

from core.models import AuditEntry
from grants.models import ApiKey, Site, SiteStatusChange
from grants.services import api_key_issue, site_grant

pytestmark = pytest.mark.django_db

SITE_UUID = uuid.UUID("5d9b2f5e-7c1a-4e63-9d0b-2a8c6f1e4b70")
SECRETS = ["rg-password-acme", "whsec-acme", "whsec-acme-next", "rg-password-acme-v2"]


@pytest.fixture
def busy_partner(root_client, partner):
    """A partner whose secrets were rotated through the dashboard, with a site and a key."""
    site_grant(partner=partner, site_uuid=SITE_UUID, name="Sunset Realty", source=Site.Source.MANUAL)
    api_key_issue(partner=partner, label="crm")
    root_client.post(
        reverse("portal:partner_edit", args=[partner.slug]),
        {
            "name": partner.name,
            "rg_username": partner.rg_username,
            "rg_password": "rg-password-acme-v2",
            "new_webhook_secret": "whsec-acme-next",
            "is_active": "on",
        },
    )
    partner.refresh_from_db()
    assert partner.rg_password == "rg-password-acme-v2"
    return partner


def dashboard_urls(partner):
    return [
        reverse("home"),
        reverse("portal:partner_list"),
        reverse("portal:partner_create"),
        reverse("portal:partner_detail", args=[partner.slug]),
        reverse("portal:partner_edit", args=[partner.slug]),
        reverse("portal:site_index"),
        reverse("portal:site_list", args=[partner.slug]),
        reverse("portal:site_detail", args=[partner.slug, SITE_UUID]),
        reverse("portal:audit_list"),
    ]


def admin_urls(partner):
    site = Site.objects.get(site_uuid=SITE_UUID)
    return [
        reverse("admin:grants_partner_changelist"),
        reverse("admin:grants_partner_change", args=[partner.pk]),
        reverse("admin:grants_partner_add"),
        reverse("admin:grants_apikey_changelist"),
        reverse("admin:grants_apikey_change", args=[ApiKey.objects.get().pk]),
        reverse("admin:grants_site_changelist"),
        reverse("admin:grants_site_change", args=[site.pk]),
        reverse("admin:grants_sitestatuschange_changelist"),
        reverse("admin:grants_sitestatuschange_change", args=[SiteStatusChange.objects.all()[0].pk]),
        reverse("admin:core_auditentry_changelist"),
        reverse("admin:core_auditentry_change", args=[AuditEntry.objects.all()[0].pk]),
        reverse("admin:core_workerheartbeat_changelist"),
    ]


def test_no_dashboard_or_admin_page_shows_a_secret(root_client, busy_partner):
    for url in dashboard_urls(busy_partner) + admin_urls(busy_partner):
        response = root_client.get(url)
        assert response.status_code == 200, url
        content = response.content.decode()
        for secret in SECRETS:
            assert secret not in content, f"{secret!r} shown on {url}"


def test_pages_with_form_errors_show_no_secret(root_client, busy_partner):
    responses = [
        root_client.post(
            reverse("portal:partner_edit", args=[busy_partner.slug]),
            {"name": "", "rg_password": "rg-password-acme", "new_webhook_secret": "whsec-acme"},
        ),
        root_client.post(reverse("portal:site_grant", args=[busy_partner.slug]), {"site_uuid": "nope"}),
        root_client.post(reverse("portal:api_key_issue", args=[busy_partner.slug]), {"label": "y" * 300}),
        root_client.post(reverse("admin:grants_partner_change", args=[busy_partner.pk]), {"name": ""}),
    ]
    for response in responses:
        assert response.status_code == 200
        content = response.content.decode()
        for secret in SECRETS:
            assert secret not in content


def test_every_dashboard_form_carries_a_csrf_token(root_client, busy_partner):
    for url in dashboard_urls(busy_partner):
        content = root_client.get(url).content.decode()
        post_forms = content.count('method="post"')
        assert content.count('name="csrfmiddlewaretoken"') >= post_forms, url


def test_posts_without_a_csrf_token_are_refused(busy_partner, superuser):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(superuser)
    response = client.post(reverse("portal:site_grant", args=[busy_partner.slug]), {"site_uuid": str(uuid.uuid4())})
    assert response.status_code == 403
    assert Site.objects.count() == 1
