"""The engineer's view of an attempt: portal.attempts (headers, diff, the field RG names) and
the delivery page that shows it, with Real Geeks mocked at the HTTP edge."""

import json
import re
import shlex
import uuid
from collections.abc import Iterator
from html import unescape
from typing import Any

import pytest
import responses
from django.conf import settings
from django.urls import reverse

from grants.models import Partner, Site
from grants.services import site_grant
from leads import realgeeks
from leads.delivery import delivery_retry
from leads.models import Delivery, Lead
from leads.services import lead_submit
from portal.attempts import Line, body_diff, body_lines, named_field, request_headers
from tests.leads.conftest import FakeRealGeeks

SITE_UUID = uuid.UUID("6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b")
SECRETS = ["rg-password-acme", "whsec-acme"]


def test_the_rebuilt_request_headers_redact_the_credentials_and_forward_router_destinations():
    headers = dict(request_headers(has_body=True, router_destinations="dest-1,dest-2"))
    assert headers == {
        "Accept": "application/json",
        "User-Agent": realgeeks.USER_AGENT,
        "Content-Type": realgeeks.JSON_CONTENT_TYPE,
        "X-ROUTER-DESTINATIONS": "dest-1,dest-2",
        "Authorization": "Basic [redacted]",
    }
    assert "X-ROUTER-DESTINATIONS" not in dict(request_headers(has_body=False, router_destinations=""))
    assert "Content-Type" not in dict(request_headers(has_body=False, router_destinations=""))


def test_the_diff_shows_changed_keys_and_ignores_key_order():
    before = '{"source": "Zillow", "email": "kai@example", "phone": "808"}'
    after = '{"phone": "808", "email": "kai@example.com", "source": "Zillow"}'
    diff = body_diff(before, after)
    assert Line("del", '-  "email": "kai@example",') in diff
    assert Line("add", '+  "email": "kai@example.com",') in diff
    assert diff[0].kind == "hunk"
    assert body_diff(before, '{"phone": "808", "source": "Zillow", "email": "kai@example"}') == []


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ("Property field 'full_baths' is not a valid integer.", "full_baths"),
        ("Field 'email' is not a valid email address.", "email"),
        ("email is invalid", "email"),
        ("'source' is required", "source"),
        ("Potential seller lead needs a 'property_viewed' activity with a property.", None),  # a value, not a key
        ("Lead must be a JSON object.", None),
        ("'phone2' is not valid", None),  # not in the body
    ],
)
def test_the_field_rg_names_is_found_when_the_body_has_that_key(message, field):
    body = (
        '{"source": "Web", "email": "x", "activities": [{"type": "property_viewed", "property": {"full_baths": 2.5}}]}'
    )
    assert named_field(json.dumps({"error": message}), body) == field


def test_the_named_fields_lines_are_marked_and_no_other():
    lines = body_lines('{"email": "x", "second_email": "y", "notes": "email"}', "email")
    assert [line.text.strip() for line in lines if line.kind == "offending"] == ['"email": "x",']


def test_a_non_json_answer_names_no_field():
    assert named_field("<html><title>503 Service Unavailable</title></html>", '{"email": "x"}') is None


# The delivery page.


@pytest.fixture(autouse=True)
def inline_tasks(settings: Any) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True


@pytest.fixture
def rg() -> Iterator[FakeRealGeeks]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = FakeRealGeeks(mock)
        base = re.escape(settings.REALGEEKS_API_URL.rsplit("/rest", 1)[0])
        for method in ("GET", "POST", "PATCH"):
            mock.add_callback(method, re.compile(base + r"/.*"), callback=fake.handle)
        yield fake


@pytest.fixture
def site(partner: Partner) -> Site:
    return site_grant(partner=partner, site_uuid=SITE_UUID, source=Site.Source.MANUAL, name="Aloha Homes")


def push(partner: Partner, capture: Any, data: dict[str, Any], **kwargs: Any) -> Delivery:
    with capture(execute=True):
        delivery = lead_submit(partner=partner, site_uuid=SITE_UUID, operation="create_lead", data=data, **kwargs)
    delivery.refresh_from_db()
    return delivery


def delivery_page(client: Any, delivery: Delivery, query: str = "") -> str:
    lead = delivery.lead
    url = reverse("portal:delivery_detail", args=[lead.partner.slug, lead.lead_id, delivery.public_id])
    response = client.get(url + query)
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.django_db
def test_a_refused_attempt_shows_redacted_headers_a_safe_curl_and_the_field_rg_names(
    acme_client, partner, site, rg, django_capture_on_commit_callbacks
):
    rg.answer((422, '{"error": "Field \'email\' is not a valid email address."}'))
    data = {"source": "Zillow", "email": "kai@example.com", "notes": 'It\'s "big"'}
    delivery = push(partner, django_capture_on_commit_callbacks, data, router_destinations="dest-1")
    assert delivery.status == "failed"

    page = delivery_page(acme_client, delivery)
    text = unescape(page)

    assert "Basic [redacted]" in text and "X-ROUTER-DESTINATIONS" in text
    assert "Rebuilt from what the portal sends" in text
    assert not any(secret in text for secret in SECRETS)
    marked = re.findall(r'<mark class="line offending">(.*?)</mark>', page)
    assert [unescape(line).strip() for line in marked] == ['"email": "kai@example.com",']
    attempt = delivery.attempts.get()
    shown = re.search(rf'<pre class="curl" id="curl-{attempt.public_id}">(.*?)</pre>', page, re.S)
    assert shown is not None
    curl = unescape(shown[1])
    argv = shlex.split(curl.replace(" \\\n", " "))
    assert argv[argv.index("-u") + 1] == "$RG_USERNAME:$RG_PASSWORD"
    assert argv[argv.index("--request") + 1] == "POST" and attempt.request_url in argv
    sent = argv[argv.index("--data-binary") + 1]
    assert sent == attempt.request_body  # exactly what was sent
    assert 'data-copy-target="curl-' in page and "portal/copy.js" in page and "portal/attempts.css" in page
    assert "style=" not in page and "<style" not in page


@pytest.mark.django_db
def test_a_delivery_compares_its_body_with_another_delivery_of_the_lead(
    acme_client, partner, site, rg, django_capture_on_commit_callbacks
):
    rg.answer((422, '{"error": "Field \'email\' is not a valid email address."}'))
    first = push(partner, django_capture_on_commit_callbacks, {"source": "Zillow", "email": "kai@example.com"})
    lead = Lead.objects.get(pk=first.lead_id)
    data = {"id": str(lead.lead_id), "source": "Zillow", "email": "kai.akana@example.com"}
    second = push(partner, django_capture_on_commit_callbacks, data)
    assert second.lead_id == lead.pk and second.sequence == 2

    offered = unescape(delivery_page(acme_client, second))
    page = unescape(delivery_page(acme_client, second, "?compare=1"))
    missing = unescape(delivery_page(acme_client, second, "?compare=7"))

    assert 'name="compare" type="number" min="1" max="2" value="1"' in offered and "Changes from" not in offered
    assert "Changes from delivery #1 (Create lead) to #2" in page
    assert '<li class="del"><code>-  "email": "kai@example.com",</code></li>' in page
    assert '<li class="add"><code>+  "email": "kai.akana@example.com",</code></li>' in page
    assert "This lead has no delivery #7." in missing


@pytest.mark.django_db
def test_each_attempt_shows_what_changed_in_its_body_since_the_attempt_before(
    acme_client, partner, site, rg, django_capture_on_commit_callbacks
):
    rg.answer((503, "<html><title>503 Service Unavailable</title></html>"))
    delivery = push(partner, django_capture_on_commit_callbacks, {"source": "Zillow", "email": "kai@example.com"})
    Delivery.objects.filter(pk=delivery.pk).update(payload={**delivery.payload, "city": "Hilo"})
    with django_capture_on_commit_callbacks(execute=True):
        delivery_retry(delivery=delivery)
    assert delivery.attempts.count() == 2

    page = unescape(delivery_page(acme_client, delivery))

    assert "Changes from attempt #1" in page
    assert '<li class="add"><code>+  "city": "Hilo",</code></li>' in page
    assert page.count("<h4>Changes from") == 1  # attempt #1 has nothing before it


@pytest.mark.django_db
def test_the_engineers_view_costs_the_delivery_page_no_query(
    acme_client, partner, site, rg, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    # tests/portal/test_lead_pages.py allows the delivery page 6 queries.
    delivery = push(partner, django_capture_on_commit_callbacks, {"source": "Zillow", "email": "kai@example.com"})
    url = reverse("portal:delivery_detail", args=[partner.slug, delivery.lead.lead_id, delivery.public_id])
    with django_assert_max_num_queries(6):
        assert acme_client.get(url).status_code == 200
