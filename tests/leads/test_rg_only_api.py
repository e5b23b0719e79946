"""RG's user calls (update_user, delete_user): refused with RG's 403 after the API key is checked."""

import json

import pytest
from django.test import Client

from leads.api.rg_only import LEAD_MANAGER_ONLY
from leads.models import Delivery, Lead
from tests.leads.conftest import SITE_UUID, basic

pytestmark = pytest.mark.django_db

USER_PATH = f"/rest/sites/{SITE_UUID}/users/14187"
KAI = {"id": "14187", "role": "Agent", "admin": False, "name": "Kai Kahale", "email": "kai@example.com"}


def send(client: Client, method: str, path: str = USER_PATH, body: object = KAI):
    # As RG's Ruby client sends them: a JSON body on PUT, an empty one on DELETE.
    data = json.dumps(body) if method == "PUT" else ""
    return client.generic(method, path, data, content_type="application/json")


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
@pytest.mark.parametrize("path", [USER_PATH, USER_PATH + "/"])
def test_user_updates_and_deletions_get_rgs_403_and_store_nothing(push, site, rg, method, path):
    response = send(push, method, path)

    assert (response.status_code, response.json()) == (403, {"error": LEAD_MANAGER_ONLY})
    assert response["Content-Type"] == "application/json"
    assert Lead.objects.count() == Delivery.objects.count() == 0
    assert rg.calls == []  # nothing reaches RG


@pytest.mark.parametrize("body", [b"{not json", b"x" * 10])
def test_the_refusal_does_not_depend_on_the_body_or_the_site(push, body):
    response = push.generic("PUT", "/rest/sites/not-a-uuid/users/14187", body, content_type="application/json")

    assert (response.status_code, response.json()) == (403, {"error": LEAD_MANAGER_ONLY})


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_a_missing_or_wrong_key_gets_401_before_the_refusal(credentials, method):
    key_id, secret = credentials
    for client in (Client(), Client(HTTP_AUTHORIZATION=basic(key_id, secret + "x"))):
        response = send(client, method)

        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic")
        assert set(response.json()) == {"error"}


def test_other_methods_on_a_user_get_405_in_rgs_shape(push):
    response = send(push, "PATCH")

    assert response.status_code == 405
    assert set(response.json()) == {"error"}


def test_the_schema_describes_the_refused_user_calls(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()

    operations = schema["paths"]["/rest/sites/{site_uuid}/users/{user_id}/"]
    assert set(operations) >= {"put", "delete"}
    assert set(operations["delete"]["responses"]) == {"401", "403"}
