"""Services record their own audit entries when a person acts, in the action's transaction, so
the dashboard, the read and act API and the Django admin cannot disagree or forget; a product
acting with its API key (no person) and the portal's own work leave none."""

import uuid

import pytest
from django.db import transaction

from core.models import AuditEntry
from grants import services as grant_services
from grants.models import Site
from leads import site_actions, staff_services
from leads.models import Lead
from leads.services import lead_submit

SITE = uuid.UUID("7d1f6a2e-3b4c-4d5e-8f90-123456789abc")


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("support", is_staff=True)


@pytest.fixture
def lead(partner):
    grant_services.site_grant(partner=partner, site_uuid=SITE, source=Site.Source.COMMAND)
    data = {"source": "Test", "email": "ana@example.com", "first_name": "Ana"}
    lead_submit(partner=partner, site_uuid=SITE, operation="create_lead", data=data)
    return Lead.objects.get()


@pytest.mark.django_db
def test_a_resend_by_a_person_is_audited_and_one_by_a_product_is_not(lead, staff):
    staff_services.lead_resend_checked(lead=lead, actor=None)
    assert not AuditEntry.objects.exists()

    delivery = staff_services.lead_resend_checked(lead=lead, actor=staff)

    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.action, entry.partner, entry.object_id) == (
        staff,
        "lead.resend",
        lead.partner,
        str(lead.lead_id),
    )
    assert (entry.after or {})["delivery"] == str(delivery.public_id)


@pytest.mark.django_db
def test_an_action_that_rolls_back_leaves_no_audit_entry(lead, staff):
    with pytest.raises(RuntimeError), transaction.atomic():
        staff_services.lead_activity_add(lead=lead, activity={"type": "note", "description": "x"}, actor=staff)
        assert AuditEntry.objects.filter(action="lead.activity_add").exists()
        raise RuntimeError("the caller's transaction fails after the action")
    assert not AuditEntry.objects.exists()


@pytest.mark.django_db
def test_an_assignment_is_one_entry_naming_the_agent(lead, staff):
    staff_services.lead_assign(lead=lead, user_id="42", agent_name="Kai", actor=staff)

    entry = AuditEntry.objects.get()
    assert entry.action == "lead.assign"
    assert (entry.after or {})["agent"] == {"id": "42", "name": "Kai"}


@pytest.mark.django_db
def test_api_keys_are_audited_only_when_a_person_acts(partner, staff):
    key, _ = grant_services.api_key_issue(partner=partner, label="by command")
    grant_services.api_key_revoke(key=key)
    assert not AuditEntry.objects.exists()

    key, _ = grant_services.api_key_issue(partner=partner, label="CRM", actor=staff)
    grant_services.api_key_revoke(key=key, actor=staff, reason="leaked")
    grant_services.api_key_revoke(key=key, actor=staff)  # already revoked: nothing happens

    issued, revoked = AuditEntry.objects.order_by("id")
    assert (issued.action, issued.after) == ("api_key.issue", {"key_id": key.key_id, "label": "CRM"})
    assert (revoked.action, revoked.reason, revoked.before) == ("api_key.revoke", "leaked", {"revoked_at": None})


@pytest.mark.django_db
def test_a_revocation_by_callback_is_not_audited_but_one_by_staff_is(partner, staff):
    site = grant_services.site_grant(partner=partner, site_uuid=SITE, source=Site.Source.COMMAND)
    grant_services.site_revoke(site=site, source=Site.Source.CALLBACK, note="integration_disabled")
    assert not AuditEntry.objects.exists()

    grant_services.site_grant(partner=partner, site_uuid=SITE, source=Site.Source.COMMAND)
    grant_services.site_revoke(site=site, source=Site.Source.MANUAL, note="client asked", actor=staff)

    entry = AuditEntry.objects.get()
    assert (entry.action, entry.before, entry.after, entry.reason) == (
        "site.revoke",
        {"status": "active"},
        {"status": "revoked"},
        "client asked",
    )


@pytest.mark.django_db
def test_granting_by_hand_audits_the_change_once(partner, staff):
    granted = site_actions.site_grant(partner=partner, site_uuid=SITE, name="Sunset", note="by phone", actor=staff)
    again = site_actions.site_grant(partner=partner, site_uuid=SITE, name="", note="", actor=staff)

    assert (granted.previous, again.previous) == (None, "active")
    entry = AuditEntry.objects.get()
    after = entry.after or {}
    assert (entry.action, after["status"], after["held_released"]) == ("site.grant", "active", 0)
