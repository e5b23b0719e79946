import json
import time

import pytest
from django.test import Client

from sandbox import faults
from sandbox.models import SandboxFaults, SandboxLead, SandboxRequest
from tests.sandbox.conftest import RealGeeks

# The control endpoint and the page are a superuser's: `client` is signed in as one.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("root_client")]


def put_faults(client, **settings) -> dict:
    response = client.put("/sandbox/control/faults", json.dumps(settings), content_type="application/json")
    assert response.status_code == 200, response.content
    return response.json()


def timed_create(rg: RealGeeks, lead: dict) -> tuple[float, int]:
    started = time.monotonic()
    response = rg.create(lead)
    return time.monotonic() - started, response.status_code


def test_without_faults_nothing_is_injected(rg, example_lead):
    assert faults.fault_take() is None
    assert rg.create(example_lead).status_code == 201
    assert SandboxRequest.objects.get().fault == ""


def test_latency_delays_every_answer_and_is_logged(client, rg, example_lead):
    put_faults(client, latency_ms=250)
    elapsed, status = timed_create(rg, example_lead)
    assert status == 201
    assert elapsed >= 0.25
    record = SandboxRequest.objects.get()
    assert record.duration_ms >= 250
    assert record.fault == "latency 250 ms"


def test_a_hang_waits_before_answering_normally(client, rg, example_lead):
    put_faults(client, hang_seconds=0.3)
    elapsed, status = timed_create(rg, example_lead)
    assert (status, SandboxLead.objects.count()) == (201, 1)
    assert elapsed >= 0.3


def test_an_error_share_of_one_fails_every_request_with_500_or_503_and_stores_nothing(client, rg, example_lead):
    put_faults(client, error_rate=1.0)
    statuses = {rg.create(example_lead).status_code for _ in range(30)}
    assert statuses == {500, 503}
    assert not SandboxLead.objects.exists()
    response = rg.create(example_lead)
    assert response.json()["error"] in ("Internal Server Error", "Service Unavailable")


def test_an_error_share_fails_about_that_share_of_requests(client, rg, example_lead):
    put_faults(client, error_rate=0.3)
    statuses = [
        rg.create({**example_lead, "id": "6b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"}).status_code for _ in range(300)
    ]
    failed = sum(status >= 500 for status in statuses)
    # Binomial(300, 0.3): mean 90, sd 7.9; these bounds are more than 5 sd out.
    assert 50 <= failed <= 130
    assert SandboxLead.objects.count() == 1
    assert set(statuses) == {201, 500, 503}


def test_an_outage_answers_503_to_everything_even_bad_credentials(client, rg, example_lead):
    put_faults(client, outage=True)
    assert rg.create(example_lead).status_code == 503
    assert rg.users().status_code == 503
    assert RealGeeks(client, "").create(example_lead).status_code == 503
    assert not SandboxLead.objects.exists()


def test_html_errors_replace_json_error_bodies(client, rg, example_lead):
    put_faults(client, outage=True, html_errors=True)
    response = rg.create(example_lead)
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    assert b"<h1>503 Service Unavailable</h1>" in response.content
    with pytest.raises(ValueError):
        json.loads(response.content)


def test_html_errors_also_shape_ordinary_errors_but_not_successes(client, rg, example_lead):
    put_faults(client, html_errors=True)
    assert RealGeeks(client, "").create(example_lead)["Content-Type"].startswith("text/html")
    assert rg.create({**example_lead, "role": "Landlord"})["Content-Type"].startswith("text/html")
    success = rg.create(example_lead)
    assert (success.status_code, success.json()) == (201, {})


def test_faults_can_apply_to_the_next_requests_only(client, rg, example_lead):
    put_faults(client, outage=True, remaining=2)
    statuses = [rg.create(example_lead).status_code for _ in range(4)]
    assert statuses == [503, 503, 201, 201]
    assert faults.faults_current().remaining == 0


def test_the_control_endpoint_reads_changes_and_clears_the_faults(client):
    assert client.get("/sandbox/control/faults").json() == {
        "latency_ms": 0,
        "error_rate": 0.0,
        "outage": False,
        "hang_seconds": 0.0,
        "html_errors": False,
        "remaining": None,
    }
    put_faults(client, latency_ms=100, error_rate=0.5)
    changed = put_faults(client, outage=True)
    assert (changed["latency_ms"], changed["error_rate"], changed["outage"]) == (100, 0.5, True)
    cleared = client.delete("/sandbox/control/faults").json()
    assert cleared == client.get("/sandbox/control/faults").json()
    assert not SandboxFaults.objects.get().is_active()


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"error_rate": 1.5}', "error_rate"),
        (b'{"latency_ms": -1}', "latency_ms"),
        (b'{"hang_seconds": "soon"}', "hang_seconds"),
        (b'{"outage": "maybe"}', "outage"),
        (b'{"outage": null}', "outage"),
        (b'{"remaining": -3}', "remaining"),
        (b'{"colour": "red"}', "Unknown fault setting: colour"),
        (b"[1]", "JSON object"),
        (b"{nope", "not valid JSON"),
    ],
)
def test_the_control_endpoint_refuses_bad_settings_and_keeps_the_old_ones(client, body, problem):
    put_faults(client, latency_ms=5)
    response = client.put("/sandbox/control/faults", body, content_type="application/json")
    assert response.status_code == 400
    assert problem in response.json()["error"]
    assert client.get("/sandbox/control/faults").json()["latency_ms"] == 5
    assert faults.faults_current().outage is False


def test_the_faults_page_shows_and_saves_the_settings(client):
    page = client.get("/sandbox/faults/")
    assert page.status_code == 200
    assert b'name="error_rate"' in page.content
    response = client.post(
        "/sandbox/faults/", {"latency_ms": "40", "error_rate": "0.25", "hang_seconds": "0", "html_errors": "on"}
    )
    assert response.status_code == 302
    saved = faults.faults_current()
    assert (saved.latency_ms, saved.error_rate, saved.outage, saved.html_errors, saved.remaining) == (
        40,
        0.25,
        False,
        True,
        None,
    )
    assert b"Faults saved." in client.get("/sandbox/faults/").content


def test_the_faults_page_keeps_what_was_typed_when_it_is_wrong(client):
    response = client.post("/sandbox/faults/", {"latency_ms": "40", "error_rate": "2", "hang_seconds": "0"})
    assert response.status_code == 200
    assert b'value="40"' in response.content
    assert b"less than or equal to 1" in response.content
    assert faults.faults_current().latency_ms == 0


def test_the_faults_page_clears_the_faults(client):
    faults.faults_update(changes={"outage": True, "latency_ms": 10})
    assert client.post("/sandbox/faults/", {"reset": "1"}).status_code == 302
    assert not faults.faults_current().is_active()


def test_only_a_signed_in_superuser_may_read_or_change_the_faults(django_user_model):
    anonymous = Client()
    assert (
        anonymous.put("/sandbox/control/faults", '{"outage": true}', content_type="application/json").status_code == 302
    )
    assert anonymous.delete("/sandbox/control/faults").status_code == 302
    assert anonymous.post("/sandbox/faults/", {"outage": "on"}).status_code == 302
    staff = Client()
    staff.force_login(django_user_model.objects.create_user("kim", password="kim-password-123", is_staff=True))
    assert staff.put("/sandbox/control/faults", '{"outage": true}', content_type="application/json").status_code == 403
    assert staff.get("/sandbox/control/faults").status_code == 403
    assert staff.get("/sandbox/faults/").status_code == 403
    assert not faults.faults_current().outage


def test_changing_the_faults_needs_the_csrf_token_like_any_form(django_user_model):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(django_user_model.objects.create_superuser("boss", password="boss-password-123"))
    forged = browser.put("/sandbox/control/faults", '{"outage": true}', content_type="application/json")
    assert forged.status_code == 403
    page_post = browser.post(
        "/sandbox/faults/", {"latency_ms": "0", "error_rate": "0", "hang_seconds": "0", "outage": "on"}
    )
    assert page_post.status_code == 403
    assert not faults.faults_current().outage

    token = str(browser.get("/sandbox/faults/").context["csrf_token"])
    response = browser.put(
        "/sandbox/control/faults", '{"outage": true}', content_type="application/json", headers={"X-CSRFToken": token}
    )
    assert response.status_code == 200
    assert faults.faults_current().outage


def test_the_incoming_api_stays_open_to_http_basic_without_a_session_or_csrf_token(sandbox_account, example_lead):
    # The worker delivers here as RG's clients do: Basic credentials, no cookie, no token.
    assert RealGeeks(Client(enforce_csrf_checks=True)).create(example_lead).status_code == 201
