import base64
import json
import uuid
from typing import Any

import pytest
import requests
import responses

from leads import realgeeks

BASE = "https://rg.example.test/rest"
CREDS = realgeeks.Credentials(BASE, "acme", "rg-password-acme")
SITE = uuid.UUID("6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b")
LEAD = uuid.UUID("2b6c1f4e-8d3a-4c5b-9e7f-0a1b2c3d4e5f")


@responses.activate
def test_it_posts_a_lead_as_json_with_basic_auth_a_user_agent_and_both_timeouts(settings):
    settings.REALGEEKS_CONNECT_TIMEOUT, settings.REALGEEKS_READ_TIMEOUT = 4.0, 19.0
    responses.post(f"{BASE}/sites/{SITE}/leads", status=201, body="{}")

    reply = realgeeks.create_lead(CREDS, SITE, {"source": "Zillow", "email": "jack@gmail.com"})

    assert reply.status == 201
    sent = responses.calls[0].request
    assert json.loads(sent.body or b"") == {"source": "Zillow", "email": "jack@gmail.com"}
    assert sent.headers["Authorization"] == "Basic " + base64.b64encode(b"acme:rg-password-acme").decode()
    assert sent.headers["User-Agent"].startswith("partner-portal/")
    assert sent.headers["Content-Type"].startswith("application/json")
    kwargs: Any = sent.req_kwargs  # type: ignore[attr-defined]  # responses records the call's kwargs
    assert kwargs["timeout"] == (4.0, 19.0)


@pytest.mark.parametrize(
    ("operation", "method", "path"),
    [
        ("create_lead", "POST", f"/rest/sites/{SITE}/leads"),
        ("update_lead", "PATCH", f"/rest/sites/{SITE}/leads/{LEAD}"),
        ("add_activities", "POST", f"/rest/sites/{SITE}/leads/{LEAD}/activities"),
        ("potential_seller", "POST", f"/rest/sites/{SITE}/potential-seller-leads"),
        ("update_lead_v2", "PATCH", f"/v2/rest/sites/{SITE}/leads/{LEAD}/"),
        ("list_users", "GET", f"/rest/sites/{SITE}/users"),
    ],
)
def test_each_operation_has_rgs_method_and_path(operation, method, path):
    ep = realgeeks.endpoint(operation, base_url=BASE + "/", site_uuid=SITE, lead_id=LEAD)
    assert (ep.method, ep.url) == (method, "https://rg.example.test" + path)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
@responses.activate
def test_client_errors_are_permanent_and_carry_rgs_message(status):
    body = json.dumps({"error": "Property field 'full_baths' is not a valid integer."})
    responses.patch(f"{BASE}/sites/{SITE}/leads/{LEAD}", status=status, body=body)

    with pytest.raises(realgeeks.RealGeeksError) as caught:
        realgeeks.update_lead(CREDS, SITE, LEAD, {"notes": "x"})

    error = caught.value
    assert (error.permanent, error.status, error.body) == (True, status, body)
    assert error.message == f"Real Geeks answered {status}: Property field 'full_baths' is not a valid integer."


@responses.activate
def test_an_html_503_page_is_transient_and_summarised_by_its_title():
    page = "<html><head><title>503 Service Unavailable</title></head><body><h1>Down</h1></body></html>"
    responses.post(f"{BASE}/sites/{SITE}/leads", status=503, body=page, content_type="text/html")

    with pytest.raises(realgeeks.RealGeeksError) as caught:
        realgeeks.create_lead(CREDS, SITE, {"source": "x"})

    assert caught.value.permanent is False
    assert caught.value.message == "Real Geeks answered 503: 503 Service Unavailable"
    assert caught.value.body == page


@responses.activate
def test_429_is_transient_and_honours_retry_after_in_seconds_or_as_a_date():
    responses.post(f"{BASE}/sites/{SITE}/leads", status=429, body="{}", headers={"Retry-After": "120"})
    responses.post(
        f"{BASE}/sites/{SITE}/leads", status=429, body="{}", headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}
    )

    errors = []
    for _ in range(2):
        with pytest.raises(realgeeks.RealGeeksError) as caught:
            realgeeks.create_lead(CREDS, SITE, {"source": "x"})
        errors.append(caught.value)

    assert (errors[0].permanent, errors[0].retry_after) == (False, 120.0)
    assert errors[1].retry_after == 0.0  # a date in the past means "now"


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        (requests.ReadTimeout(), "Real Geeks did not answer within 20 s"),
        (requests.ConnectTimeout(), "Could not connect to Real Geeks within 5 s"),
        (requests.ConnectionError(), "Could not reach Real Geeks (ConnectionError)"),
    ],
)
@responses.activate
def test_timeouts_and_connection_failures_are_transient(settings, failure, message):
    settings.REALGEEKS_CONNECT_TIMEOUT, settings.REALGEEKS_READ_TIMEOUT = 5.0, 20.0
    responses.post(f"{BASE}/sites/{SITE}/leads", body=failure)

    with pytest.raises(realgeeks.RealGeeksError) as caught:
        realgeeks.create_lead(CREDS, SITE, {"source": "x"})

    assert (caught.value.permanent, caught.value.status, caught.value.message) == (False, None, message)


@responses.activate
def test_list_users_returns_rgs_list_and_refuses_a_body_that_is_not_one():
    users = [{"id": "14187", "role": "Agent", "name": "Kai", "email": "kai@example.com"}]
    responses.get(f"{BASE}/sites/{SITE}/users", json=users)
    responses.get(f"{BASE}/sites/{SITE}/users", body="<html>oops</html>")

    assert realgeeks.list_users(CREDS, SITE) == users
    with pytest.raises(realgeeks.RealGeeksError):
        realgeeks.list_users(CREDS, SITE)


@responses.activate
def test_the_password_appears_in_no_error_or_repr():
    responses.post(f"{BASE}/sites/{SITE}/leads", status=401, body='{"error": "bad credentials"}')

    with pytest.raises(realgeeks.RealGeeksError) as caught:
        realgeeks.create_lead(CREDS, SITE, {"source": "x"})

    assert "rg-password-acme" not in repr(CREDS)
    assert "rg-password-acme" not in str(caught.value)
    assert caught.value.permanent and caught.value.status == 401
