"""Staff actions on a lead, through Django's test client: each one's effect on the outbox and at
Real Geeks (mocked at the HTTP edge), its audit entry, form errors that keep what was typed,
CSRF, and partner scoping."""

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from core.models import AuditEntry
from grants.models import Site, SiteAgent
from grants.services import site_grant
from leads.models import Delivery, Lead
from leads.services import lead_submit
from leads.staff_services import lead_version
from tests.portal import test_lead_pages as pages

pytestmark = pytest.mark.django_db

# The same fixtures as the leads pages' tests (pytest finds them as attributes of this module).
inline_tasks = pages.inline_tasks
rg = pages.rg
site = pages.site
send = pages.send

SITE_UUID = pages.SITE_UUID
OTHER_SITE_UUID = pages.OTHER_SITE_UUID


@pytest.fixture(autouse=True)
def no_cached_agents() -> None:
    # users_for caches RG's users list in Django's cache, which outlives a test.
    cache.clear()


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks: Any) -> Any:
    """`with on_commit(execute=True):` runs the deliveries a request published, as a worker would."""
    return django_capture_on_commit_callbacks


def url(name: str, lead: Lead, *extra: Any) -> str:
    return reverse(f"portal:{name}", args=[lead.partner.slug, lead.lead_id, *extra])


def form_data(lead: Lead, **changes: str) -> dict[str, str]:
    """What the edit and patch forms post when loaded for `lead` and then changed."""
    fields = ["source", "email", "first_name", "last_name", "phone", "city", "notes", "role", "tags"]
    data = {name: str(lead.data.get(name) or "") for name in fields}
    return {**data, "version": lead_version(lead), **changes}


def entry(action: str) -> AuditEntry:
    return AuditEntry.objects.get(action=action)


def after(action: str) -> dict[str, Any]:
    return entry(action).after or {}


# Resend


def test_resend_sends_the_lead_again_under_the_same_id_and_is_audited(
    acme_client, acme_staff, partner, site, send, rg, on_commit
):
    lead = send(partner, "kai@example.com", first_name="Kai")
    with on_commit(execute=True):
        response = acme_client.post(url("lead_resend", lead))

    assert response.status_code == 302 and response["Location"] == url("lead_detail", lead)
    resent = lead.deliveries.order_by("sequence").last()
    assert (resent.operation, resent.origin, resent.actor, resent.status) == (
        "create_lead",
        "resend",
        acme_staff,
        "delivered",
    )
    assert [body["id"] for _, _, body in rg.calls] == [str(lead.lead_id)] * 2
    audit = entry("lead.resend")
    assert (audit.actor, audit.object_id, after("lead.resend")["delivery"]) == (
        acme_staff,
        str(lead.lead_id),
        str(resent.public_id),
    )
    assert "Resent under the same lead id" in acme_client.get(response["Location"]).content.decode()


def test_actions_refuse_get(acme_client, partner, site, send, rg):
    lead = send(partner, "kai@example.com")
    assert acme_client.get(url("lead_resend", lead)).status_code == 405
    assert lead.deliveries.count() == 1


# Edit and resend


def test_edit_and_resend_shows_the_diff_first_and_sends_only_when_confirmed(
    acme_client, acme_staff, partner, site, send, rg, on_commit
):
    rg.answer((422, '{"error": "Field \'phone\' is not valid."}'))
    lead = send(partner, "kai@example.com", first_name="Kai", phone="808-123")
    assert Lead.objects.get(pk=lead.pk).status == "failed"
    data = form_data(lead, phone="808-123-1234", city="Kailua", reason="Customer gave the full number by phone")

    preview = acme_client.post(url("lead_edit", lead), data)

    page = preview.content.decode()
    assert preview.status_code == 200 and "Check the changes" in page
    assert "<del>808-123</del>" in page and "<ins>808-123-1234</ins>" in page and "<ins>Kailua</ins>" in page
    assert lead.deliveries.count() == 1 and Lead.objects.get(pk=lead.pk).phone == "808-123"
    assert not AuditEntry.objects.exists()

    with on_commit(execute=True):
        sent = acme_client.post(url("lead_edit", lead), {**data, "confirm": "1"})

    assert sent.status_code == 302
    lead.refresh_from_db()
    assert (lead.phone, lead.data["city"], lead.status, lead.last_status_code) == (
        "808-123-1234",
        "Kailua",
        "delivered",
        201,
    )
    resent = lead.deliveries.order_by("sequence").last()
    assert (resent.operation, resent.actor, resent.payload["id"]) == ("create_lead", acme_staff, str(lead.lead_id))
    method, _, body = rg.calls[-1]
    assert method == "POST" and (body["phone"], body["city"], body["first_name"]) == ("808-123-1234", "Kailua", "Kai")
    audit = entry("lead.edit_resend")
    assert audit.actor == acme_staff and audit.reason == "Customer gave the full number by phone"
    assert audit.before == {"phone": "808-123", "city": None}
    assert {k: after("lead.edit_resend")[k] for k in ("phone", "city")} == {"phone": "808-123-1234", "city": "Kailua"}


def test_back_from_the_preview_returns_to_the_form_with_the_typed_values(acme_client, partner, site, send, rg):
    lead = send(partner, "kai@example.com")
    data = form_data(lead, city="Hilo", reason="typo")
    response = acme_client.post(url("lead_edit", lead), {**data, "confirm": "1", "back": "1"})
    page = response.content.decode()
    assert "Preview changes" in page and 'value="Hilo"' in page
    assert lead.deliveries.count() == 1


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"email": "kai@@example"}, "email", "This is not a valid email address."),
        ({"role": "Landlord"}, "role", "Select a valid choice."),
        ({"source": ""}, "source", "This is required."),
        ({"email": "", "first_name": "", "phone": ""}, None, "Lead must have at least one of"),
        ({"reason": ""}, "reason", "Say why you are changing this lead"),
        ({"city": ""}, None, "Nothing changed"),
    ],
)
def test_edit_refuses_what_rg_would_refuse_and_keeps_what_was_typed(
    acme_client, partner, site, send, rg, changes, field, message
):
    lead = send(partner, "kai@example.com", first_name="Kai")
    data = {**form_data(lead, reason="fixing it"), **changes}
    response = acme_client.post(url("lead_edit", lead), {**data, "confirm": "1"})

    errors = response.context["form"].errors
    assert response.status_code == 200
    assert any(message in error for error in errors[field or "__all__"]), errors
    for name, value in changes.items():
        if value and name != "role":  # a select cannot hold what is not one of its options
            assert f'value="{value}"' in response.content.decode()
    assert lead.deliveries.count() == 1 and not AuditEntry.objects.exists()


def test_an_edit_of_a_lead_that_changed_meanwhile_is_shown_again_not_sent(acme_client, partner, site, send, rg):
    lead = send(partner, "kai@example.com", first_name="Kai")
    data = form_data(lead, city="Hilo", reason="move")
    lead_submit(
        partner=partner, site_uuid=SITE_UUID, operation="update_lead", data={"phone": "1"}, lead_id=lead.lead_id
    )

    response = acme_client.post(url("lead_edit", lead), {**data, "confirm": "1"})

    assert response.status_code == 200
    assert "Someone changed this lead while you were editing it" in response.content.decode()
    assert 'value="Hilo"' in response.content.decode()
    assert not lead.deliveries.filter(origin="resend").exists()
    assert response.context["form"]["version"].value() == lead_version(Lead.objects.get(pk=lead.pk))


# Patch


def test_patch_sends_only_the_changed_fields_as_an_update(acme_client, acme_staff, partner, site, send, rg, on_commit):
    lead = send(partner, "kai@example.com", first_name="Kai", city="Kailua", notes="old note")
    with on_commit(execute=True):
        response = acme_client.post(
            url("lead_patch", lead), form_data(lead, notes="Wants a 3 bedroom", city="", reason="call notes")
        )

    assert response.status_code == 302
    method, path = rg.operations()[-1]
    assert (method, path) == ("PATCH", f"/rest/sites/{SITE_UUID}/leads/{lead.lead_id}")
    assert rg.calls[-1][2] == {"notes": "Wants a 3 bedroom", "city": ""}  # a cleared field is sent empty
    update = lead.deliveries.get(operation="update_lead")
    assert (update.origin, update.actor, update.status) == ("dashboard", acme_staff, "delivered")
    audit = entry("lead.patch")
    assert audit.before == {"city": "Kailua", "notes": "old note"} and audit.reason == "call notes"
    assert after("lead.patch")["notes"] == "Wants a 3 bedroom" and after("lead.patch")["city"] is None


def test_patch_with_nothing_changed_sends_nothing(acme_client, partner, site, send, rg):
    lead = send(partner, "kai@example.com", first_name="Kai")
    response = acme_client.post(url("lead_patch", lead), form_data(lead))
    assert "Nothing changed" in response.content.decode()
    assert lead.deliveries.count() == 1


def test_patch_refuses_an_invalid_email_and_keeps_it(acme_client, partner, site, send, rg):
    lead = send(partner, "kai@example.com")
    response = acme_client.post(url("lead_patch", lead), form_data(lead, email="kai at example"))
    assert response.context["form"].errors["email"] == ["This is not a valid email address."]
    assert 'value="kai at example"' in response.content.decode()
    assert lead.deliveries.count() == 1


# Activities and assignment


def test_an_activity_with_a_property_goes_out_with_whole_number_counts(
    acme_client, acme_staff, partner, site, send, rg, on_commit
):
    lead = send(partner, "kai@example.com")
    with on_commit(execute=True):
        response = acme_client.post(
            url("lead_activity", lead),
            {
                "type": "property_viewed",
                "description": "Asked about the lanai",
                "property_street_address": "123 Keolu Dr",
                "property_full_baths": "2",
                "property_beds": "3",
                "property_listing_price": "100500",
            },
        )

    assert response.status_code == 302
    assert rg.operations()[-1] == ("POST", f"/rest/sites/{SITE_UUID}/leads/{lead.lead_id}/activities")
    [activity] = rg.calls[-1][2]
    assert activity["type"] == "property_viewed" and activity["description"] == "Asked about the lanai"
    assert activity["property"] == {
        "street_address": "123 Keolu Dr",
        "full_baths": 2,
        "beds": 3,
        "listing_price": "100500",
    }
    assert after("lead.activity_add")["activity"]["property"]["beds"] == 3


@pytest.mark.parametrize("baths", ["2.5", "two", "1e3"])
def test_an_activity_with_non_integer_baths_is_refused_and_kept(acme_client, partner, site, send, rg, baths):
    lead = send(partner, "kai@example.com")
    response = acme_client.post(
        url("lead_activity", lead), {"type": "property_viewed", "property_full_baths": baths, "property_city": "Hilo"}
    )
    assert response.status_code == 200
    assert response.context["form"].errors["property_full_baths"] == ["This is not a valid integer."]
    page = response.content.decode()
    assert f'value="{baths}"' in page and 'value="Hilo"' in page
    assert lead.deliveries.count() == 1


def test_assigning_sends_was_assigned_with_the_rg_users_id(acme_client, acme_staff, partner, site, send, rg, on_commit):
    lead = send(partner, "kai@example.com")
    page = acme_client.get(url("lead_assign", lead)).content.decode()
    assert "Kai (Agent)" in page and "from Real Geeks" in page

    with on_commit(execute=True):
        response = acme_client.post(url("lead_assign", lead), {"agent": "14187"})

    assert response.status_code == 302
    [activity] = rg.calls[-1][2]
    assert (activity["type"], activity["user"]) == ("was_assigned", {"id": "14187"})
    assert after("lead.assign")["agent"] == {"id": "14187", "name": "Kai"}
    assert [method for method, _ in rg.operations()].count("GET") == 1  # the users list was cached


def test_when_rg_cannot_list_users_the_agents_known_from_callbacks_are_offered(
    acme_client, partner, site, send, rg, on_commit
):
    lead = send(partner, "kai@example.com")
    SiteAgent.objects.create(partner=partner, site_uuid=SITE_UUID, user_id="555", name="Mele Kahale", role="Agent")
    SiteAgent.objects.create(partner=partner, site_uuid=SITE_UUID, user_id="556", name="Gone", is_deleted=True)
    rg.answer((503, "<html><title>503 Service Unavailable</title></html>"))

    page = acme_client.get(url("lead_assign", lead)).content.decode()

    assert "Real Geeks could not be asked for the site's agents" in page
    assert "503 Service Unavailable" in page
    assert "Mele Kahale" in page and "Gone" not in page
    rg.answer((503, "down"))
    with on_commit(execute=True):
        acme_client.post(url("lead_assign", lead), {"agent": "555"})
    assert rg.calls[-1][2][0]["user"] == {"id": "555"}


def test_an_agent_not_offered_cannot_be_assigned(acme_client, partner, site, send, rg):
    lead = send(partner, "kai@example.com")
    response = acme_client.post(url("lead_assign", lead), {"agent": "99999"})
    assert response.context["form"].errors["agent"] == ["Choose one of the site's agents."]
    assert lead.deliveries.count() == 1


# Cancel and retry


@pytest.fixture
def held(partner, send) -> Lead:
    """A lead for a site that has not granted access: its create is held."""
    return send(partner, "held@example.com", site_uuid=uuid.UUID("3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"))


def test_cancelling_a_held_delivery_stops_it_and_is_audited(acme_client, acme_staff, partner, held, rg):
    delivery = held.deliveries.get()
    assert delivery.status == "held"

    response = acme_client.post(url("delivery_cancel", held, delivery.public_id))

    assert response.status_code == 302
    delivery.refresh_from_db()
    held.refresh_from_db()
    assert (delivery.status, delivery.next_attempt_at, held.status) == ("cancelled", None, "cancelled")
    audit = entry("delivery.cancel")
    assert (audit.object_id, audit.before, audit.after) == (
        str(delivery.public_id),
        {"status": "held"},
        {"status": "cancelled"},
    )
    site_grant(partner=partner, site_uuid=held.site.site_uuid, source=Site.Source.MANUAL)
    assert Delivery.objects.get(pk=delivery.pk).status == "cancelled"  # a later grant does not revive it
    assert rg.calls == []


def test_a_delivery_in_flight_is_not_cancelled_under_its_worker(acme_client, partner, held, rg):
    delivery = held.deliveries.get()
    # A worker has it now (the site was granted meanwhile and a pump claimed it).
    claimed = Delivery.objects.filter(pk=delivery.pk).update(
        status="claimed", claim_token=uuid.uuid4(), claimed_until=timezone.now() + timedelta(minutes=1)
    )
    assert claimed == 1

    response = acme_client.post(url("delivery_cancel", held, delivery.public_id), follow=True)

    assert Delivery.objects.get(pk=delivery.pk).status == "claimed"
    assert "This delivery is in flight now, so it was not cancelled" in response.content.decode()
    assert not AuditEntry.objects.exists()


def test_cancelling_an_update_leaves_the_failed_create_in_view(acme_client, partner, site, send, rg):
    rg.answer((422, '{"error": "bad"}'))
    lead = send(partner, "kai@example.com")
    lead_submit(
        partner=partner, site_uuid=SITE_UUID, operation="update_lead", data={"notes": "n"}, lead_id=lead.lead_id
    )
    update = lead.deliveries.get(operation="update_lead")

    acme_client.post(url("delivery_cancel", lead, update.public_id))

    lead.refresh_from_db()
    assert Delivery.objects.get(pk=update.pk).status == "cancelled"
    assert (lead.status, lead.last_status_code) == ("failed", 422)  # the failed create still needs a human


def test_retry_now_attempts_a_failed_delivery_again(acme_client, acme_staff, partner, site, send, rg, on_commit):
    rg.answer((401, '{"error": "Invalid credentials."}'))
    lead = send(partner, "kai@example.com")
    delivery = lead.deliveries.get()
    with on_commit(execute=True):
        acme_client.post(url("delivery_retry", lead, delivery.public_id))

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_count) == ("delivered", 2)
    assert delivery.attempts.get(number=2).actor == acme_staff
    assert entry("delivery.retry").before == {"status": "failed", "attempt_count": 1}


def test_retrying_a_delivered_delivery_is_refused_with_a_message(acme_client, partner, site, send, rg):
    lead = send(partner, "kai@example.com")
    delivery = lead.deliveries.get()
    response = acme_client.post(url("delivery_retry", lead, delivery.public_id), follow=True)
    assert "cannot be retried" in response.content.decode()
    assert Delivery.objects.get(pk=delivery.pk).attempt_count == 1


# CSRF and scoping


def test_every_action_needs_the_csrf_token(acme_staff, partner, site, send, rg):
    lead = send(partner, "kai@example.com")
    client = Client(enforce_csrf_checks=True)
    client.force_login(acme_staff)
    delivery = lead.deliveries.get()
    posts = {
        url("lead_resend", lead): {},
        url("lead_edit", lead): {**form_data(lead, city="Hilo", reason="x"), "confirm": "1"},
        url("lead_patch", lead): form_data(lead, city="Hilo"),
        url("lead_activity", lead): {"type": "note", "description": "hi"},
        url("lead_assign", lead): {"agent": "14187"},
        url("delivery_cancel", lead, delivery.public_id): {},
        url("delivery_retry", lead, delivery.public_id): {},
    }
    for target, data in posts.items():
        assert client.post(target, data).status_code == 403, target
    assert lead.deliveries.count() == 1 and not AuditEntry.objects.exists()

    page = client.get(url("lead_detail", lead)).content.decode()
    assert page.count('name="csrfmiddlewaretoken"') >= 2  # resend, and the logout form


def test_actions_on_another_partners_lead_are_404_and_change_nothing(acme_client, partner, other_partner, send, rg):
    site_grant(partner=other_partner, site_uuid=OTHER_SITE_UUID, source=Site.Source.MANUAL)
    theirs = send(other_partner, "theirs@example.com", site_uuid=OTHER_SITE_UUID)
    delivery = theirs.deliveries.get()
    for slug in (other_partner.slug, partner.slug):
        args = [slug, theirs.lead_id]
        for name, data in [
            ("lead_resend", {}),
            ("lead_edit", {**form_data(theirs, city="Hilo", reason="x"), "confirm": "1"}),
            ("lead_patch", form_data(theirs, city="Hilo")),
            ("lead_activity", {"type": "note"}),
            ("lead_assign", {"agent": "14187"}),
        ]:
            assert acme_client.post(reverse(f"portal:{name}", args=args), data).status_code == 404, (slug, name)
        for name in ("delivery_cancel", "delivery_retry"):
            target = reverse(f"portal:{name}", args=[*args, delivery.public_id])
            assert acme_client.post(target).status_code == 404, (slug, name)
    assert theirs.deliveries.count() == 1 and not AuditEntry.objects.exists()
    assert json.dumps(Lead.objects.get(pk=theirs.pk).data).count("Hilo") == 0


def test_a_delivery_of_another_lead_cannot_be_cancelled_through_this_one(acme_client, partner, site, send, rg):
    mine = send(partner, "mine@example.com")
    other = send(partner, "other@example.com")
    response = acme_client.post(url("delivery_cancel", mine, other.deliveries.get().public_id))
    assert response.status_code == 404


# Unguarded actions (issue 12)


@pytest.mark.parametrize("description", ["", "   \n "])
def test_an_empty_activity_is_refused_with_a_form_error_and_nothing_is_sent(
    acme_client, partner, site, send, rg, description
):
    lead = send(partner, "kai@example.com")
    response = acme_client.post(url("lead_activity", lead), {"type": "note", "description": description})

    assert response.status_code == 200
    assert response.context["form"].errors["description"] == [
        "Write a description or fill in the property: an empty activity is not sent."
    ]
    assert lead.deliveries.count() == 1
    assert not AuditEntry.objects.exists()


def test_resending_a_lead_known_only_from_updates_is_refused_and_offers_edit_and_resend(
    acme_client, partner, site, rg, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        delivery = lead_submit(
            partner=partner,
            site_uuid=SITE_UUID,
            operation="update_lead",
            data={"first_name": "Kai"},
            lead_id=uuid.uuid4(),
        )
    lead = Lead.objects.get(pk=delivery.lead_id)
    calls = len(rg.calls)

    response = acme_client.post(url("lead_resend", lead), follow=True)

    assert response.redirect_chain == [(url("lead_edit", lead), 302)]
    assert "Not resent: Real Geeks would refuse this lead as a new one" in response.content.decode()
    assert lead.deliveries.count() == 1
    assert len(rg.calls) == calls
    assert not AuditEntry.objects.filter(action="lead.resend").exists()


def test_edit_shows_every_error_at_once(acme_client, partner, site, send, rg):
    lead = send(partner, "kai@example.com", first_name="Kai")
    data = {**form_data(lead, reason=""), "email": "kai@@example", "phone": "call me", "role": "Landlord"}

    response = acme_client.post(url("lead_edit", lead), {**data, "confirm": "1"})

    errors = response.context["form"].errors
    assert set(errors) == {"email", "phone", "role", "reason"}, errors
    assert errors["phone"][0].startswith("Enter a phone number of 7 to 15 digits")
    assert 'value="call me"' in response.content.decode()
    assert lead.deliveries.count() == 1


def test_patch_refuses_a_phone_that_is_not_one_and_accepts_one_as_typed(acme_client, partner, site, send, rg):
    lead = send(partner, "kai@example.com")

    refused = acme_client.post(url("lead_patch", lead), form_data(lead, phone="808-555", email="kai@@example"))
    assert set(refused.context["form"].errors) == {"phone", "email"}
    assert lead.deliveries.count() == 1

    accepted = acme_client.post(url("lead_patch", lead), form_data(lead, phone="+1 (808) 555-0199"))
    assert accepted.status_code == 302
    assert lead.deliveries.order_by("sequence").last().payload == {"phone": "+1 (808) 555-0199"}


def test_an_edit_keeps_an_unchanged_phone_even_if_it_would_not_pass_the_phone_rule(
    acme_client, partner, site, send, rg
):
    lead = send(partner, "kai@example.com", phone="808 555 0199 ext 2")
    response = acme_client.post(url("lead_patch", lead), form_data(lead, first_name="Kai"))
    assert response.status_code == 302


def test_an_activity_shows_every_property_error_at_once(acme_client, partner, site, send, rg):
    lead = send(partner, "kai@example.com")
    response = acme_client.post(
        url("lead_activity", lead),
        {"type": "property_viewed", "property_full_baths": "two", "property_half_baths": "1.5"},
    )
    assert set(response.context["form"].errors) == {"property_full_baths", "property_half_baths"}
    assert lead.deliveries.count() == 1
