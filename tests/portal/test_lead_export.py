"""The leads list as CSV: the list's filters and partner scoping, defused formulas, and a
streamed response. Real Geeks is mocked at the HTTP edge."""

import csv
import io
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import responses
from django.conf import settings
from django.http import StreamingHttpResponse
from django.test import Client
from django.urls import reverse

from grants.models import Partner, Site
from grants.services import site_grant
from leads.models import Lead
from leads.services import lead_submit
from portal.views.export import HEADER, cell
from tests.leads.conftest import FakeRealGeeks

pytestmark = pytest.mark.django_db

SITE_UUID = uuid.UUID("6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b")
OTHER_SITE_UUID = uuid.UUID("9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b")


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
def send(partner: Partner, django_capture_on_commit_callbacks: Any, rg: FakeRealGeeks):
    site_grant(partner=partner, site_uuid=SITE_UUID, source=Site.Source.MANUAL, name="Aloha Homes")

    def submit(email: str, who: Partner = partner, site_uuid: uuid.UUID = SITE_UUID, **fields: Any) -> Lead:
        with django_capture_on_commit_callbacks(execute=True):
            data = {"source": "Zillow", "email": email, **fields}
            delivery = lead_submit(partner=who, site_uuid=site_uuid, operation="create_lead", data=data)
        return Lead.objects.get(pk=delivery.lead_id)

    return submit


def export(client: Client, query: str = "") -> tuple[StreamingHttpResponse, list[dict[str, str]]]:
    response = client.get(reverse("portal:lead_export") + (f"?{query}" if query else ""))
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert tuple(rows[0]) == HEADER
    return response, [dict(zip(HEADER, row, strict=True)) for row in rows[1:]]


def test_the_export_is_streamed_csv_with_one_row_per_lead_newest_first(acme_client, send, rg):
    rg.answer((422, '{"error": "Field \'email\' is not a valid email address."}'))
    failed = send("bad@example.com", first_name="Lani", phone="808-555-0110")
    send("good@example.com", first_name="Kai")

    response, rows = export(acme_client)

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="leads-')
    assert [row["email"] for row in rows] == ["good@example.com", "bad@example.com"]
    assert rows[1] == {
        "lead id": str(failed.lead_id),
        "partner": "Acme Leads",
        "site": "Aloha Homes",
        "status": "failed",
        "operation": "create_lead",
        "name": "Lani",
        "email": "bad@example.com",
        "phone": "808-555-0110",
        "source": "Zillow",
        "created": failed.created.isoformat(),
        "last status code": "422",
        "last error": "Real Geeks answered 422: Field 'email' is not a valid email address.",
    }


def test_the_export_applies_the_lists_filters(acme_client, send, rg):
    rg.answer((422, '{"error": "Field \'email\' is not a valid email address."}'))
    send("bad@example.com")
    send("good@example.com")
    send("kai.akana@example.com")

    assert [row["email"] for row in export(acme_client, "status=failed")[1]] == ["bad@example.com"]
    assert [row["email"] for row in export(acme_client, "http_status=201&q=akana")[1]] == ["kai.akana@example.com"]
    response = acme_client.get(reverse("portal:lead_export") + "?http_status=abc")
    assert response.status_code == 400


def test_staff_export_only_their_partners_leads(acme_client, superuser, partner, other_partner, send):
    site_grant(partner=other_partner, site_uuid=OTHER_SITE_UUID, source=Site.Source.MANUAL)
    send("ours@example.com")
    send("theirs@example.com", who=other_partner, site_uuid=OTHER_SITE_UUID)

    assert [row["email"] for row in export(acme_client)[1]] == ["ours@example.com"]
    refused = acme_client.get(reverse("portal:lead_export") + f"?partner={other_partner.slug}")
    assert refused.status_code == 400 and b"theirs" not in refused.content  # not one of kim's choices
    root = Client()
    root.force_login(superuser)
    assert [row["email"] for row in export(root)[1]] == ["theirs@example.com", "ours@example.com"]


def test_cells_that_a_spreadsheet_would_run_as_formulas_get_a_leading_apostrophe(acme_client, send):
    send("x@example.com", first_name='=HYPERLINK("http://evil","x")', phone="+1 808 555 0110")
    send("y@example.com", first_name="@SUM(A1)", last_name="-2+3")

    rows = {row["email"]: row for row in export(acme_client)[1]}
    assert rows["x@example.com"]["name"] == '\'=HYPERLINK("http://evil","x")'
    assert rows["x@example.com"]["phone"] == "'+1 808 555 0110"
    assert rows["y@example.com"]["name"].startswith("'@SUM(A1)")
    assert [cell(v) for v in ("=1", "+1", "-1", "@1", "\t1", "a=1", "", None, 422)] == [
        "'=1",
        "'+1",
        "'-1",
        "'@1",
        "'\t1",
        "a=1",
        "",
        "",
        "422",
    ]


def test_the_leads_list_links_to_the_export_with_its_filters(acme_client, send):
    page = acme_client.get(reverse("portal:lead_list") + "?status=failed&q=kai").content.decode()
    assert f'href="{reverse("portal:lead_export")}?status=failed&amp;q=kai"' in page
