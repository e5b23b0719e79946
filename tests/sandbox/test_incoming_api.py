import uuid

import pytest

from sandbox.models import SandboxActivity, SandboxLead
from sandbox.services import sandbox_account_ensure, sandbox_agent_add
from tests.sandbox.conftest import OTHER_SITE, PASSWORD, SITE, USERNAME, RealGeeks, basic

pytestmark = pytest.mark.django_db

LEAD_ID = "3f2b8c1e-9a4d-4e7b-8c6f-1d2e3f4a5b6c"


def stored(lead_id: str = LEAD_ID, site: uuid.UUID = SITE) -> SandboxLead:
    return SandboxLead.objects.get(site_uuid=site, lead_id=uuid.UUID(lead_id))


def activity_types(lead_id: str = LEAD_ID) -> list[str]:
    return [a.data["type"] for a in SandboxActivity.objects.filter(lead=stored(lead_id))]


def test_rg_own_example_lead_is_created_with_201_and_an_empty_object(rg, example_lead):
    response = rg.create({**example_lead, "id": LEAD_ID})
    assert (response.status_code, response.json()) == (201, {})
    lead = stored()
    assert lead.data["email"] == "jack@gmail.com"
    assert "activities" not in lead.data
    assert activity_types() == ["contact_emailed", "property_viewed"]
    assert SandboxActivity.objects.get(lead=lead, data__type="property_viewed").data["property"]["sqft"] == "1340"


def test_a_lead_without_an_id_is_still_kept(rg, example_lead):
    assert rg.create(example_lead).status_code == 201
    assert SandboxLead.objects.get().data["first_name"] == "Jack"


def test_a_half_bath_is_refused_with_rg_message(rg, example_lead):
    example_lead["activities"][1]["property"]["full_baths"] = 2.5
    response = rg.create(example_lead)
    assert (response.status_code, response.json()) == (
        422,
        {"error": "Property field 'full_baths' is not a valid integer."},
    )
    assert not SandboxLead.objects.exists()


@pytest.mark.parametrize("raw", [b"{not json", b"", b"\xff\xfe", b'{"source": "x",}'])
def test_a_body_that_is_not_json_gets_400(rg, raw):
    response = rg.create(None, raw=raw)
    assert response.status_code == 400
    assert response.json() == {"error": "Request body is not valid JSON."}


def test_json_of_the_wrong_shape_gets_422(rg):
    response = rg.create(["not", "a", "lead"])
    assert (response.status_code, response.json()) == (422, {"error": "Lead must be a JSON object."})


@pytest.mark.parametrize(
    ("authorization", "error"),
    [
        ("", "Missing credentials: use HTTP Basic authentication."),
        ("Bearer abc", "Missing credentials: use HTTP Basic authentication."),
        ("Basic !!!", "Missing credentials: use HTTP Basic authentication."),
        (basic(USERNAME, PASSWORD + "x"), "Invalid credentials."),
        (basic("nobody", PASSWORD), "Invalid credentials."),
    ],
)
def test_missing_or_wrong_credentials_get_401(client, sandbox_account, example_lead, authorization, error):
    response = RealGeeks(client, authorization).create(example_lead)
    assert (response.status_code, response.json()) == (401, {"error": error})
    assert response["WWW-Authenticate"].startswith("Basic")
    assert not SandboxLead.objects.exists()


@pytest.mark.parametrize("site", [OTHER_SITE, "not-a-uuid"])
def test_a_site_the_account_may_not_use_gets_401(rg, example_lead, site):
    response = rg.create(example_lead, site=site)
    assert (response.status_code, response.json()) == (401, {"error": "These credentials may not send to this site."})


def test_a_site_may_be_spelled_without_dashes(rg, example_lead):
    assert rg.create(example_lead, site=SITE.hex).status_code == 201
    assert SandboxLead.objects.get().site_uuid == SITE


def test_creating_a_known_id_again_merges_into_that_lead(rg, example_lead):
    rg.create({**example_lead, "id": LEAD_ID})
    again = {
        "id": LEAD_ID.replace("-", ""),
        "source": "My Website",
        "phone": "(808) 555-0199",
        "activities": [{"type": "note"}],
    }
    assert rg.create(again).status_code == 201
    lead = stored()
    assert (lead.data["phone"], lead.data["first_name"]) == ("(808) 555-0199", "Jack")
    assert activity_types() == ["contact_emailed", "property_viewed", "note"]
    assert SandboxLead.objects.count() == 1


def test_the_same_lead_id_on_two_sites_is_two_leads(client, example_lead):
    sandbox_account_ensure(username=USERNAME, password=PASSWORD, site_uuids=[SITE, OTHER_SITE])
    rg = RealGeeks(client)
    rg.create({**example_lead, "id": LEAD_ID})
    rg.create({**example_lead, "id": LEAD_ID, "first_name": "Kai"}, site=OTHER_SITE)
    assert (stored().data["first_name"], stored(site=OTHER_SITE).data["first_name"]) == ("Jack", "Kai")


def test_an_update_changes_only_the_fields_it_sends_and_adds_its_activities(rg, example_lead):
    rg.create({**example_lead, "id": LEAD_ID})
    response = rg.update(
        LEAD_ID, {"role": "Seller", "notes": "", "activities": [{"type": "note", "description": "Called"}]}
    )
    assert (response.status_code, response.json()) == (200, {})
    lead = stored()
    assert (lead.data["role"], lead.data["notes"], lead.data["email"]) == ("Seller", "", "jack@gmail.com")
    assert activity_types() == ["contact_emailed", "property_viewed", "note"]


def test_an_update_cannot_change_the_lead_id(rg, example_lead):
    rg.create({**example_lead, "id": LEAD_ID})
    other = str(uuid.uuid4())
    assert rg.update(LEAD_ID, {"id": other, "city": "Hilo"}).status_code == 200
    assert stored().data["id"] == LEAD_ID
    assert stored().data["city"] == "Hilo"


def test_a_v2_update_unsets_blank_fields(rg, example_lead):
    rg.create({**example_lead, "id": LEAD_ID})
    response = rg.update_v2(LEAD_ID, {"phone": "", "city": "Hilo"})
    assert response.status_code == 200
    data = stored().data
    assert "phone" not in data
    assert data["city"] == "Hilo"
    assert data["first_name"] == "Jack"


# A fixed UUID, not uuid4(): pytest-xdist's workers must collect the same test names.
@pytest.mark.parametrize("lead_id", ["8f14e45f-ceea-4f1b-9b4c-7c3a2d1e0b5a", "not-a-uuid"], ids=["unknown", "bad"])
def test_updating_an_unknown_lead_gets_404(rg, lead_id):
    response = rg.update(lead_id, {"city": "Hilo"})
    assert (response.status_code, response.json()) == (404, {"error": "Lead not found"})
    assert rg.update_v2(lead_id, {"city": "Hilo"}).status_code == 404
    assert rg.add_activities(lead_id, [{"type": "note"}]).status_code == 404


def test_an_update_of_a_lead_on_another_site_gets_404(client, example_lead):
    sandbox_account_ensure(username=USERNAME, password=PASSWORD, site_uuids=[SITE, OTHER_SITE])
    rg = RealGeeks(client)
    rg.create({**example_lead, "id": LEAD_ID})
    assert rg.update(LEAD_ID, {"city": "Hilo"}, site=OTHER_SITE).status_code == 404


def test_an_invalid_update_changes_nothing(rg, example_lead):
    rg.create({**example_lead, "id": LEAD_ID})
    response = rg.update(
        LEAD_ID, {"city": "Hilo", "activities": [{"type": "property_viewed", "property": {"beds": "2.5"}}]}
    )
    assert (response.status_code, response.json()) == (422, {"error": "Property field 'beds' is not a valid integer."})
    assert "city" not in stored().data
    assert len(activity_types()) == 2


def test_activities_are_added_in_the_order_they_arrive(rg, example_lead):
    rg.create({**example_lead, "id": LEAD_ID, "activities": []})
    first = rg.add_activities(LEAD_ID, [{"type": "visited"}, {"type": "search_performed"}])
    second = rg.add_activities(LEAD_ID.upper(), [{"type": "was_assigned", "user": {"id": "14187"}}])
    assert (first.status_code, first.json(), second.status_code) == (200, {}, 200)
    assert activity_types() == ["visited", "search_performed", "was_assigned"]


def test_the_activities_body_must_be_a_list(rg, example_lead):
    rg.create({**example_lead, "id": LEAD_ID})
    response = rg.add_activities(LEAD_ID, {"type": "note"})
    assert (response.status_code, response.json()) == (422, {"error": "Activities must be a list of activities."})


def test_a_potential_seller_lead_with_a_viewed_property_is_created(rg):
    body = {
        "id": LEAD_ID,
        "created": "2024-05-01T10:00:00Z",
        "activities": [
            {"type": "property_viewed", "property": {"street_address": "123 Keolu Dr", "estimated_value": "650000"}}
        ],
    }
    response = rg.potential_seller(body)
    assert (response.status_code, response.json()) == (201, {})
    assert stored().kind == SandboxLead.Kind.POTENTIAL_SELLER
    assert activity_types() == ["property_viewed"]


@pytest.mark.parametrize(
    "activities",
    [[], [{"type": "visited"}], [{"type": "property_viewed"}], [{"type": "contact_emailed", "property": {}}]],
)
def test_a_potential_seller_lead_without_a_viewed_property_gets_422(rg, activities):
    response = rg.potential_seller({"id": LEAD_ID, "activities": activities})
    assert response.status_code == 422
    assert response.json() == {"error": "Potential seller lead needs a 'property_viewed' activity with a property."}
    assert not SandboxLead.objects.exists()


def test_users_lists_the_site_demo_agents_and_added_ones(rg):
    sandbox_agent_add(
        site_uuid=SITE, user={"id": 99, "role": "Lender", "name": "Noe Lender", "email": "noe@example.com"}
    )
    response = rg.users()
    assert response.status_code == 200
    users = response.json()
    assert [(u["id"], u["role"]) for u in users] == [("14187", "Agent"), ("14188", "Agent"), ("99", "Lender")]
    assert {"admin", "name", "email", "signature", "phone_office", "phone_cell"} <= set(users[0])


def test_users_of_a_site_the_account_may_not_use_gets_401(rg):
    assert rg.users(site=OTHER_SITE).status_code == 401


def test_a_wrong_method_gets_405_in_json(rg):
    response = rg.send("GET", f"/sandbox/rest/sites/{SITE}/leads")
    assert (response.status_code, response.json()) == (405, {"error": "Method not allowed: use POST."})


def test_an_unknown_api_path_gets_a_json_404(rg):
    response = rg.send("POST", f"/sandbox/rest/sites/{SITE}/contacts", {})
    assert (response.status_code, response.json()) == (404, {"error": "Not found"})


def test_a_trailing_slash_is_accepted_on_v1_paths(rg, example_lead):
    response = rg.send("POST", f"/sandbox/rest/sites/{SITE}/leads/", example_lead)
    assert response.status_code == 201


def test_text_no_database_can_store_gets_400_not_a_500(rg):
    response = rg.create(None, raw=b'{"source": "x", "email": "a@b.co", "notes": "\\u0000"}')
    assert response.status_code == 400
    assert not SandboxLead.objects.exists()
