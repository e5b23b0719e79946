"""Property-based fuzzing of the push API: whatever arrives (body, headers, path), the answer is
never a 500, errors are RG's `{"error": ...}`, and a refused request stores nothing at all."""

import base64
import json
import string

import pytest
from django.test import Client
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from grants.models import Site
from leads.models import Delivery, DeliveryAttempt, Lead
from tests.leads.conftest import SITE_UUID, basic

LEAD_ID = "2b6c1f4e-8d3a-4c5b-9e7f-0a1b2c3d4e5f"
FIELDS = ["id", "source", "email", "first_name", "phone", "role", "tags", "created", "activities", "notes"]
ACTIVITY_FIELDS = ["type", "created", "property", "user", "notify_users", "metadata", "description"]

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
activities = st.lists(
    st.dictionaries(st.sampled_from(ACTIVITY_FIELDS), json_values | st.sampled_from(["note", "property_viewed"])),
    max_size=3,
)
leads = st.dictionaries(
    st.sampled_from(FIELDS),
    json_values
    | st.sampled_from(["Zillow", "jack@gmail.com", "Buyer", LEAD_ID, "2015-04-01T08:41:51+00:00", "not-a-uuid"])
    | activities,
    max_size=6,
)
# Mostly-valid leads with a few fields changed, so accepted requests are common too.
VALID = {
    "POST /leads": {"source": "Zillow", "email": "jack@gmail.com"},
    "PATCH /leads/{l}": {"notes": "Call at 5"},
    "POST /leads/{l}/activities": [{"type": "note"}],
    "POST /potential-seller-leads": {"activities": [{"type": "property_viewed", "property": {"beds": 2}}]},
}
unknown_fields = st.dictionaries(st.text(min_size=1, max_size=8).filter(lambda k: k not in FIELDS), json_values)
near_valid = st.builds(
    lambda base, extra: {**base, **extra},
    st.sampled_from([VALID["POST /leads"], VALID["PATCH /leads/{l}"], VALID["POST /potential-seller-leads"]]),
    leads | unknown_fields,
) | st.builds(lambda extra: [{"type": "note", **extra}], st.dictionaries(st.sampled_from(ACTIVITY_FIELDS), json_values))
bodies = (
    (near_valid | leads | activities | json_values).map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=64)
    | st.text(max_size=64).map(lambda t: t.encode("utf-8", "surrogatepass"))
)
segments = st.sampled_from(
    [str(SITE_UUID), LEAD_ID, str(SITE_UUID).upper(), LEAD_ID.replace("-", ""), "", "x"]
) | st.text(alphabet=string.ascii_letters + string.digits + "-_.~éü", min_size=1, max_size=40)
PATHS = [
    ("POST", "/rest/sites/{s}/leads"),
    ("PATCH", "/rest/sites/{s}/leads/{l}"),
    ("POST", "/rest/sites/{s}/leads/{l}/activities"),
    ("POST", "/rest/sites/{s}/potential-seller-leads"),
    ("PATCH", "/v2/rest/sites/{s}/leads/{l}/"),
]
methods = st.sampled_from(["POST", "PATCH"]) | st.sampled_from(["PUT", "GET", "DELETE", "OPTIONS"])
fuzz = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))


def counts() -> tuple[int, int, int, int]:
    return Lead.objects.count(), Delivery.objects.count(), DeliveryAttempt.objects.count(), Site.objects.count()


def check(response, before: tuple[int, int, int, int]) -> None:
    event(f"status {response.status_code}")
    assert response.status_code < 500
    after = counts()
    if response.status_code >= 300:
        assert after == before, "a refused request stored something"
        if response.get("Content-Type", "").startswith("application/json"):
            assert set(response.json()) == {"error"}
    else:
        assert response.json() == {}
        # A repeat of a request already accepted (PUSH_IDEMPOTENCY_SECONDS) says so and stores nothing.
        repeated = response.get("Idempotent-Replayed") == "true"
        assert after[1] == before[1] + (0 if repeated else 1), "an accepted request stores exactly one delivery"
        assert after[0] - before[0] in ((0,) if repeated else (0, 1))


@pytest.mark.django_db
@fuzz
@given(route=st.sampled_from(PATHS), other_method=st.one_of(st.none(), st.none(), st.none(), methods), body=bodies)
def test_any_body_on_any_push_path_gets_an_rg_answer_and_never_a_partial_lead(push, site, route, other_method, body):
    method, template = route
    before = counts()
    response = push.generic(
        other_method or method, template.format(s=SITE_UUID, l=LEAD_ID), data=body, content_type="application/json"
    )
    check(response, before)


@pytest.mark.django_db
@fuzz
@given(route=st.sampled_from(PATHS), site_part=segments, lead_part=segments, body=bodies)
def test_any_path_segments_get_an_rg_answer(push, site, route, site_part, lead_part, body):
    method, template = route
    before = counts()
    response = push.generic(
        method, template.format(s=site_part, l=lead_part), data=body, content_type="application/json"
    )
    check(response, before)


def headers(key: str) -> st.SearchStrategy[dict[str, str]]:
    return st.fixed_dictionaries(
        {
            # The right key three times in four, so the other headers meet an accepting view.
            "HTTP_AUTHORIZATION": st.just(key)
            | st.just(key)
            | st.just(key)
            | st.text(max_size=40)
            | st.binary(max_size=30).map(lambda b: "Basic " + base64.b64encode(b).decode())
            | st.sampled_from(["Basic", "Basic ", "Bearer x", "basic Og==", key.lower(), key + "="]),
        },
        optional={
            "CONTENT_TYPE": st.text(max_size=30) | st.sampled_from(["text/html", "application/x-www-form-urlencoded"]),
            "CONTENT_LENGTH": st.sampled_from(["-1", "abc", "99999999999", "0"]),
            "HTTP_ACCEPT": st.text(max_size=20) | st.just("text/html"),
        },
    )


@pytest.mark.django_db
@fuzz
@given(data=st.data(), body=st.just(json.dumps(VALID["POST /leads"]).encode()) | bodies)
def test_any_headers_get_an_rg_answer(credentials, site, data, body):
    meta = data.draw(headers(basic(*credentials)))
    client = Client(raise_request_exception=True)
    before = counts()
    try:
        response = client.generic("POST", f"/rest/sites/{SITE_UUID}/leads", data=body, **meta)
    except UnicodeEncodeError:
        return  # a header no HTTP server could have received: WSGI headers are latin-1
    check(response, before)
