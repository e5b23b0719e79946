"""The read and act API: partner-scoped lists and details, retry and resend, sites and their
delivery circuits, the schema."""

import uuid
from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from grants.models import Site
from grants.services import api_key_issue, site_grant
from leads.circuit import circuit_resume
from leads.models import Delivery, Lead
from leads.services import lead_submit
from portal.models import AuditEntry
from tests.leads.conftest import SITE_UUID, basic

pytestmark = pytest.mark.django_db


def lead(partner, email: str, site_uuid=SITE_UUID, **extra) -> Lead:
    delivery = lead_submit(
        partner=partner,
        site_uuid=site_uuid,
        operation="create_lead",
        data={"source": "Zillow", "email": email, **extra},
    )
    return delivery.lead


@pytest.fixture
def other_client(other_partner) -> Client:
    key, secret = api_key_issue(partner=other_partner)
    return Client(HTTP_AUTHORIZATION=basic(key.key_id, secret))


def test_a_key_lists_only_its_partners_leads_newest_first(push, other_client, partner, other_partner, site):
    first = lead(partner, "first@example.com")
    second = lead(partner, "second@example.com")
    lead(other_partner, "theirs@example.com")

    mine = push.get("/api/leads/").json()
    theirs = other_client.get("/api/leads/").json()

    assert [row["lead_id"] for row in mine["results"]] == [str(second.lead_id), str(first.lead_id)]
    assert [row["email"] for row in theirs["results"]] == ["theirs@example.com"]
    assert mine["results"][0]["site"] == str(SITE_UUID) and mine["results"][0]["status"] == "pending"


def test_pages_are_keyset_cursors_that_walk_every_lead_once(push, partner, site):
    made = [lead(partner, f"p{n}@example.com") for n in range(5)]

    seen, url = [], "/api/leads/?page_size=2"
    for _ in range(5):
        page = push.get(url).json()
        seen += [row["lead_id"] for row in page["results"]]
        if not page["next"]:
            break
        url = page["next"]

    assert seen == [str(x.lead_id) for x in reversed(made)]
    assert "cursor=" in push.get("/api/leads/?page_size=2").json()["next"]


def test_filters_narrow_the_list(push, partner, site, rg):
    old = lead(partner, "old@example.com", first_name="Keoni")
    Lead.objects.filter(pk=old.pk).update(created=timezone.now() - timedelta(days=10))
    kai = lead(partner, "kai@example.com", first_name="Kai")
    lead_submit(partner=partner, site_uuid=SITE_UUID, operation="update_lead", data={"notes": "x"}, lead_id=kai.lead_id)
    Lead.objects.filter(pk=kai.pk).update(status="failed")

    def emails(query: str) -> list[str]:
        response = push.get(f"/api/leads/?{query}")
        assert response.status_code == 200, response.json()
        return [row["email"] for row in response.json()["results"]]

    assert emails("status=failed") == ["kai@example.com"]
    assert emails("q=KEONI") == ["old@example.com"]
    assert emails(f"q={kai.lead_id}") == ["kai@example.com"]
    assert emails("operation=update_lead") == ["kai@example.com"]
    since = (timezone.now() - timedelta(days=1)).date().isoformat()
    assert emails(f"created_after={since}") == ["kai@example.com"]
    assert emails(f"created_before={since}") == ["old@example.com"]
    assert emails(f"site={uuid.uuid4()}") == []


def test_a_bad_filter_is_a_400_in_rgs_shape(push, site):
    response = push.get("/api/leads/?status=lost&created_after=yesterday")
    assert response.status_code == 400
    assert set(response.json()) == {"error"} and "status" in response.json()["error"]


def test_a_lead_shows_its_deliveries_and_their_attempts(push, partner, site, rg, django_capture_on_commit_callbacks):
    rg.answer((503, "down"))
    with django_capture_on_commit_callbacks(execute=True):
        made = lead(partner, "kai@example.com")

    body = push.get(f"/api/leads/{made.lead_id}/").json()

    assert body["status"] == "retrying" and body["data"]["email"] == "kai@example.com"
    (delivery,) = body["deliveries"]
    assert (delivery["operation"], delivery["status"], delivery["attempt_count"]) == ("create_lead", "retrying", 1)
    (attempt,) = delivery["attempts"]
    assert (attempt["response_status"], attempt["response_body"], attempt["outcome"]) == (503, "down", "retry")
    assert attempt["trigger"] == "automatic" and attempt["next_attempt_at"]


def test_another_partners_lead_is_a_404(other_client, partner, site):
    made = lead(partner, "kai@example.com")
    assert other_client.get(f"/api/leads/{made.lead_id}/").status_code == 404
    assert other_client.post(f"/api/leads/{made.lead_id}/resend").status_code == 404
    delivery = made.deliveries.get()
    assert other_client.post(f"/api/deliveries/{delivery.public_id}/retry").status_code == 404


def test_retry_sends_a_failed_delivery_again_and_refuses_a_delivered_one(
    push, partner, site, rg, django_capture_on_commit_callbacks
):
    rg.answer((422, '{"error": "no"}'))
    with django_capture_on_commit_callbacks(execute=True):
        made = lead(partner, "kai@example.com")
    delivery = made.deliveries.get()

    with django_capture_on_commit_callbacks(execute=True):
        retried = push.post(f"/api/deliveries/{delivery.public_id}/retry")
    again = push.post(f"/api/deliveries/{delivery.public_id}/retry")

    assert retried.status_code == 202 and retried.json()["id"] == str(delivery.public_id)
    assert Delivery.objects.get(pk=delivery.pk).status == "delivered"
    assert again.status_code == 409
    assert again.json() == {"error": "A delivered delivery cannot be retried."}


def test_resend_makes_a_new_create_with_the_same_lead_id(push, partner, site, rg, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        made = lead(partner, "kai@example.com")
        response = push.post(f"/api/leads/{made.lead_id}/resend")

    assert response.status_code == 202 and response.json()["origin"] == "resend"
    assert [body["id"] for _, _, body in rg.calls] == [str(made.lead_id)] * 2


def test_staff_see_their_partners_through_a_session_and_others_get_nothing(partner, other_partner, site):
    lead(partner, "kai@example.com")
    staff = User.objects.create_user("lani", password="pw-lani-123", is_staff=True)
    partner.staff.add(staff)
    outsider = User.objects.create_user("moana", password="pw-moana-123", is_staff=False)
    staff_client, outsider_client = Client(), Client()
    staff_client.force_login(staff)
    outsider_client.force_login(outsider)

    assert [r["email"] for r in staff_client.get("/api/leads/").json()["results"]] == ["kai@example.com"]
    made = Lead.objects.get()
    resent = staff_client.post(f"/api/leads/{made.lead_id}/resend")
    assert resent.status_code == 202
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.action, entry.object_id) == (staff, "lead.resend", str(made.lead_id))
    assert outsider_client.get("/api/leads/").status_code == 403
    response = Client().get("/api/leads/")
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Basic")


def test_sites_lists_the_partners_sites_with_their_grant_status(push, partner, other_partner, site):
    site_grant(partner=other_partner, site_uuid=uuid.uuid4(), source=Site.Source.MANUAL)
    lead(partner, "kai@example.com", site_uuid=uuid.UUID("0b9a8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d"))

    sites = push.get("/api/sites/").json()

    assert sorted((s["site_uuid"], s["status"]) for s in sites) == sorted(
        [(str(SITE_UUID), "active"), ("0b9a8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d", "pending")]
    )


def open_circuit(site: Site, *, retry_in: timedelta = timedelta(minutes=1)) -> Site:
    """The site's circuit as the delivery engine leaves it after five 503s in a row."""
    now = timezone.now()
    Site.objects.filter(pk=site.pk).update(
        circuit_failures=5,
        circuit_opened_at=now,
        circuit_open_until=now + retry_in,
        circuit_last_error="RG answered 503: Service Unavailable",
    )
    site.refresh_from_db()
    return site


def when(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def test_a_sites_circuit_is_closed_until_rg_keeps_failing_then_open_until_its_retry(push, site):
    closed = push.get("/api/sites/").json()[0]["circuit"]
    open_circuit(site)
    opened = push.get("/api/sites/").json()[0]["circuit"]

    assert closed == {
        "state": "closed",
        "consecutive_failures": 0,
        "opened_at": None,
        "retry_at": None,
        "last_error": "",
    }
    assert (opened["state"], opened["consecutive_failures"]) == ("open", 5)
    assert (when(opened["opened_at"]), when(opened["retry_at"])) == (site.circuit_opened_at, site.circuit_open_until)
    assert opened["last_error"] == "RG answered 503: Service Unavailable"


def test_a_circuit_whose_retry_time_has_passed_is_probing(push, site):
    open_circuit(site, retry_in=timedelta(seconds=-1))

    circuit = push.get("/api/sites/").json()[0]["circuit"]

    assert circuit["state"] == "probing"
    assert when(circuit["retry_at"]) == site.circuit_open_until


def test_a_resumed_circuit_reads_closed_again(push, site):
    open_circuit(site)
    circuit_resume(site=site)

    assert push.get("/api/sites/").json()[0]["circuit"]["state"] == "closed"


def test_a_lead_shows_its_sites_circuit(push, partner, site):
    made = lead(partner, "kai@example.com")
    before = push.get(f"/api/leads/{made.lead_id}/").json()
    open_circuit(site)

    body = push.get(f"/api/leads/{made.lead_id}/").json()

    assert before["site_circuit"]["state"] == "closed"
    assert body["site"] == str(SITE_UUID)
    assert (body["site_circuit"]["state"], body["site_circuit"]["consecutive_failures"]) == ("open", 5)
    assert when(body["site_circuit"]["retry_at"]) == site.circuit_open_until


def test_the_schema_describes_the_push_and_read_apis_and_the_docs_use_no_cdn(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    docs = client.get("/api/docs/")

    assert schema.status_code == 200
    text = schema.content.decode()
    for path in ("/rest/sites/{site_uuid}/leads", "/v2/rest/sites/{site_uuid}/leads/{lead_id}/", "/api/leads/"):
        assert path in text
    components = schema.json()["components"]["schemas"]
    assert components["Site"]["properties"]["circuit"] == {
        "allOf": [{"$ref": "#/components/schemas/Circuit"}],
        "readOnly": True,
    }
    assert set(components["Circuit"]["properties"]) == {
        "state",
        "consecutive_failures",
        "opened_at",
        "retry_at",
        "last_error",
    }
    assert "site_circuit" in components["LeadDetail"]["properties"]
    assert docs.status_code == 200
    assert "cdn" not in docs.content.decode().lower()
