"""The sandbox over real HTTP (pytest-django's threaded live server and `requests`), as the portal meets it."""

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from django.conf import settings
from django.test import Client

from sandbox.models import SandboxLead, SandboxRequest
from sandbox.services import sandbox_account_ensure
from tests.sandbox.conftest import OTHER_SITE, PASSWORD, SITE, USERNAME

LEAD_ID = "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"
TIMEOUT = 10.0


def signed_in_session(base_url: str, user: Any) -> requests.Session:
    """A script's session as `user`: the session cookie, and the CSRF token sent back in
    X-CSRFToken, as Django asks of anything that changes state with a session."""
    client = Client()
    client.force_login(user)
    session = requests.Session()
    session.cookies.set(settings.SESSION_COOKIE_NAME, client.cookies[settings.SESSION_COOKIE_NAME].value)
    session.get(f"{base_url}/sandbox/faults/", timeout=TIMEOUT).raise_for_status()  # sets the CSRF cookie
    session.headers["X-CSRFToken"] = session.cookies["csrftoken"]
    return session


@pytest.fixture
def api(live_server, transactional_db, django_user_model) -> Iterator[Callable[..., requests.Response]]:
    sandbox_account_ensure(username=USERNAME, password=PASSWORD, site_uuids=[SITE])
    rg = requests.Session()
    rg.auth = (USERNAME, PASSWORD)
    root = django_user_model.objects.create_superuser("root", password="root-password-123")
    staff = signed_in_session(live_server.url, root)

    def call(method: str, path: str, timeout: float = TIMEOUT, **kwargs: Any) -> requests.Response:
        # RG's API takes HTTP Basic; the log, the leads and the faults are a superuser's pages.
        session = rg if path.startswith(("rest/", "v2/")) else staff
        return session.request(method, f"{live_server.url}/sandbox/{path}", timeout=timeout, **kwargs)

    yield call
    rg.close()
    staff.close()


def wait_until(condition: Callable[[], Any], *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_rg_own_example_lead_gets_201_and_an_empty_json_object(api, example_lead):
    response = api("POST", f"rest/sites/{SITE}/leads", json={**example_lead, "id": LEAD_ID})
    assert (response.status_code, response.headers["Content-Type"], response.content) == (
        201,
        "application/json",
        b"{}",
    )
    assert SandboxLead.objects.get(lead_id=uuid.UUID(LEAD_ID)).data["last_name"] == "Johnson"


def test_a_half_bath_gets_422_with_rg_message(api, example_lead):
    example_lead["activities"][1]["property"]["full_baths"] = 2.5
    response = api("POST", f"rest/sites/{SITE}/leads", json=example_lead)
    assert (response.status_code, response.json()) == (
        422,
        {"error": "Property field 'full_baths' is not a valid integer."},
    )


def test_a_body_that_is_not_json_gets_400(api):
    response = api(
        "POST", f"rest/sites/{SITE}/leads", data=b"source=My+Website", headers={"Content-Type": "text/plain"}
    )
    assert (response.status_code, response.json()) == (400, {"error": "Request body is not valid JSON."})


def test_wrong_credentials_or_a_site_not_granted_get_401(api, live_server, example_lead):
    wrong = requests.post(
        f"{live_server.url}/sandbox/rest/sites/{SITE}/leads",
        json=example_lead,
        auth=(USERNAME, "guess"),
        timeout=TIMEOUT,
    )
    assert (wrong.status_code, wrong.json()) == (401, {"error": "Invalid credentials."})
    other_site = api("POST", f"rest/sites/{OTHER_SITE}/leads", json=example_lead)
    assert (other_site.status_code, other_site.json()) == (
        401,
        {"error": "These credentials may not send to this site."},
    )


def test_a_potential_seller_lead_without_a_viewed_property_gets_422(api):
    response = api(
        "POST", f"rest/sites/{SITE}/potential-seller-leads", json={"id": LEAD_ID, "activities": [{"type": "visited"}]}
    )
    assert response.status_code == 422
    assert "property_viewed" in response.json()["error"]


def test_update_activities_v2_and_users_work_end_to_end(api, example_lead):
    api("POST", f"rest/sites/{SITE}/leads", json={**example_lead, "id": LEAD_ID})
    assert api("PATCH", f"rest/sites/{SITE}/leads/{LEAD_ID}", json={"city": "Hilo"}).status_code == 200
    assert api("POST", f"rest/sites/{SITE}/leads/{LEAD_ID}/activities", json=[{"type": "note"}]).status_code == 200
    assert api("PATCH", f"v2/rest/sites/{SITE}/leads/{LEAD_ID}/", json={"phone": ""}).status_code == 200
    assert api("PATCH", f"rest/sites/{SITE}/leads/{uuid.uuid4()}", json={"city": "Hilo"}).json() == {
        "error": "Lead not found"
    }
    assert [u["id"] for u in api("GET", f"rest/sites/{SITE}/users").json()] == ["14187", "14188"]
    lead = api("GET", f"leads.json?site={SITE}").json()[0]
    assert (lead["data"]["city"], "phone" in lead["data"]) == ("Hilo", False)
    assert [a["type"] for a in lead["activities"]] == ["contact_emailed", "property_viewed", "note"]


def test_latency_set_over_http_is_measurable(api, example_lead):
    assert api("PUT", "control/faults", json={"latency_ms": 300}).status_code == 200
    started = time.monotonic()
    response = api("POST", f"rest/sites/{SITE}/leads", json=example_lead)
    elapsed = time.monotonic() - started
    assert response.status_code == 201
    assert elapsed >= 0.3


def test_an_outage_with_html_errors_answers_an_html_503_page(api, example_lead):
    api("PUT", "control/faults", json={"outage": True, "html_errors": True})
    response = api("POST", f"rest/sites/{SITE}/leads", json=example_lead)
    assert response.status_code == 503
    assert response.headers["Content-Type"].startswith("text/html")
    with pytest.raises(requests.JSONDecodeError):
        response.json()
    api("DELETE", "control/faults")
    assert api("POST", f"rest/sites/{SITE}/leads", json=example_lead).status_code == 201


def test_a_hang_outlasts_the_client_timeout_and_the_lead_still_lands(api, example_lead):
    api("PUT", "control/faults", json={"hang_seconds": 1.0, "remaining": 1})
    with pytest.raises(requests.ReadTimeout):
        api("POST", f"rest/sites/{SITE}/leads", json={**example_lead, "id": LEAD_ID}, timeout=0.3)
    # As with RG, a slow success looks like a failure to an impatient client: the lead is there.
    logged = wait_until(
        lambda: api("GET", f"requests.json?lead_id={LEAD_ID}").json(),
        timeout=TIMEOUT,
        what="the hung request to finish",
    )
    assert (logged[0]["status"], logged[0]["fault"]) == (201, "hang 1 s")
    assert logged[0]["duration_ms"] >= 1000
    assert SandboxLead.objects.filter(lead_id=uuid.UUID(LEAD_ID)).exists()


def test_the_request_log_over_http_shows_requests_but_never_the_password(api, live_server, example_lead):
    api("POST", f"rest/sites/{SITE}/leads", json=example_lead)
    text = api("GET", "requests.json").text + api("GET", "requests/").text
    assert f"/sandbox/rest/sites/{SITE}/leads" in text
    assert USERNAME in text
    assert PASSWORD not in text
    assert SandboxRequest.objects.get().username == USERNAME
