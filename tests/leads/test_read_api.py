"""The read and act API: partner-scoped lists and details, retry and resend, sites and their
delivery circuits, the schema."""

import uuid
from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from core.models import AuditEntry
from grants.models import Site
from grants.services import api_key_issue, site_grant
from leads.circuit import circuit_resume
from leads.models import Delivery, Lead
from leads.services import lead_submit
from tests.leads.conftest import SITE_UUID, basic
from tests.leads.long_history import REQUEST_BODY, long_history

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


def test_resending_a_lead_known_only_from_updates_is_refused_without_sending(push, partner, site, rg):
    lead_id = uuid.uuid4()
    # An update of a lead the portal never saw created: its state has no `source`.
    lead_submit(
        partner=partner, site_uuid=site.site_uuid, operation="update_lead", data={"notes": "n"}, lead_id=lead_id
    )
    sent = len(rg.calls)

    response = push.post(f"/api/leads/{lead_id}/resend")

    assert response.status_code == 422 and "source" in response.json()["error"]
    assert len(rg.calls) == sent


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


def follow(client: Client, url: str | None, key: str = "next") -> list[dict]:
    """Every row from `url` on, following the pages' `key` links to the end."""
    rows: list[dict] = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.json()
        rows += response.json()["results"]
        url = response.json()[key]
    return rows


def test_a_lead_document_holds_its_latest_deliveries_and_their_latest_attempts(push, partner, site, settings):
    made = lead(partner, "kai@example.com")
    newest = long_history(made, deliveries=300, attempts=60)

    body = push.get(f"/api/leads/{made.lead_id}/").json()

    assert [d["sequence"] for d in body["deliveries"]] == list(range(300, 250, -1))
    assert body["deliveries_total"] == 300
    assert body["deliveries_next"].startswith(f"http://testserver/api/leads/{made.lead_id}/deliveries/?cursor=")
    assert body["deliveries_next"].endswith(f"&partner={partner.slug}")
    first = body["deliveries"][0]
    assert (first["id"], first["attempt_count"]) == (str(newest.public_id), 60)
    assert [a["number"] for a in first["attempts"]] == list(range(60, 50, -1))
    assert first["attempts_next"].startswith(f"http://testserver/api/deliveries/{newest.public_id}/attempts/?cursor=")
    assert body["deliveries"][1]["attempts"] == [] and body["deliveries"][1]["attempts_next"] is None
    # Attempts store the whole body sent; the document holds the first ATTEMPT_BODY_MAX_CHARS of it.
    assert {len(a["request_body"]) for a in first["attempts"]} == {settings.ATTEMPT_BODY_MAX_CHARS}
    assert first["attempts"][0]["request_body"] == REQUEST_BODY[: settings.ATTEMPT_BODY_MAX_CHARS]


def test_a_short_history_is_whole_in_the_document_with_no_links(
    push, partner, site, rg, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        made = lead(partner, "kai@example.com")

    body = push.get(f"/api/leads/{made.lead_id}/").json()

    assert (body["deliveries_total"], body["deliveries_next"]) == (1, None)
    (delivery,) = body["deliveries"]
    assert (len(delivery["attempts"]), delivery["attempts_next"]) == (1, None)


def test_the_links_walk_every_delivery_and_attempt_once(push, partner, site):
    made = lead(partner, "kai@example.com")
    newest = long_history(made, deliveries=300, attempts=60)
    body = push.get(f"/api/leads/{made.lead_id}/").json()

    older = follow(push, body["deliveries_next"])
    earlier = follow(push, body["deliveries"][0]["attempts_next"])

    assert [d["sequence"] for d in body["deliveries"] + older] == list(range(300, 0, -1))
    assert [a["number"] for a in body["deliveries"][0]["attempts"] + earlier] == list(range(60, 0, -1))
    everything = follow(push, f"/api/deliveries/{newest.public_id}/attempts/")
    assert [a["number"] for a in everything] == list(range(60, 0, -1))
    assert [d["sequence"] for d in follow(push, f"/api/leads/{made.lead_id}/deliveries/")] == list(range(300, 0, -1))


def test_previous_links_walk_back_to_the_newest(push, partner, site):
    made = lead(partner, "kai@example.com")
    long_history(made, deliveries=120, attempts=1)
    last = push.get(f"/api/leads/{made.lead_id}/deliveries/?page_size=50").json()
    for _ in range(2):
        last = push.get(last["next"]).json()

    back = follow(push, last["previous"], key="previous")

    assert [d["sequence"] for d in last["results"]] == list(range(20, 0, -1))
    assert [d["sequence"] for d in back] == list(range(70, 20, -1)) + list(range(120, 70, -1))


def test_a_page_holds_at_most_the_settings_worth(push, partner, site, settings):
    settings.LEAD_PAGE_DELIVERIES, settings.LEAD_PAGE_ATTEMPTS = 7, 3
    made = lead(partner, "kai@example.com")
    newest = long_history(made, deliveries=20, attempts=5)

    body = push.get(f"/api/leads/{made.lead_id}/").json()
    asked_for_more = push.get(f"/api/leads/{made.lead_id}/deliveries/?page_size=1000").json()
    fewer = push.get(f"/api/deliveries/{newest.public_id}/attempts/?page_size=2").json()

    assert [d["sequence"] for d in body["deliveries"]] == list(range(20, 13, -1))
    assert [a["number"] for a in body["deliveries"][0]["attempts"]] == [5, 4, 3]
    assert len(asked_for_more["results"]) == 7
    assert [a["number"] for a in fewer["results"]] == [5, 4]


@pytest.mark.parametrize(
    ("path", "query", "named"),
    [
        ("/api/leads/{lead}/deliveries/", "cursor=garbage", "cursor"),
        ("/api/leads/{lead}/deliveries/", "cursor=cD1hYmM=", "cursor"),  # base64 of p=abc: not a sequence
        ("/api/leads/{lead}/deliveries/", "cursor=bz0tMyZwPTQ=", "cursor"),  # o=-3&p=4: a negative offset
        ("/api/leads/{lead}/deliveries/", "page_size=0", "page_size"),
        ("/api/leads/{lead}/deliveries/", "page_size=ten", "page_size"),
        ("/api/deliveries/{delivery}/attempts/", "cursor=%00%ff", "cursor"),
        ("/api/deliveries/{delivery}/attempts/", "cursor=cj14JnA9MQ==", "cursor"),  # r=x&p=1: not a direction
        ("/api/deliveries/{delivery}/attempts/", "page_size=-1", "page_size"),
        ("/api/leads/", "cursor=cD15ZXN0ZXJkYXk=", "cursor"),  # p=yesterday: not a time
        ("/api/leads/", "page_size=1.5", "page_size"),
    ],
)
def test_a_cursor_or_page_size_the_api_did_not_hand_out_is_a_400_in_rgs_shape(push, partner, site, path, query, named):
    made = lead(partner, "kai@example.com")
    url = path.format(lead=made.lead_id, delivery=made.deliveries.get().public_id)

    response = push.get(f"{url}?{query}")

    assert response.status_code == 400
    assert list(response.json()) == ["error"] and response.json()["error"].startswith(f"{named}: ")


def test_another_partners_deliveries_and_attempts_are_a_404(other_client, partner, site):
    made = lead(partner, "kai@example.com")
    delivery = made.deliveries.get()

    for url in (f"/api/leads/{made.lead_id}/deliveries/", f"/api/deliveries/{delivery.public_id}/attempts/"):
        response = other_client.get(url)
        assert response.status_code == 404 and list(response.json()) == ["error"], url
    assert other_client.get("/api/leads/not-a-uuid/deliveries/").status_code == 404


def test_the_document_and_its_pages_run_the_same_few_queries_however_long_the_history(
    push, partner, site, django_assert_max_num_queries
):
    short = lead(partner, "short@example.com")
    push.get("/api/sites/")  # the key's authentication, cached from here on
    urls = {
        "document": f"/api/leads/{short.lead_id}/",
        "deliveries": f"/api/leads/{short.lead_id}/deliveries/",
        "attempts": f"/api/deliveries/{short.deliveries.get().public_id}/attempts/",
    }
    few = {}
    for name, url in urls.items():
        with django_assert_max_num_queries(3) as captured:
            push.get(url)
        few[name] = len(captured.captured_queries)
    made = lead(partner, "kai@example.com")
    newest = long_history(made, deliveries=300, attempts=60)
    body = push.get(f"/api/leads/{made.lead_id}/").json()

    for name, url in {
        "document": f"/api/leads/{made.lead_id}/",
        "deliveries": body["deliveries_next"],
        "attempts": body["deliveries"][0]["attempts_next"],
    }.items():
        with django_assert_max_num_queries(few[name]):
            assert push.get(url).status_code == 200
    assert newest.attempt_count == 60


def test_a_retry_answers_with_the_deliverys_latest_attempts(
    push, partner, site, rg, django_capture_on_commit_callbacks
):
    made = lead(partner, "kai@example.com")
    newest = long_history(made, deliveries=2, attempts=60)

    with django_capture_on_commit_callbacks(execute=True):
        response = push.post(f"/api/deliveries/{newest.public_id}/retry")

    assert response.status_code == 202
    assert [a["number"] for a in response.json()["attempts"]] == list(range(60, 50, -1))
    assert response.json()["attempts_next"]


def test_the_schema_describes_the_paged_deliveries_and_attempts(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()

    components = schema["components"]["schemas"]
    assert {"deliveries", "deliveries_total", "deliveries_next"} <= set(components["LeadDetail"]["properties"])
    assert {"attempts", "attempts_next", "attempt_count"} <= set(components["Delivery"]["properties"])
    assert components["LeadDetail"]["properties"]["deliveries_next"]["nullable"] is True
    for path, listed in [
        ("/api/leads/{lead_id}/deliveries/", "PaginatedDeliveryList"),
        ("/api/deliveries/{delivery_id}/attempts/", "PaginatedAttemptList"),
    ]:
        operation = schema["paths"][path]["get"]
        assert {p["name"] for p in operation["parameters"]} >= {"cursor", "page_size"}
        assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(listed)
        assert {"400", "404"} <= set(operation["responses"])
