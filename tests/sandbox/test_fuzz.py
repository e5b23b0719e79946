"""Whatever arrives, the sandbox answers like RG: a status RG uses and a JSON `{"error": ...}`, never a 500."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.sandbox.conftest import SITE, RealGeeks, basic

pytestmark = pytest.mark.django_db

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=25,
)
bodies = st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode())
segments = st.text(st.characters(exclude_characters="/?#%", exclude_categories=["Cs"]), min_size=1, max_size=40)
authorizations = st.sampled_from([basic(), "", "Basic", "Basic !!", basic("nobody", "x")]) | st.text(
    st.characters(min_codepoint=32, max_codepoint=126), max_size=40
)
operations = st.sampled_from(
    [
        ("POST", "rest/sites/{site}/leads"),
        ("PATCH", "rest/sites/{site}/leads/{lead}"),
        ("POST", "rest/sites/{site}/leads/{lead}/activities"),
        ("POST", "rest/sites/{site}/potential-seller-leads"),
        ("GET", "rest/sites/{site}/users"),
        ("PATCH", "v2/rest/sites/{site}/leads/{lead}/"),
        ("DELETE", "rest/sites/{site}/leads/{lead}"),
    ]
)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    operation=operations,
    site=st.just(str(SITE)) | segments,
    lead=st.just("3f2b8c1e-9a4d-4e7b-8c6f-1d2e3f4a5b6c") | segments,
    body=bodies,
    authorization=authorizations,
)
def test_any_request_gets_an_rg_status_and_a_json_error(
    client, sandbox_account, operation, site, lead, body, authorization
):
    method, path = operation
    response = RealGeeks(client, authorization).send(method, "/sandbox/" + path.format(site=site, lead=lead), raw=body)
    assert response.status_code in (200, 201, 400, 401, 404, 405, 422)
    payload = response.json()
    if response.status_code >= 400:
        assert set(payload) == {"error"}
        assert payload["error"]
