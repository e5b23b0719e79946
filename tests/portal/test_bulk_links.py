"""The bulk retry page's counts link to the leads list, filtered to the job's leads with that
result; the filter is the user's partners' only and refuses bad values with a form error."""

import uuid

import pytest
from django.urls import reverse

from grants.models import Partner, Site
from grants.services import site_grant
from leads.models import BulkRetry, BulkRetryItem, Delivery, Lead

pytestmark = pytest.mark.django_db

SITE_UUID = uuid.UUID("8f14e45f-ceea-4e67-a2b1-0d5c3b9a7e21")


def item(job: BulkRetry, email: str, *, result: str, status: str) -> Lead:
    """One delivery of the job's partner that the job handled (`result`), now in `status`."""
    site = Site.objects.get(partner=job.partner, site_uuid=SITE_UUID)
    lead = Lead.objects.create(partner=job.partner, site=site, lead_id=uuid.uuid4(), email=email, status="failed")
    delivery = Delivery.objects.create(
        lead=lead, sequence=1, operation="create_lead", payload={"email": email}, status=status, attempt_count=1
    )
    BulkRetryItem.objects.create(job=job, delivery=delivery, result=result)
    return lead


def job_for(partner: Partner) -> BulkRetry:
    site_grant(partner=partner, site_uuid=SITE_UUID, source=Site.Source.MANUAL, name="Aloha Homes")
    return BulkRetry.objects.create(partner=partner, total=4, done=4, retried=3, skipped=1, state="finished")


@pytest.fixture
def job(partner):
    job = job_for(partner)
    item(job, "delivered@example.com", result="retried", status="delivered")
    item(job, "failed-again@example.com", result="retried", status="failed")
    item(job, "in-flight@example.com", result="retried", status="retrying")
    item(job, "skipped@example.com", result="skipped", status="delivered")
    lead = Lead.objects.create(
        partner=partner, site=job.partner.sites.get(), lead_id=uuid.uuid4(), email="bystander@example.com"
    )
    Delivery.objects.create(lead=lead, sequence=1, operation="create_lead", payload={}, status="failed")
    return job


def listed(client, **params: str) -> str:
    response = client.get(reverse("portal:lead_list"), params)
    assert response.status_code == 200
    return response.content.decode()


EMAILS = ["delivered@", "failed-again@", "in-flight@", "skipped@", "bystander@"]


@pytest.mark.parametrize(
    ("result", "shown"),
    [
        ("failed_again", {"failed-again@"}),
        ("delivered", {"delivered@"}),
        ("in_flight", {"in-flight@"}),
        ("skipped", {"skipped@"}),
        ("retried", {"delivered@", "failed-again@", "in-flight@"}),
        ("", {"delivered@", "failed-again@", "in-flight@", "skipped@"}),
    ],
)
def test_the_leads_list_shows_the_jobs_leads_with_that_result(acme_client, job, result, shown):
    content = listed(acme_client, bulk=str(job.public_id), bulk_result=result)

    assert {email for email in EMAILS if email in content} == shown
    assert 'id="bulk-filter"' in content


def test_each_count_on_the_job_page_links_to_its_leads(acme_client, job, partner):
    content = acme_client.get(reverse("portal:bulk_retry_detail", args=[job.public_id])).content.decode()

    base = f"/leads/?partner={partner.slug}&amp;bulk={job.public_id}"
    for result in ("retried", "skipped", "delivered", "failed_again", "in_flight"):
        assert f'href="{base}&amp;bulk_result={result}"' in content
    assert 'data-field="failed_again">1</span></a>' in content


@pytest.mark.parametrize(
    "params",
    [
        {"bulk": "not-a-uuid"},
        {"bulk": str(uuid.uuid4())},
        {"bulk_result": "failed_again"},
        {"bulk": "<script>", "bulk_result": "failed_again"},
    ],
)
def test_a_bad_bulk_filter_is_a_form_error_and_lists_nothing(acme_client, job, params):
    content = listed(acme_client, **params)

    assert "That is not a bulk retry of a partner you can see" in content
    assert not any(email in content for email in EMAILS)


def test_an_unknown_result_is_a_form_error(acme_client, job):
    content = listed(acme_client, bulk=str(job.public_id), bulk_result="'; DROP TABLE")

    assert not any(email in content for email in EMAILS)
    assert "That is not one of the bulk retry page&#x27;s counts" in content


def test_another_partners_job_is_refused_like_a_missing_one(acme_client, job, other_partner):
    theirs = job_for(other_partner)
    item(theirs, "theirs@example.com", result="retried", status="failed")

    content = listed(acme_client, bulk=str(theirs.public_id), bulk_result="failed_again")

    assert "That is not a bulk retry of a partner you can see" in content
    assert "theirs@example.com" not in content
