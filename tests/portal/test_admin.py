import pytest
from django.urls import reverse

from core.audit import audit_record
from core.models import AuditEntry
from grants.audit import secret_fingerprint
from grants.models import ApiKey, Partner
from grants.services import api_key_issue

pytestmark = pytest.mark.django_db


def test_every_model_of_this_part_is_in_the_admin(root_client):
    for name in (
        "grants_partner",
        "grants_apikey",
        "grants_site",
        "grants_sitestatuschange",
        "core_auditentry",
        "core_workerheartbeat",
    ):
        assert root_client.get(reverse(f"admin:{name}_changelist")).status_code == 200, name


def test_audit_entries_cannot_be_edited_or_deleted_in_the_admin(root_client, partner, superuser):
    entry = audit_record(actor=superuser, action="site.grant", obj=partner, partner=partner, after={"status": "active"})

    root_client.post(reverse("admin:core_auditentry_change", args=[entry.pk]), {"action": "site.revoke"})
    root_client.post(reverse("admin:core_auditentry_delete", args=[entry.pk]), {"post": "yes"})

    entry.refresh_from_db()
    assert entry.action == "site.grant"
    assert root_client.get(reverse("admin:core_auditentry_add")).status_code == 403


def test_a_blank_password_in_the_admin_keeps_the_stored_one(root_client, superuser, partner):
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
    assert (entry.actor, entry.reason) == (superuser, "Django admin")
    # The form was posted without the two RG ids, so they were cleared.
    assert (entry.before, entry.after) == (
        {
            "name": "Acme Leads",
            "rg_partner_id": "acme-partner-id",
            "rg_company_id": "acme-co",
            "webhook_secrets": {"count": 1},
        },
        {
            "name": "Acme Renamed",
            "rg_partner_id": "",
            "rg_company_id": "",
            "webhook_secrets": {"count": 2, "added": [secret_fingerprint("whsec-from-admin")], "removed": []},
        },
    )


def test_a_partner_added_in_the_admin_is_made_and_audited_by_the_service(root_client, superuser, django_user_model):
    kim = django_user_model.objects.create_user("kim", password="kim-password-123", is_staff=True)
    form = {"name": "Harbor Co", "slug": "harbor", "rg_username": "harbor", "is_active": "on", "staff": [kim.pk]}

    refused = root_client.post(reverse("admin:grants_partner_add"), {**form, "new_rg_password": "rg-pw-harbor"})
    assert refused.status_code == 200
    assert "A new partner needs a webhook secret" in refused.content.decode()

    root_client.post(
        reverse("admin:grants_partner_add"),
        {**form, "new_rg_password": "rg-pw-harbor", "new_webhook_secret": "whsec-h"},
    )

    partner = Partner.objects.get(slug="harbor")
    assert (partner.rg_password, partner.webhook_secrets, list(partner.staff.all())) == (
        "rg-pw-harbor",
        ["whsec-h"],
        [kim],
    )
    entry = AuditEntry.objects.get(action="partner.create")
    assert (entry.actor, entry.reason, entry.object_id) == (superuser, "Django admin", str(partner.public_id))
    assert entry.after is not None
    assert (entry.after["slug"], entry.after["staff"], entry.after["rg_password"]) == ("harbor", ["kim"], "[set]")
    assert "rg-pw-harbor" not in str(entry.after) and "whsec-h" not in str(entry.after)


def test_staff_changed_in_the_admin_are_audited_by_username(root_client, partner, django_user_model):
    kim = django_user_model.objects.create_user("kim", password="kim-password-123", is_staff=True)
    form = {"name": partner.name, "slug": partner.slug, "rg_username": partner.rg_username, "is_active": "on"}
    form |= {"rg_partner_id": partner.rg_partner_id, "rg_company_id": partner.rg_company_id}

    root_client.post(reverse("admin:grants_partner_change", args=[partner.pk]), {**form, "staff": [kim.pk]})
    root_client.post(reverse("admin:grants_partner_change", args=[partner.pk]), form)

    entries = AuditEntry.objects.filter(action="partner.edit").order_by("id")
    assert [(e.before, e.after) for e in entries] == [
        ({"staff": []}, {"staff": ["kim"]}),
        ({"staff": ["kim"]}, {"staff": []}),
    ]
    assert list(partner.staff.all()) == []


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


def _staff_with(django_user_model, partner, *codenames):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("lee", password="lee-password-123", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    partner.staff.add(user)
    return user


def test_staff_with_admin_permissions_see_only_their_partners_audit_entries(
    client, django_user_model, partner, other_partner, superuser
):
    user = _staff_with(django_user_model, partner, "view_auditentry")
    mine = audit_record(actor=superuser, action="site.grant", obj=partner, partner=partner)
    theirs = audit_record(actor=superuser, action="site.revoke", obj=other_partner, partner=other_partner)
    client.force_login(user)

    page = client.get(reverse("admin:core_auditentry_changelist"))

    assert [entry.pk for entry in page.context["cl"].queryset] == [mine.pk]
    assert "Other Co" not in page.content.decode()
    assert client.get(reverse("admin:core_auditentry_change", args=[theirs.pk])).status_code == 404


def test_staff_editing_their_partner_in_the_admin_cannot_change_who_sees_it(
    client, django_user_model, partner, other_partner
):
    user = _staff_with(django_user_model, partner, "view_partner", "change_partner")
    outsider = django_user_model.objects.create_user("outsider", is_staff=True)
    other_partner.staff.add(outsider)
    client.force_login(user)
    url = reverse("admin:grants_partner_change", args=[partner.pk])

    assert "outsider" not in client.get(url).content.decode()
    response = client.post(
        url,
        {
            "name": "Acme Renamed",
            "slug": partner.slug,
            "rg_username": partner.rg_username,
            "is_active": "on",
            "staff": [outsider.pk],
        },
    )

    assert response.status_code == 302
    partner.refresh_from_db()
    assert partner.name == "Acme Renamed"
    assert list(partner.staff.all()) == [user]


def test_staff_cannot_move_a_row_to_another_partners_site_in_the_admin(
    client, django_user_model, partner, other_partner
):
    import uuid

    from grants.models import Site
    from sandbox.models import SandboxUser

    mine = Site.objects.create(partner=partner, site_uuid=uuid.uuid4(), source=Site.Source.MANUAL)
    theirs = Site.objects.create(partner=other_partner, site_uuid=uuid.uuid4(), source=Site.Source.MANUAL)
    agent = SandboxUser.objects.create(site_uuid=mine.site_uuid, user_id="7", data={"id": "7"})
    user = _staff_with(django_user_model, partner, "view_sandboxuser", "change_sandboxuser")
    client.force_login(user)

    response = client.post(
        reverse("admin:sandbox_sandboxuser_change", args=[agent.pk]),
        {"site_uuid": str(theirs.site_uuid), "user_id": "7", "data": '{"id": "7"}'},
    )

    assert response.status_code == 403
    agent.refresh_from_db()
    assert agent.site_uuid == mine.site_uuid


def test_the_admin_refuses_a_slug_the_dashboard_uses_for_a_page(root_client, partner):
    form = {"name": partner.name, "slug": "new", "rg_username": partner.rg_username, "is_active": "on"}

    response = root_client.post(reverse("admin:grants_partner_change", args=[partner.pk]), form)

    assert response.status_code == 200
    assert "is a dashboard page" in response.content.decode()
    assert Partner.objects.get(pk=partner.pk).slug == "acme-leads"
