"""The bulk retry pages: filter, count, confirm, then a job whose progress page reaches the end.

Real Geeks is faked at the HTTP edge (tests/leads/conftest.py's `rg`) and Celery runs inline, so a
confirmed job really retries its deliveries."""

import uuid

import pytest
from django.test import Client
from django.urls import reverse

from core.models import AuditEntry
from grants.models import Partner, Site
from grants.services import site_grant
from leads import bulk
from leads.models import BulkRetry, Delivery, Lead
from tests.leads.conftest import SITE_UUID, rg  # noqa: F401  (the fake Real Geeks fixture)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def inline_tasks(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True


def failed(partner: Partner, email: str, *, code: int = 422, status: str = "failed") -> Delivery:
    """A delivery the pipeline gave up on, as it leaves one: failed (or dead) with RG's last status."""
    site = partner.sites.get(site_uuid=SITE_UUID)
    lead = Lead.objects.create(partner=partner, site=site, lead_id=uuid.uuid4(), email=email, status="failed")
    return Delivery.objects.create(
        lead=lead,
        sequence=1,
        operation="create_lead",
        payload={"id": str(lead.lead_id), "source": "Zillow", "email": email},
        status=status,
        attempt_count=1,
        last_status_code=code,
        last_error=f"Real Geeks answered {code}: nope",
    )


@pytest.fixture
def failures(partner, other_partner):
    for owner in (partner, other_partner):
        site_grant(partner=owner, site_uuid=SITE_UUID, source=Site.Source.MANUAL, name="Aloha Homes")
    return {
        "bad_email": failed(partner, "bad@example.com", code=422),
        "also_bad": failed(partner, "also-bad@example.com", code=422),
        "dead": failed(partner, "dead@example.com", code=503, status="dead"),
        "theirs": failed(other_partner, "theirs@example.com", code=422),
    }


def test_the_filter_shows_how_many_match_before_anything_is_retried(acme_client, partner, failures, rg):  # noqa: F811
    response = acme_client.get(reverse("portal:bulk_retry"), {"partner": partner.slug, "http_status": "422"})

    content = response.content.decode()
    assert "2 failed or dead deliveries match" in content
    assert "Retry 2 deliveries" in content
    assert '<input type="hidden" name="http_status" value="422">' in content
    assert not BulkRetry.objects.exists()
    assert rg.calls == []


def test_confirming_starts_one_audited_job_whose_progress_reaches_the_end(
    acme_client,
    acme_staff,
    partner,
    failures,
    rg,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        response = acme_client.post(reverse("portal:bulk_retry"), {"partner": partner.slug, "http_status": "422"})

    job = BulkRetry.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:bulk_retry_detail", args=[job.public_id])
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor, entry.partner, entry.object_id) == (
        "delivery.bulk_retry",
        acme_staff,
        partner,
        str(job.public_id),
    )
    assert entry.after == {
        "filters": {"partner": partner.slug, "status": ["failed", "dead"], "http_status": 422},
        "count": 2,
    }
    assert sorted(body["email"] for _, _, body in rg.calls) == ["also-bad@example.com", "bad@example.com"]

    progress = acme_client.get(reverse("portal:bulk_retry_progress", args=[job.public_id])).json()
    assert progress == {
        "state": "finished",
        "total": 2,
        "done": 2,
        "retried": 2,
        "skipped": 0,
        "delivered": 2,
        "failed_again": 0,
        "in_flight": 0,
        "finished": True,
        "settled": True,
    }
    page = acme_client.get(response["Location"]).content.decode()
    assert "Finished" in page and '<span data-field="done">2</span> of <span data-field="total">2</span>' in page
    assert "Last HTTP status</dt><dd>422" in page
    failures["dead"].refresh_from_db()
    assert failures["dead"].status == "dead"


def test_bad_filter_input_is_refused_with_clear_messages_and_kept(acme_client, partner, failures):
    response = acme_client.get(
        reverse("portal:bulk_retry"),
        {
            "partner": partner.slug,
            "site": "5d9b2f5e-7c1a-4e63-9d0b",
            "http_status": "abc",
            "created_from": "2025-03-05",
            "created_to": "2025-03-01",
        },
    )

    content = response.content.decode()
    assert response.status_code == 200
    assert "That is not a site UUID." in content
    assert "Enter an HTTP status such as 422 or 503." in content
    assert "The end date is before the start date." in content
    assert 'value="5d9b2f5e-7c1a-4e63-9d0b"' in content
    assert 'value="abc"' in content
    assert "bulk-confirm" not in content


def test_an_http_status_out_of_range_is_refused(acme_client, partner, failures):
    content = acme_client.get(reverse("portal:bulk_retry"), {"partner": partner.slug, "http_status": "42"}).content
    assert b"Ensure this value is greater than or equal to 100." in content


def test_staff_cannot_retry_or_watch_another_partners_deliveries(
    acme_client, other_partner, failures, django_capture_on_commit_callbacks
):
    response = acme_client.post(reverse("portal:bulk_retry"), {"partner": other_partner.slug})
    assert "Select a valid choice." in response.content.decode()
    assert not BulkRetry.objects.exists()

    with django_capture_on_commit_callbacks(execute=False):
        theirs = bulk.bulk_retry_start(filters=bulk.BulkFilter(partner=other_partner), actor=None)
    assert acme_client.get(reverse("portal:bulk_retry_detail", args=[theirs.public_id])).status_code == 404
    progress = acme_client.get(reverse("portal:bulk_retry_progress", args=[theirs.public_id]))
    assert (progress.status_code, progress.json()) == (404, {"error": f"No bulk retry {theirs.public_id}."})
    listing = acme_client.get(reverse("portal:bulk_retry")).content.decode()
    assert str(theirs.public_id) not in listing
    assert "Other Co" not in listing


def test_a_confirm_without_the_csrf_token_is_refused(acme_staff, partner, failures):
    client = Client(enforce_csrf_checks=True)
    client.force_login(acme_staff)

    response = client.post(reverse("portal:bulk_retry"), {"partner": partner.slug})

    assert response.status_code == 403
    assert not BulkRetry.objects.exists()


def test_the_page_says_when_more_match_than_one_job_takes(acme_client, partner, failures, settings):
    settings.BULK_RETRY_MAX_DELIVERIES = 2

    content = acme_client.get(reverse("portal:bulk_retry"), {"partner": partner.slug}).content.decode()

    assert "3 failed or dead deliveries match" in content
    assert "this one takes the oldest 2" in content
    assert "Retry 2 deliveries" in content


def test_a_filter_that_matches_nothing_says_so(acme_client, partner, failures):
    content = acme_client.get(
        reverse("portal:bulk_retry"), {"partner": partner.slug, "site": str(uuid.uuid4())}
    ).content.decode()

    assert "No failed or dead deliveries match" in content
    assert "Retry " not in content


def test_the_progress_endpoint_needs_a_login(client, failures):
    response = client.get(reverse("portal:bulk_retry_progress", args=[uuid.uuid4()]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_job_page_lists_what_failed_again_and_what_was_skipped(
    acme_client,
    partner,
    failures,
    rg,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=False):
        job = bulk.bulk_retry_start(filters=bulk.BulkFilter(partner=partner, http_status=422), actor=None)
    Delivery.objects.filter(pk=failures["also_bad"].pk).update(status="cancelled")  # someone gave up on it
    rg.answer((422, '{"error": "Field \'email\' is still not valid."}'))
    with django_capture_on_commit_callbacks(execute=True):
        bulk.bulk_retry_run(job_id=job.pk)

    page = acme_client.get(reverse("portal:bulk_retry_detail", args=[job.public_id])).content.decode()

    attention = page[page.index('id="bulk-attention"') :]
    assert ">bad@example.com</a>" in attention and "still not valid" in attention
    assert "also-bad@example.com" in attention and "It was cancelled by the time the job reached it." in attention
    assert reverse("portal:lead_detail", args=[partner.slug, failures["bad_email"].lead.lead_id]) in attention


# Guarded bulk retry (issue 12)


def test_the_matched_deliveries_are_previewed_before_the_retry(acme_client, partner, failures, settings):
    settings.BULK_RETRY_MAX_DELIVERIES = 10
    response = acme_client.get(reverse("portal:bulk_retry"), {"partner": partner.slug})

    content = response.content.decode()
    assert "3 failed or dead deliveries match" in content
    assert [d.lead.email for d in response.context["preview"]] == [
        "bad@example.com",
        "also-bad@example.com",
        "dead@example.com",
    ]
    assert 'id="bulk-preview"' in content and "Real Geeks answered 503: nope" in content
    assert "theirs@example.com" not in content


def test_5xx_and_timeouts_only_leaves_out_what_rg_refused(acme_client, partner, failures, rg):  # noqa: F811
    timed_out = failed(partner, "slow@example.com", code=503)
    Delivery.objects.filter(pk=timed_out.pk).update(
        last_status_code=None, last_attempt_at=timed_out.created, last_error="Timed out"
    )
    never_sent = failed(partner, "never@example.com", code=503)
    Delivery.objects.filter(pk=never_sent.pk).update(last_status_code=None, last_error="Held too long")
    filters = {"partner": partner.slug, "transient_only": "on"}

    response = acme_client.get(reverse("portal:bulk_retry"), filters)
    assert "2 failed or dead deliveries match" in response.content.decode()
    assert {d.lead.email for d in response.context["preview"]} == {"dead@example.com", "slow@example.com"}
    assert '<input type="hidden" name="transient_only" value="True">' in response.content.decode()

    acme_client.post(reverse("portal:bulk_retry"), {"partner": partner.slug, "transient_only": "True"})
    job = BulkRetry.objects.get()
    assert job.total == 2 and job.filters["transient_only"] is True
    assert set(job.items.values_list("delivery__lead__email", flat=True)) == {"dead@example.com", "slow@example.com"}
