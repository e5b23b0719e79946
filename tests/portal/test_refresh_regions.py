"""Which pages refresh themselves (static/portal/refresh.js swaps their [data-refresh] region):
the lead page, the leads list's first page only, and a bulk job's page."""

import uuid

import pytest
from django.urls import reverse

from grants.models import Site
from grants.services import site_grant
from leads.models import BulkRetry
from leads.services import lead_submit

pytestmark = pytest.mark.django_db

SITE_UUID = uuid.UUID("8f14e45f-ceea-4e67-a2b1-0d5c3b9a7e21")
SCRIPT = "/static/portal/refresh.js"


@pytest.fixture
def lead(partner):
    site_grant(partner=partner, site_uuid=SITE_UUID, source=Site.Source.MANUAL, name="Aloha Homes")
    data = {"source": "Zillow", "email": "kai@example.com", "first_name": "Kai"}
    return lead_submit(partner=partner, site_uuid=SITE_UUID, operation="create_lead", data=data).lead


def test_the_lead_page_marks_its_region_and_loads_the_script(acme_client, lead):
    content = acme_client.get(reverse("portal:lead_detail", args=[lead.partner.slug, lead.lead_id])).content.decode()

    assert '<div id="lead-live" data-refresh="10">' in content
    assert f'<script src="{SCRIPT}" defer></script>' in content


def test_the_leads_list_refreshes_its_first_page_only(acme_client, lead):
    first = acme_client.get(reverse("portal:lead_list")).content.decode()
    paged = acme_client.get(reverse("portal:lead_list"), {"after": "1.1"}).content.decode()
    back = acme_client.get(reverse("portal:lead_list"), {"before": "1.1"}).content.decode()

    assert '<section class="card flush" id="leads-live" data-refresh="10">' in first
    assert '<section class="card flush" id="leads-live">' in paged
    assert '<section class="card flush" id="leads-live">' in back


def test_the_bulk_job_page_refreshes_what_needs_a_look(acme_client, partner):
    job = BulkRetry.objects.create(partner=partner, total=0, state="finished")

    content = acme_client.get(reverse("portal:bulk_retry_detail", args=[job.public_id])).content.decode()

    assert '<div id="bulk-attention-live" data-refresh="10">' in content
    assert f'<script src="{SCRIPT}" defer></script>' in content


def test_every_page_loads_the_times_script_once(acme_client, lead):
    content = acme_client.get(reverse("portal:lead_list")).content.decode()

    assert content.count('<script src="/static/portal/times.js" defer></script>') == 1
