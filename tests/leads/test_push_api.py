"""The push API speaks RG's Incoming Leads API: paths, status codes, bodies and errors."""

import json
import uuid

import leadrouter
import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from grants.models import ApiKey, Site
from grants.services import api_key_issue, site_grant
from leads.models import Delivery, Lead
from tests.leads.conftest import OTHER_SITE_UUID, SITE_UUID, basic

LEAD_ID = "2b6c1f4e-8d3a-4c5b-9e7f-0a1b2c3d4e5f"
JACK = {"id": LEAD_ID, "source": "Zillow", "email": "jack@gmail.com", "first_name": "Jack", "last_name": "Johnson"}
pytestmark = pytest.mark.django_db


def post(client: Client, path: str, body: object, method: str = "post"):
    data = body if isinstance(body, bytes) else json.dumps(body)
    return getattr(client, method)(path, data=data, content_type="application/json; charset=utf-8")


def test_a_create_answers_201_with_an_empty_object_and_stores_the_lead_as_sent(push, site, rg):
    body = {**JACK, "favourite_colour": "teal", "activities": [{"type": "note", "description": "hi"}]}

    response = post(push, f"/rest/sites/{SITE_UUID}/leads", body)

    assert (response.status_code, response.json()) == (201, {})
    lead = Lead.objects.get()
    assert (str(lead.lead_id), lead.email, lead.name, lead.site_id) == (
        LEAD_ID,
        "jack@gmail.com",
        "Jack Johnson",
        site.pk,
    )
    payload = Delivery.objects.get().payload
    assert payload["favourite_colour"] == "teal"  # unknown fields pass through
    assert payload["created"] and payload["activities"][0]["created"]


def test_a_lead_without_an_id_gets_a_uuid4_and_keeps_a_given_created(push, site, rg):
    body = {"source": "Zillow", "phone": "808-123-1234", "created": "2015-04-01T08:41:51+00:00"}

    assert post(push, f"/rest/sites/{SITE_UUID}/leads", body).status_code == 201

    payload = Delivery.objects.get().payload
    assert uuid.UUID(payload["id"]).version == 4
    assert payload["created"] == "2015-04-01T08:41:51+00:00"
    assert str(Lead.objects.get().lead_id) == payload["id"]


def test_updates_activities_and_v2_answer_200_with_an_empty_object(push, site, rg):
    post(push, f"/rest/sites/{SITE_UUID}/leads", JACK)

    update = post(push, f"/rest/sites/{SITE_UUID}/leads/{LEAD_ID}", {"notes": "Call at 5"}, "patch")
    activities = post(push, f"/rest/sites/{SITE_UUID}/leads/{LEAD_ID}/activities", [{"type": "visited"}])
    v2 = post(push, f"/v2/rest/sites/{SITE_UUID}/leads/{LEAD_ID}/", {"first_name": ""}, "patch")

    assert [(r.status_code, r.json()) for r in (update, activities, v2)] == [(200, {})] * 3
    lead = Lead.objects.get()
    assert lead.data["notes"] == "Call at 5" and "first_name" not in lead.data
    assert [a["type"] for a in lead.data["activities"]] == ["visited"]
    assert list(lead.deliveries.values_list("operation", flat=True)) == [
        "create_lead",
        "update_lead",
        "add_activities",
        "update_lead_v2",
    ]


def test_a_potential_seller_lead_answers_201(push, site, rg):
    body = {"activities": [{"type": "property_viewed", "property": {"street_address": "123 Keolu Dr"}}]}

    response = post(push, f"/rest/sites/{SITE_UUID}/potential-seller-leads", body)

    assert (response.status_code, response.json()) == (201, {})
    assert Delivery.objects.get().operation == "potential_seller"


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"{not json", 400, "Request body is not valid JSON."),
        ({"email": "jack@gmail.com"}, 422, "Field 'source' is required."),
        ({**JACK, "role": "Landlord"}, 422, "Field 'role' must be one of: Buyer, Seller, Buyer and Seller, Renter."),
        ([JACK], 422, "Lead must be a JSON object."),
    ],
)
def test_bad_bodies_get_rgs_status_and_error_and_store_nothing(push, site, body, status, error):
    response = post(push, f"/rest/sites/{SITE_UUID}/leads", body)

    assert (response.status_code, response.json()) == (status, {"error": error})
    assert Lead.objects.count() == Delivery.objects.count() == 0


def test_a_missing_or_wrong_key_gets_401_with_a_basic_challenge(credentials, site):
    key_id, secret = credentials
    for client in (
        Client(),
        Client(HTTP_AUTHORIZATION=basic(key_id, secret + "x")),
        Client(HTTP_AUTHORIZATION="Basic !!"),
    ):
        response = post(client, f"/rest/sites/{SITE_UUID}/leads", JACK)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic")
        assert set(response.json()) == {"error"}
    assert Lead.objects.count() == 0


def test_a_body_over_the_limit_gets_413(push, site, settings):
    settings.PUSH_MAX_BODY_BYTES = 100
    response = post(push, f"/rest/sites/{SITE_UUID}/leads", {**JACK, "notes": "x" * 200})
    assert response.status_code == 413
    assert response.json() == {"error": "Request body is larger than 100 bytes."}


def test_a_path_with_a_bad_uuid_gets_404_in_rgs_shape(push, site):
    response = post(push, "/rest/sites/not-a-uuid/leads", JACK)
    assert response.status_code == 404
    assert response.json() == {"error": "Site 'not-a-uuid' is not a valid UUID."}


def test_an_unknown_site_is_accepted_and_held_as_a_pending_site(push, partner, rg):
    response = post(push, f"/rest/sites/{OTHER_SITE_UUID}/leads", JACK)

    assert response.status_code == 201
    site = Site.objects.get(partner=partner, site_uuid=OTHER_SITE_UUID)
    assert (site.status, site.source) == ("pending", "api")


def test_an_update_for_a_lead_never_seen_is_forwarded_without_waiting_for_a_create(push, site, rg):
    response = post(push, f"/rest/sites/{SITE_UUID}/leads/{LEAD_ID}", {"notes": "hello"}, "patch")

    assert response.status_code == 200
    lead = Lead.objects.get()
    assert lead.created_elsewhere is True
    assert Delivery.objects.get().operation == "update_lead"


def test_a_lead_id_belongs_to_one_site(push, site, rg):
    post(push, f"/rest/sites/{SITE_UUID}/leads", JACK)

    create = post(push, f"/rest/sites/{OTHER_SITE_UUID}/leads", JACK)
    update = post(push, f"/rest/sites/{OTHER_SITE_UUID}/leads/{LEAD_ID}", {"notes": "x"}, "patch")

    assert (create.status_code, update.status_code) == (422, 404)
    assert update.json() == {"error": f"Lead {LEAD_ID} belongs to another site."}
    assert Delivery.objects.count() == 1


def test_another_partners_key_cannot_touch_this_partners_lead(push, other_partner, site, rg):
    post(push, f"/rest/sites/{SITE_UUID}/leads", JACK)
    key, secret = api_key_issue(partner=other_partner)
    other = Client(HTTP_AUTHORIZATION=basic(key.key_id, secret))

    post(other, f"/rest/sites/{SITE_UUID}/leads/{LEAD_ID}", {"notes": "x"}, "patch")

    mine = Lead.objects.get(partner=site.partner)
    assert "notes" not in mine.data and mine.deliveries.count() == 1


def test_users_are_passed_through_from_rg_and_cached(push, site, rg):
    first = push.get(f"/rest/sites/{SITE_UUID}/users")
    second = push.get(f"/rest/sites/{SITE_UUID}/users")

    assert first.status_code == second.status_code == 200
    assert first.json() == [{"id": "14187", "role": "Agent", "name": "Kai", "admin": False}]
    assert rg.operations() == [("GET", f"/rest/sites/{SITE_UUID}/users")]


def test_a_refusal_from_rg_for_users_is_not_passed_on_as_a_401(push, site, rg):
    rg.answer((401, '{"error": "Unauthorized"}'))
    response = push.get(f"/rest/sites/{OTHER_SITE_UUID}/users")
    assert response.status_code == 403
    assert "Real Geeks refused" in response.json()["error"]


def test_rgs_python_client_drives_all_four_operations_through_the_portal(live_server, partner, rg, transactional_db):
    rg.mock.add_passthru(live_server.url)
    site_grant(partner=partner, site_uuid=SITE_UUID, source=Site.Source.MANUAL)
    key, secret = api_key_issue(partner=partner)
    client = leadrouter.Client(live_server.url, key.key_id, secret)

    client.create_lead(str(SITE_UUID), dict(JACK))
    client.update_lead(str(SITE_UUID), LEAD_ID, {"notes": "Prefers email"})
    client.add_activities(str(SITE_UUID), LEAD_ID, [{"type": "note", "description": "Called"}])
    client.create_potential_seller_lead(
        str(SITE_UUID), {"activities": [{"type": "property_viewed", "property": {"mls": "12345"}}]}
    )

    assert [op for op in rg.operations() if op[0] != "GET"] == [
        ("POST", f"/rest/sites/{SITE_UUID}/leads"),
        ("PATCH", f"/rest/sites/{SITE_UUID}/leads/{LEAD_ID}"),
        ("POST", f"/rest/sites/{SITE_UUID}/leads/{LEAD_ID}/activities"),
        ("POST", f"/rest/sites/{SITE_UUID}/potential-seller-leads"),
    ]
    assert set(Delivery.objects.values_list("status", flat=True)) == {"delivered"}


def test_rgs_python_client_sees_rgs_error_for_a_bad_lead(live_server, partner, rg, transactional_db):
    rg.mock.add_passthru(live_server.url)
    key, secret = api_key_issue(partner=partner)
    client = leadrouter.Client(live_server.url, key.key_id, secret)

    with pytest.raises(leadrouter.HTTPError) as caught:
        client.create_lead(str(SITE_UUID), {"email": "jack@gmail.com"})

    assert (caught.value.status_code, str(caught.value)) == (422, "Field 'source' is required.")


def test_a_keys_last_use_is_recorded_at_most_once_per_few_minutes(push, credentials, site, rg):
    post(push, f"/rest/sites/{SITE_UUID}/leads", JACK)
    first_use = ApiKey.objects.get(key_id=credentials[0]).last_used_at
    assert first_use is not None

    with CaptureQueriesContext(connection) as queries:
        post(push, f"/rest/sites/{SITE_UUID}/leads", {**JACK, "id": str(uuid.uuid4())})
    assert not [q for q in queries.captured_queries if q["sql"].startswith('UPDATE "grants_apikey"')]
    assert ApiKey.objects.get(key_id=credentials[0]).last_used_at == first_use


@pytest.fixture
def policies_built(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every policy django-csp's middleware builds, as it builds it."""
    import csp.middleware

    built: list[str] = []
    real_build = csp.middleware.build_policy

    def build(*args: object, **kwargs: object) -> str:
        policy = real_build(*args, **kwargs)  # type: ignore[arg-type]
        built.append(policy)
        return policy

    monkeypatch.setattr(csp.middleware, "build_policy", build)
    return built


def test_api_answers_carry_the_fixed_api_policy_and_build_no_page_policy(push, site, rg, client, policies_built):
    created = post(push, f"/rest/sites/{SITE_UUID}/leads", JACK)
    refused = post(push, f"/rest/sites/{SITE_UUID}/leads", b"{not json")
    unauthenticated = post(client, f"/rest/sites/{SITE_UUID}/leads", JACK)
    read = push.get("/api/leads/")

    assert [r.status_code for r in (created, refused, unauthenticated, read)] == [201, 400, 401, 200]
    for response in (created, refused, unauthenticated, read):
        assert response["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert policies_built == []  # nothing built only to be thrown away
    page = client.get("/login/")
    assert "script-src 'self'" in page["Content-Security-Policy"]
    assert page["Content-Security-Policy"] in policies_built


def test_a_report_only_policy_still_reaches_api_answers(push, site, rg, settings):
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {"DIRECTIVES": {"default-src": ["'none'"]}}

    response = post(push, f"/rest/sites/{SITE_UUID}/leads", JACK)

    assert response["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert response["Content-Security-Policy-Report-Only"] == "default-src 'none'"
