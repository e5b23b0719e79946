import pytest
from django.test import Client

from grants.models import Site
from grants.services import partner_create
from sandbox import log
from sandbox.models import SandboxRequest
from sandbox.services import sandbox_account_ensure
from tests.sandbox.conftest import OTHER_SITE, PASSWORD, SITE, USERNAME, RealGeeks, basic

# The log and the leads are staff pages: `client` is signed in as a superuser.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("root_client")]

LEAD_ID = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"


def test_every_request_is_kept_with_what_identifies_it(rg, example_lead):
    rg.create({**example_lead, "id": LEAD_ID})
    rg.update(LEAD_ID, {"role": "Landlord"})
    rg.users()
    created, refused, users = SandboxRequest.objects.order_by("pk")
    assert (created.method, created.path, created.site, created.lead_id) == (
        "POST",
        f"/sandbox/rest/sites/{SITE}/leads",
        str(SITE),
        LEAD_ID,
    )
    assert (created.username, created.status, created.response_body) == (USERNAME, 201, "{}")
    assert '"jack@gmail.com"' in created.request_body
    assert (refused.method, refused.lead_id, refused.status) == ("PATCH", LEAD_ID, 422)
    assert "Field 'role' must be one of" in refused.response_body
    assert (users.method, users.status) == ("GET", 200)
    assert "14187" in users.response_body


def test_the_log_never_holds_the_password_or_the_authorization_header(client, rg, example_lead):
    rg.create(example_lead)
    RealGeeks(client, basic(USERNAME, PASSWORD + "-wrong")).create(example_lead)
    pages = (
        client.get("/sandbox/requests.json").content.decode()
        + client.get("/sandbox/requests/").content.decode()
        + "".join(f"{r.__dict__}" for r in SandboxRequest.objects.all())
    )
    assert USERNAME in pages
    assert PASSWORD not in pages
    assert basic().split()[1] not in pages
    assert "Authorization" not in pages


def test_requests_json_lists_newest_first_and_filters(client, example_lead):
    sandbox_account_ensure(username=USERNAME, password=PASSWORD, site_uuids=[SITE, OTHER_SITE])
    rg = RealGeeks(client)
    rg.create({**example_lead, "id": LEAD_ID})
    first_id = SandboxRequest.objects.get().pk
    rg.add_activities(LEAD_ID, [{"type": "note"}])
    rg.create(example_lead, site=OTHER_SITE)

    everything = client.get("/sandbox/requests.json").json()
    assert [r["id"] for r in everything] == sorted((r["id"] for r in everything), reverse=True)
    assert [r["status"] for r in everything] == [201, 200, 201]
    assert {
        "method",
        "path",
        "site",
        "lead_id",
        "username",
        "status",
        "request_body",
        "response_body",
        "created",
    } <= set(everything[0])
    since = client.get(f"/sandbox/requests.json?since_id={first_id}").json()
    assert [r["id"] for r in since] == [r["id"] for r in everything[:2]]
    on_site = client.get(f"/sandbox/requests.json?site={SITE}").json()
    assert [r["path"].rsplit("/", 1)[-1] for r in on_site] == ["activities", "leads"]
    by_lead = client.get(f"/sandbox/requests.json?lead_id={LEAD_ID.replace('-', '').upper()}").json()
    assert [r["lead_id"] for r in by_lead] == [LEAD_ID, LEAD_ID]
    assert len(client.get(f"/sandbox/requests.json?site={SITE.hex}&method=post").json()) == 2
    assert len(client.get("/sandbox/requests.json?limit=1").json()) == 1


@pytest.mark.parametrize("query", ["since_id=abc", "status=x", "site=%00", "since_id=99999999999999999999999"])
def test_filters_that_cannot_match_give_an_empty_list_not_an_error(client, rg, example_lead, query):
    rg.create(example_lead)
    response = client.get(f"/sandbox/requests.json?{query}")
    assert (response.status_code, response.json()) == (200, [])


def test_the_requests_page_shows_each_request(client, rg, example_lead):
    rg.create({**example_lead, "full_baths": 1})
    rg.create({**example_lead, "activities": [{"type": "property_viewed", "property": {"full_baths": 2.5}}]})
    page = client.get(f"/sandbox/requests/?site={SITE}")
    assert page.status_code == 200
    text = page.content.decode()
    assert text.count(f"POST /sandbox/rest/sites/{SITE}/leads") == 2
    assert "Property field &#x27;full_baths&#x27; is not a valid integer." in text
    assert client.get("/sandbox/").url == "/sandbox/requests/"


def test_a_large_or_binary_body_is_kept_as_readable_truncated_text(rg):
    rg.create(None, raw=b"\xff\x00" + b"x" * (log.MAX_BODY_CHARS + 10))
    record = SandboxRequest.objects.get()
    assert record.status == 400
    assert len(record.request_body) == log.MAX_BODY_CHARS + 1
    assert record.request_body.startswith("\N{REPLACEMENT CHARACTER}\N{REPLACEMENT CHARACTER}x")
    assert record.request_body.endswith("\N{HORIZONTAL ELLIPSIS}")


def test_old_requests_are_pruned_so_the_log_stays_bounded(rg, example_lead, monkeypatch):
    monkeypatch.setattr(log, "KEEP_ROWS", 3)
    monkeypatch.setattr(log, "PRUNE_EVERY", 1)
    for _ in range(6):
        rg.users()
    ids = list(SandboxRequest.objects.values_list("pk", flat=True))
    assert len(ids) == 3
    assert max(ids) - min(ids) == 2


def test_the_stored_leads_can_be_read_back_with_their_activities_in_order(client, rg, example_lead):
    rg.create({**example_lead, "id": LEAD_ID})
    rg.add_activities(LEAD_ID, [{"type": "note", "description": "later"}])
    leads = client.get(f"/sandbox/leads.json?site={SITE}").json()
    assert [lead["lead_id"] for lead in leads] == [LEAD_ID]
    assert leads[0]["data"]["email"] == "jack@gmail.com"
    assert [a["type"] for a in leads[0]["activities"]] == ["contact_emailed", "property_viewed", "note"]
    assert client.get("/sandbox/leads.json").status_code == 400
    assert client.get(f"/sandbox/leads.json?site={OTHER_SITE}").json() == []


def test_a_creates_x_router_destinations_is_kept_and_shown(client, rg, example_lead):
    headers = {"Authorization": basic(), "X-ROUTER-DESTINATIONS": "buyers-team,crm"}
    client.post(f"/sandbox/rest/sites/{SITE}/leads", example_lead, content_type="application/json", headers=headers)
    rg.create(example_lead)

    with_them, without = client.get("/sandbox/requests.json").json()[::-1]
    assert (with_them["status"], with_them["router_destinations"]) == (201, "buyers-team,crm")
    assert without["router_destinations"] == ""
    page = client.get("/sandbox/requests/").content.decode()
    assert "X-ROUTER-DESTINATIONS: <code>buyers-team,crm</code>" in page


@pytest.mark.parametrize("path", ["/sandbox/requests.json", "/sandbox/requests/", f"/sandbox/leads.json?site={SITE}"])
def test_the_request_log_and_leads_need_a_staff_login(django_user_model, rg, example_lead, path):
    rg.create(example_lead)
    client = Client()
    anonymous = client.get(path)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/login/")
    client.force_login(django_user_model.objects.create_user("not-staff", password="not-staff-password-1"))
    assert client.get(path).status_code == 403


def test_staff_see_only_what_their_partners_sent_and_their_sites_hold(django_user_model, example_lead):
    client = Client()
    partner = partner_create(name="Acme", rg_username=USERNAME, rg_password=PASSWORD, webhook_secret="ws")
    Site.objects.create(partner=partner, site_uuid=SITE, source=Site.Source.MANUAL)
    sandbox_account_ensure(username=USERNAME, password=PASSWORD, site_uuids=[SITE])
    sandbox_account_ensure(username="someone-else", password="their-pw", site_uuids=[SITE, OTHER_SITE])
    RealGeeks(client).create({**example_lead, "id": LEAD_ID})
    theirs = RealGeeks(client, basic("someone-else", "their-pw"))
    theirs.create({**example_lead, "email": "theirs@example.com"}, site=OTHER_SITE)
    theirs.update(LEAD_ID, {"city": "Hilo"})
    staff = django_user_model.objects.create_user("kim", password="kim-password-123", is_staff=True)
    partner.staff.add(staff)
    client.force_login(staff)

    logged = client.get("/sandbox/requests.json").json()
    page = client.get("/sandbox/requests/").content.decode()

    assert [(r["username"], r["status"]) for r in logged] == [(USERNAME, 201)]
    assert "someone-else" not in page and "theirs@example.com" not in page
    assert [lead["lead_id"] for lead in client.get(f"/sandbox/leads.json?site={SITE}").json()] == [LEAD_ID]
    assert client.get(f"/sandbox/leads.json?site={OTHER_SITE}").json() == []
