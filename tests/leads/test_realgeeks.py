import base64
import json
import re
import uuid
from typing import Any

import pytest
import requests
import responses
from django.test import Client

from grants.models import Partner, Site
from leads import realgeeks
from leads.models import Delivery
from leads.rg_operations import OPERATIONS
from leads.services import lead_submit
from tests.leads.conftest import SITE_UUID, basic

BASE = "https://receivers.leadrouter.realgeeks.com/rest"
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


# REALGEEKS_API.md section 1, as written there.
RG_CALLS = [
    ("create_lead", "POST", f"/rest/sites/{SITE}/leads"),
    ("update_lead", "PATCH", f"/rest/sites/{SITE}/leads/{LEAD}"),
    ("add_activities", "POST", f"/rest/sites/{SITE}/leads/{LEAD}/activities"),
    ("potential_seller", "POST", f"/rest/sites/{SITE}/potential-seller-leads"),
    ("update_lead_v2", "PATCH", f"/v2/rest/sites/{SITE}/leads/{LEAD}/"),
    ("list_users", "GET", f"/rest/sites/{SITE}/users"),
]


@pytest.mark.parametrize(("operation", "method", "path"), RG_CALLS)
def test_each_operation_has_rgs_method_and_path(operation, method, path):
    ep = realgeeks.endpoint(operation, base_url=BASE + "/", site_uuid=SITE, lead_id=LEAD)
    assert (ep.method, ep.url) == (method, "https://receivers.leadrouter.realgeeks.com" + path)


def test_every_operation_and_the_user_list_are_checked_against_rgs_paths():
    assert [operation for operation, _, _ in RG_CALLS] == [*OPERATIONS, realgeeks.LIST_USERS]


@pytest.mark.parametrize("operation", ["delete_lead", "", "CREATE_LEAD"])
def test_an_unknown_operation_has_no_endpoint(operation):
    with pytest.raises(ValueError, match="Unknown Real Geeks operation"):
        realgeeks.endpoint(operation, base_url=BASE, site_uuid=SITE, lead_id=LEAD)


@pytest.mark.parametrize(("operation", "method", "path"), RG_CALLS[:-1])
@responses.activate
def test_call_sends_a_stored_payload_to_its_operations_path(operation, method, path):
    url = "https://receivers.leadrouter.realgeeks.com" + path
    success = 201 if operation in ("create_lead", "potential_seller") else 200
    responses.add(method, url, status=success, body="{}")

    reply = realgeeks.call(operation, CREDS, site_uuid=SITE, lead_id=LEAD, payload={"notes": "x"})

    assert reply.status == success
    sent = responses.calls[0].request
    assert (sent.method, sent.url, json.loads(sent.body or b"")) == (method, url, {"notes": "x"})


@pytest.mark.parametrize("operation", ["list_users", "delete_lead"])
@responses.activate
def test_call_refuses_what_is_not_a_delivery_without_sending(operation):
    with pytest.raises(ValueError, match="Unknown Real Geeks operation"):
        realgeeks.call(operation, CREDS, site_uuid=SITE, lead_id=LEAD, payload={})
    assert len(responses.calls) == 0


@pytest.mark.django_db
def test_a_partners_credentials_are_its_rg_url_username_and_decrypted_password(partner):
    creds = realgeeks.Credentials.for_partner(Partner.objects.get(pk=partner.pk))

    assert creds == realgeeks.Credentials(partner.api_url(), "acme", "rg-password-acme")
    assert "rg-password-acme" not in repr(creds)


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


# A partner's RG API URL decides who receives its RG password (HTTP Basic): only hosts in
# REALGEEKS_ALLOWED_HOSTS are sent it, however the URL got stored.
NOT_ALLOWED = [
    "http://169.254.169.254/latest",
    "https://rg.example.test/rest",
    "https://receivers.leadrouter.realgeeks.com@evil.example/rest",
    "http://receivers.leadrouter.realgeeks.com/rest",
    "https://receivers.leadrouter.realgeeks.com:8443/rest",
    "https://receivers.leadrouter.realgeeks.com.evil.example/rest",
]


@pytest.mark.parametrize("base_url", NOT_ALLOWED)
def test_credentials_are_never_sent_to_a_url_outside_the_allowed_hosts(base_url):
    creds = realgeeks.Credentials(base_url, "acme", "rg-password-acme")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for method in ("GET", "POST", "PATCH"):
            mock.add(method, re.compile(r".*"), body="{}")

        with pytest.raises(realgeeks.RealGeeksError) as caught:
            realgeeks.create_lead(creds, SITE, {"source": "x"})
        with pytest.raises(realgeeks.RealGeeksError):
            realgeeks.list_users(creds, SITE)

        assert len(mock.calls) == 0
    assert (caught.value.permanent, caught.value.status) == (True, None)
    assert caught.value.message.startswith("Not sent: the partner's RG credentials go only to")


def test_the_asyncio_sender_refuses_too_without_connecting():
    # Nothing listens on 0.0.0.0:9; without the check the sender would try and fail transiently.
    creds = realgeeks.Credentials("http://0.0.0.0:9/rest", "acme", "rg-password-acme")
    call = realgeeks.Call(creds, realgeeks.endpoint("create_lead", base_url=creds.base_url, site_uuid=SITE), b"{}")
    sender = realgeeks.AsyncioSender(2)
    try:
        outcome = sender.submit(call).result(timeout=30)
    finally:
        sender.close()

    assert outcome.error is not None and outcome.error.permanent
    assert outcome.error.message.startswith("Not sent:")


@pytest.mark.django_db
def test_a_stored_url_no_longer_allowed_fails_the_delivery_without_sending(
    partner, site: Site, credentials, django_capture_on_commit_callbacks
):
    # Set before the allowlist existed (or straight in the database): the worker must still refuse.
    Partner.objects.filter(pk=partner.pk).update(rg_api_url="https://internal.example/rest")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add("POST", re.compile(r".*"), status=201, body='{"internal": "secret answer"}')
        with django_capture_on_commit_callbacks(execute=True):
            delivery = lead_submit(
                partner=partner, site_uuid=SITE_UUID, operation="create_lead", data={"source": "x", "email": "k@x.io"}
            )
        assert len(mock.calls) == 0

    delivery = Delivery.objects.get(pk=delivery.pk)
    attempt = delivery.attempts.get()
    assert delivery.status == Delivery.Status.FAILED
    assert delivery.last_error.startswith("Not sent: the partner's RG credentials go only to")
    assert (attempt.outcome, attempt.response_status, attempt.response_body) == ("failed", None, "")
    site.refresh_from_db()
    assert site.circuit_failures == 0  # a call never made says nothing about RG's site
    shown = Client(HTTP_AUTHORIZATION=basic(*credentials)).get(f"/api/leads/{delivery.lead.lead_id}/")
    assert "secret answer" not in shown.content.decode()
