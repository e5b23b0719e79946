import base64
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from sandbox.models import SandboxAccount
from sandbox.services import sandbox_account_ensure

SITE = uuid.UUID("8f14e45f-ceea-4e67-a2b1-0d5c3b9a7e21")
OTHER_SITE = uuid.UUID("c9f0f895-fb98-4b91-9f2e-6a1d3e7c5b40")
USERNAME = "acme-sandbox"
PASSWORD = "s3cret-Sandbox-pw"
FIXTURES = Path(__file__).parent / "fixtures"


def basic(username: str = USERNAME, password: str = PASSWORD) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


class RealGeeks:
    """The sandbox's Incoming API over the Django test client, as a partner product calls RG."""

    def __init__(self, client: Client, authorization: str | None = None) -> None:
        self.client = client
        self.authorization = basic() if authorization is None else authorization

    def send(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None) -> Any:
        headers = {"Authorization": self.authorization} if self.authorization else {}
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        return self.client.generic(method, path, data, content_type="application/json", headers=headers)

    def create(self, lead: Any, site: uuid.UUID = SITE, **kw: Any) -> Any:
        return self.send("POST", f"/sandbox/rest/sites/{site}/leads", lead, **kw)

    def update(self, lead_id: str, changes: Any, site: uuid.UUID = SITE, **kw: Any) -> Any:
        return self.send("PATCH", f"/sandbox/rest/sites/{site}/leads/{lead_id}", changes, **kw)

    def update_v2(self, lead_id: str, changes: Any, site: uuid.UUID = SITE) -> Any:
        return self.send("PATCH", f"/sandbox/v2/rest/sites/{site}/leads/{lead_id}/", changes)

    def add_activities(self, lead_id: str, activities: Any, site: uuid.UUID = SITE, **kw: Any) -> Any:
        return self.send("POST", f"/sandbox/rest/sites/{site}/leads/{lead_id}/activities", activities, **kw)

    def potential_seller(self, lead: Any, site: uuid.UUID = SITE) -> Any:
        return self.send("POST", f"/sandbox/rest/sites/{site}/potential-seller-leads", lead)

    def users(self, site: uuid.UUID = SITE) -> Any:
        return self.send("GET", f"/sandbox/rest/sites/{site}/users")


@pytest.fixture
def sandbox_account(db) -> SandboxAccount:
    return sandbox_account_ensure(username=USERNAME, password=PASSWORD, site_uuids=[SITE])


@pytest.fixture
def rg(client: Client, sandbox_account: SandboxAccount) -> RealGeeks:
    return RealGeeks(client)


@pytest.fixture
def example_lead() -> dict[str, Any]:
    """RG's own create-lead example from REALGEEKS_API.md, verbatim."""
    return json.loads((FIXTURES / "realgeeks_example_lead.json").read_text())


@pytest.fixture
def root_client(client: Client, django_user_model: Any) -> Client:
    """The test client signed in as a superuser: the request log, leads and faults are staff pages."""
    client.force_login(django_user_model.objects.create_superuser("root", password="root-password-123"))
    return client
