"""grants.services.partner_edit, which the dashboard and the Django admin both save through: it
edits the row as stored, refuses what the forms refuse, and audits only what changed."""

import pytest
from django.core.exceptions import ValidationError

from core.models import AuditEntry
from grants import rg_url
from grants.audit import secret_fingerprint
from grants.models import Partner
from grants.services import partner_create, partner_edit

pytestmark = pytest.mark.django_db

RG_URL = "https://receivers.leadrouter.realgeeks.com/rest"


def test_an_edit_saves_and_audits_only_the_fields_that_changed(partner, admin_user):
    saved, changed = partner_edit(
        partner,
        {"name": "Acme Leads", "rg_company_id": "acme-2"},
        webhook_secrets=["whsec-2", "whsec-acme"],
        actor=admin_user,
    )

    assert changed
    assert (saved.rg_company_id, Partner.objects.get(pk=partner.pk).webhook_secrets) == (
        "acme-2",
        ["whsec-2", "whsec-acme"],
    )
    entry = AuditEntry.objects.get(action="partner.edit")
    assert (entry.actor, entry.before, entry.after) == (
        admin_user,
        {"rg_company_id": "acme-co", "webhook_secrets": {"count": 1}},
        {
            "rg_company_id": "acme-2",
            "webhook_secrets": {"count": 2, "added": [secret_fingerprint("whsec-2")], "removed": []},
        },
    )


def test_an_edit_that_changes_nothing_leaves_no_entry(partner, admin_user):
    _, changed = partner_edit(
        partner, {"name": partner.name}, webhook_secrets=partner.webhook_secrets, actor=admin_user
    )

    assert not changed
    assert not AuditEntry.objects.exists()


def test_an_edit_without_a_person_is_saved_but_not_audited(partner):
    saved, changed = partner_edit(partner, {"is_active": False})

    assert changed and not Partner.objects.get(pk=saved.pk).is_active
    assert not AuditEntry.objects.exists()


def test_the_row_as_stored_is_edited_not_the_callers_copy(partner, admin_user):
    # A form writes everything it was sent into the instance; only `changes` may reach the row.
    partner.name, partner.rg_username = "Written By A Form", "not-asked-for"

    saved, _ = partner_edit(partner, {"rg_partner_id": "p-2"}, actor=admin_user)

    stored = Partner.objects.get(pk=partner.pk)
    assert (stored.name, stored.rg_username, stored.rg_partner_id) == ("Acme Leads", "acme", "p-2")
    assert saved.name == "Acme Leads"


def test_a_new_rg_api_url_needs_the_rg_password_again(partner, admin_user):
    with pytest.raises(ValidationError) as refused:
        partner_edit(partner, {"rg_api_url": RG_URL}, actor=admin_user)

    assert refused.value.message_dict == {"rg_password": [rg_url.URL_CHANGE_REFUSED]}
    assert Partner.objects.get(pk=partner.pk).rg_api_url == ""

    partner_edit(partner, {"rg_api_url": RG_URL}, rg_password="rg-password-acme", actor=admin_user)
    assert Partner.objects.get(pk=partner.pk).rg_api_url == RG_URL


def test_an_rg_api_url_outside_the_allowed_hosts_is_refused_even_with_the_password(partner, admin_user):
    with pytest.raises(ValidationError) as refused:
        partner_edit(partner, {"rg_api_url": "https://collector.example.net/rest"}, rg_password="pw", actor=admin_user)

    assert list(refused.value.message_dict) == ["rg_api_url"]
    stored = Partner.objects.get(pk=partner.pk)
    assert (stored.rg_api_url, stored.rg_password) == ("", "rg-password-acme")
    assert not AuditEntry.objects.exists()


def test_the_last_webhook_secret_cannot_be_removed(partner, admin_user):
    with pytest.raises(ValidationError):
        partner_edit(partner, {}, webhook_secrets=[""], actor=admin_user)

    assert Partner.objects.get(pk=partner.pk).webhook_secrets == ["whsec-acme"]


@pytest.mark.parametrize("field", ["rg_password", "webhook_secrets_encrypted", "staff", "public_id"])
def test_changes_hold_plain_fields_only(partner, field):
    with pytest.raises(ValueError, match=field):
        partner_edit(partner, {field: "x"})


def test_a_new_partner_cannot_take_a_slug_another_has(partner):
    with pytest.raises(ValidationError) as refused:
        partner_create(name="Other Name", rg_username="o", rg_password="pw", webhook_secret="ws", slug=partner.slug)

    assert list(refused.value.message_dict) == ["slug"]
    assert Partner.objects.count() == 1
