import pytest
from django.urls import reverse

from grants.models import ApiKey, Partner
from grants.services import api_key_issue
from portal.audit import audit_record
from portal.models import AuditEntry

pytestmark = pytest.mark.django_db


def test_every_model_of_this_part_is_in_the_admin(root_client):
    for name in (
        "grants_partner",
        "grants_apikey",
        "grants_site",
        "grants_sitestatuschange",
        "portal_auditentry",
        "portal_workerheartbeat",
    ):
        assert root_client.get(reverse(f"admin:{name}_changelist")).status_code == 200, name


def test_audit_entries_cannot_be_edited_or_deleted_in_the_admin(root_client, partner, superuser):
    entry = audit_record(actor=superuser, action="site.grant", obj=partner, partner=partner, after={"status": "active"})

    root_client.post(reverse("admin:portal_auditentry_change", args=[entry.pk]), {"action": "site.revoke"})
    root_client.post(reverse("admin:portal_auditentry_delete", args=[entry.pk]), {"post": "yes"})

    entry.refresh_from_db()
    assert entry.action == "site.grant"
    assert root_client.get(reverse("admin:portal_auditentry_add")).status_code == 403


def test_a_blank_password_in_the_admin_keeps_the_stored_one(root_client, partner):
    response = root_client.post(
        reverse("admin:grants_partner_change", args=[partner.pk]),
        {
            "name": "Acme Renamed",
            "slug": partner.slug,
            "rg_username": partner.rg_username,
            "is_active": "on",
            "new_rg_password": "",
            "new_webhook_secret": "whsec-from-admin",
        },
    )

    assert response.status_code == 302
    partner = Partner.objects.get(pk=partner.pk)
    assert partner.name == "Acme Renamed"
    assert partner.rg_password == "rg-password-acme"
    assert partner.webhook_secrets == ["whsec-from-admin", "whsec-acme"]
    entry = AuditEntry.objects.get(action="partner.edit")
    assert (entry.after or {})["webhook_secrets"] == "[changed]"
    assert "whsec-from-admin" not in str(entry.after)


def test_keys_are_revoked_from_the_admin_with_an_audit_entry(root_client, partner):
    key, secret = api_key_issue(partner=partner)

    root_client.post(
        reverse("admin:grants_apikey_changelist"), {"action": "revoke_api_keys", "_selected_action": [key.pk]}
    )

    assert ApiKey.objects.authenticate(key.key_id, secret) is None
    assert AuditEntry.objects.get(action="api_key.revoke").object_id == key.key_id


def test_staff_with_admin_permissions_see_only_their_partners_keys(client, django_user_model, partner, other_partner):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("kim", password="kim-password-123", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_apikey"))
    partner.staff.add(user)
    mine, _ = api_key_issue(partner=partner)
    theirs, _ = api_key_issue(partner=other_partner)
    client.force_login(user)

    content = client.get(reverse("admin:grants_apikey_changelist")).content.decode()

    assert mine.key_id in content
    assert theirs.key_id not in content
