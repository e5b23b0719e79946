"""Bulk retry jobs and cancelling held deliveries, end to end in one process: failures made by the
real pipeline against Real Geeks faked at the HTTP edge, tasks run inline."""

import logging
import uuid
from datetime import date, timedelta

import pytest
from django.utils import timezone

from grants.models import Partner, Site
from grants.services import site_grant
from leads import bulk
from leads.models import BulkRetry, BulkRetryItem, Delivery, DeliveryAttempt, Lead
from leads.services import delivery_retry, lead_submit
from tests.leads.conftest import OTHER_SITE_UUID, SITE_UUID

pytestmark = pytest.mark.django_db

BAD_EMAIL = (422, '{"error": "Field \'email\' is not valid."}')
UNAVAILABLE = (503, "<html><title>Service Unavailable</title></html>")
NOT_ALLOWED = (401, '{"error": "These credentials may not send to this site."}')


@pytest.fixture
def send(rg, django_capture_on_commit_callbacks):
    """Push a lead through the pipeline with RG answering `answer` to its first attempt."""

    def send(partner: Partner, email: str, answer=None, site_uuid=SITE_UUID, operation="create_lead", lead_id=None):
        if answer:
            rg.answer(answer)
        data = {
            "create_lead": {"source": "Zillow", "email": email},
            "update_lead": {"first_name": "Jack"},
            "add_activities": [{"type": "note", "description": "Called back"}],
        }[operation]
        with django_capture_on_commit_callbacks(execute=True):
            delivery = lead_submit(
                partner=partner, site_uuid=site_uuid, operation=operation, data=data, lead_id=lead_id
            )
        return Delivery.objects.get(pk=delivery.pk)

    return send


@pytest.fixture
def other_site(partner: Partner) -> Site:
    return site_grant(partner=partner, site_uuid=OTHER_SITE_UUID, source=Site.Source.MANUAL, name="Harbor Homes")


def run_job(job: BulkRetry, capture) -> BulkRetry:
    """Run the job's tasks (each chunk publishes the next on commit) until nothing is left to run."""
    with capture(execute=True):
        bulk.bulk_retry_run(job_id=job.pk)
    return BulkRetry.objects.get(pk=job.pk)


def start(capture, **filters) -> BulkRetry:
    """Create a job without running it (its publish is captured, not executed)."""
    actor = filters.pop("actor", None)
    with capture(execute=False):
        return bulk.bulk_retry_start(filters=bulk.BulkFilter(**filters), actor=actor)


def test_only_the_partners_failed_and_dead_deliveries_matching_the_filter_are_retried(
    partner, other_partner, site, other_site, send, rg, settings, django_user_model, django_capture_on_commit_callbacks
):
    failed = send(partner, "failed@example.com", BAD_EMAIL)
    settings.DELIVERY_MAX_ATTEMPTS = 1
    dead = send(partner, "dead@example.com", UNAVAILABLE)
    delivered = send(partner, "fine@example.com")
    elsewhere = send(partner, "elsewhere@example.com", BAD_EMAIL, site_uuid=OTHER_SITE_UUID)
    site_grant(partner=other_partner, site_uuid=SITE_UUID, source=Site.Source.MANUAL)
    theirs = send(other_partner, "theirs@example.com", BAD_EMAIL)
    assert [d.status for d in (failed, dead, delivered, elsewhere, theirs)] == [
        "failed",
        "dead",
        "delivered",
        "failed",
        "failed",
    ]
    kim = django_user_model.objects.create_user("kim", is_staff=True)
    rg.calls.clear()

    with django_capture_on_commit_callbacks(execute=True):
        job = bulk.bulk_retry_start(filters=bulk.BulkFilter(partner=partner, site_uuid=SITE_UUID), actor=kim)

    job.refresh_from_db()
    assert (job.state, job.total, job.done, job.retried, job.skipped) == ("finished", 2, 2, 2, 0)
    assert job.filters == {"partner": partner.slug, "status": ["failed", "dead"], "site": str(SITE_UUID)}
    assert sorted(body["email"] for _, _, body in rg.calls) == ["dead@example.com", "failed@example.com"]
    for delivery in (failed, dead):
        delivery.refresh_from_db()
        last = delivery.attempts.order_by("-number").first()
        assert (delivery.status, last.trigger, last.actor) == ("delivered", "bulk", kim)
    for untouched, status in ((delivered, "delivered"), (elsewhere, "failed"), (theirs, "failed")):
        untouched.refresh_from_db()
        assert (untouched.status, untouched.attempts.count()) == (status, 1)
    assert Lead.objects.get(email="failed@example.com").status == "delivered"


def test_the_filter_narrows_by_status_operation_http_status_and_creation_date(partner, site, send, settings):
    unauthorised = send(partner, "a@example.com", NOT_ALLOWED)
    bad = send(partner, "b@example.com", BAD_EMAIL)
    settings.DELIVERY_MAX_ATTEMPTS = 1
    dead = send(partner, "c@example.com", UNAVAILABLE)
    activity = send(partner, "", BAD_EMAIL, operation="add_activities", lead_id=uuid.uuid4())
    Delivery.objects.filter(pk=bad.pk).update(created=timezone.now() - timedelta(days=3))
    today = timezone.now().date()

    def matching(**filters) -> set[int]:
        found = bulk.bulk_retry_candidates(filters=bulk.BulkFilter(partner=partner, **filters))
        return set(found.values_list("pk", flat=True))

    assert activity.status == "failed"
    assert matching() == {unauthorised.pk, bad.pk, dead.pk, activity.pk}
    assert matching(statuses=("dead",)) == {dead.pk}
    assert matching(http_status=401) == {unauthorised.pk}
    assert matching(http_status=422, operation="create_lead") == {bad.pk}
    assert matching(operation="add_activities") == {activity.pk}
    assert matching(created_from=today) == {unauthorised.pk, dead.pk, activity.pk}
    assert matching(created_to=today - timedelta(days=1)) == {bad.pk}
    assert matching(created_from=date(2001, 1, 1), created_to=date(2001, 1, 2)) == set()


def test_a_job_runs_in_chunks_and_its_counters_follow(
    partner, site, send, settings, django_capture_on_commit_callbacks
):
    settings.BULK_RETRY_CHUNK_SIZE = 2
    for n in range(5):
        send(partner, f"lead{n}@example.com", BAD_EMAIL)
    job = start(django_capture_on_commit_callbacks, partner=partner)

    with django_capture_on_commit_callbacks(execute=False) as published:
        bulk.bulk_retry_run(job_id=job.pk)

    job.refresh_from_db()
    assert (job.state, job.total, job.done, job.retried) == ("running", 5, 2, 2)
    assert job.started is not None and job.finished is None
    progress = bulk.bulk_retry_progress(job=job)
    # The two retried were published, not yet attempted: both in flight.
    assert (progress.done, progress.in_flight, progress.delivered, progress.finished) == (2, 2, 0, False)
    assert len(published) == 3  # two deliveries and the job's next chunk

    with django_capture_on_commit_callbacks(execute=True):
        for publish in published:
            publish()

    job.refresh_from_db()

    assert (job.state, job.done, job.retried, job.skipped) == ("finished", 5, 5, 0)
    assert job.finished is not None
    assert bulk.bulk_retry_progress(job=job).as_json() == {
        "state": "finished",
        "total": 5,
        "done": 5,
        "retried": 5,
        "skipped": 0,
        "delivered": 5,
        "failed_again": 0,
        "in_flight": 0,
        "finished": True,
        "settled": True,
    }


def test_progress_tells_delivered_from_failed_again_and_still_retrying(
    partner, site, send, rg, django_capture_on_commit_callbacks
):
    for n in range(3):
        send(partner, f"lead{n}@example.com", BAD_EMAIL)
    job = start(django_capture_on_commit_callbacks, partner=partner)
    rg.answer((201, "{}"), BAD_EMAIL, UNAVAILABLE)  # oldest first

    job = run_job(job, django_capture_on_commit_callbacks)

    progress = bulk.bulk_retry_progress(job=job)
    assert (progress.delivered, progress.failed_again, progress.in_flight) == (1, 1, 1)
    assert progress.finished and not progress.settled
    assert Delivery.objects.get(lead__email="lead2@example.com").status == "retrying"


def test_a_delivery_fixed_after_the_job_was_created_is_skipped_and_says_why(
    partner, site, send, django_capture_on_commit_callbacks
):
    first = send(partner, "first@example.com", BAD_EMAIL)
    send(partner, "second@example.com", BAD_EMAIL)
    job = start(django_capture_on_commit_callbacks, partner=partner)
    with django_capture_on_commit_callbacks(execute=True):
        delivery_retry(delivery=first)  # someone retried it by hand meanwhile
    assert Delivery.objects.get(pk=first.pk).status == "delivered"

    job = run_job(job, django_capture_on_commit_callbacks)

    assert (job.done, job.retried, job.skipped) == (2, 1, 1)
    skipped = job.items.get(result=BulkRetryItem.Result.SKIPPED)
    assert skipped.delivery_id == first.pk
    assert skipped.note == "It was delivered by the time the job reached it."
    assert Delivery.objects.get(pk=first.pk).attempts.count() == 2  # not sent a third time


def test_running_a_job_again_retries_no_delivery_twice(partner, site, send, rg, django_capture_on_commit_callbacks):
    for n in range(2):
        send(partner, f"lead{n}@example.com", BAD_EMAIL)
    job = start(django_capture_on_commit_callbacks, partner=partner)
    rg.calls.clear()

    # A redelivered message: the same task runs twice before any outcome is recorded.
    with django_capture_on_commit_callbacks(execute=True):
        bulk.bulk_retry_run(job_id=job.pk)
        bulk.bulk_retry_run(job_id=job.pk)
    run_job(job, django_capture_on_commit_callbacks)

    job.refresh_from_db()
    assert (job.state, job.done, job.retried) == ("finished", 2, 2)
    assert len(rg.calls) == 2
    assert DeliveryAttempt.objects.filter(trigger="bulk").count() == 2


def test_a_job_takes_at_most_the_limit_oldest_first(partner, site, send, settings, django_capture_on_commit_callbacks):
    oldest, middle, newest = (send(partner, f"{name}@example.com", BAD_EMAIL) for name in ("old", "mid", "new"))
    for age, delivery in ((3, oldest), (2, middle), (1, newest)):
        Delivery.objects.filter(pk=delivery.pk).update(created=timezone.now() - timedelta(hours=age))
    settings.BULK_RETRY_MAX_DELIVERIES = 2

    job = start(django_capture_on_commit_callbacks, partner=partner)

    assert job.total == 2
    assert set(job.items.values_list("delivery_id", flat=True)) == {oldest.pk, middle.pk}


def test_a_filter_matching_nothing_creates_no_job(partner, site, send):
    send(partner, "fine@example.com")

    with pytest.raises(bulk.BulkRetryError, match="No failed or dead deliveries match"):
        bulk.bulk_retry_start(filters=bulk.BulkFilter(partner=partner), actor=None)
    assert not BulkRetry.objects.exists()


def test_a_job_whose_progress_stalled_is_published_again(
    partner, site, send, settings, django_capture_on_commit_callbacks
):
    send(partner, "lost@example.com", BAD_EMAIL)
    job = start(django_capture_on_commit_callbacks, partner=partner)  # its message is "lost"
    fresh = start(django_capture_on_commit_callbacks, partner=partner)  # created just now: not stalled
    BulkRetry.objects.filter(pk=job.pk).update(
        updated=timezone.now() - timedelta(seconds=settings.BULK_RETRY_STALL_SECONDS + 1)
    )

    with django_capture_on_commit_callbacks(execute=True):
        assert bulk.bulk_retries_resume() == 1

    job.refresh_from_db()
    fresh.refresh_from_db()
    assert (job.state, job.done) == ("finished", 1)
    assert fresh.state == "queued"


def test_cancelling_held_deliveries_cancels_those_waiting_behind_them_and_nothing_else(
    partner, site, send, django_capture_on_commit_callbacks
):
    ungranted = uuid.UUID("9a3c1e7b-2d4f-4b6a-8c0e-1f2a3b4c5d6e")
    held = send(partner, "held@example.com", site_uuid=ungranted)
    behind = send(partner, "", operation="update_lead", lead_id=held.lead.lead_id, site_uuid=ungranted)
    other_held = send(partner, "held2@example.com", site_uuid=ungranted)
    granted = send(partner, "granted@example.com")
    # The update is never claimed while the create ahead of it is held: it stays pending behind it.
    assert [d.status for d in (held, behind, other_held, granted)] == ["held", "pending", "held", "delivered"]
    unrelated_waiting = send(partner, "", operation="update_lead", lead_id=granted.lead.lead_id)

    cancelled = bulk.deliveries_cancel_held(site=held.lead.site)

    assert cancelled == 3
    for delivery in (held, behind, other_held):
        delivery.refresh_from_db()
        assert (delivery.status, delivery.last_error) == ("cancelled", bulk.CANCELLED_WHILE_HELD)
    assert Lead.objects.get(pk=held.lead_id).status == "cancelled"
    assert Delivery.objects.get(pk=unrelated_waiting.pk).status == "delivered"
    assert bulk.deliveries_cancel_held(site=held.lead.site) == 0


def test_a_message_for_a_job_that_no_longer_exists_is_dropped_not_an_error(caplog):
    with caplog.at_level(logging.WARNING, logger="leads.bulk"):
        assert bulk.bulk_retry_run(job_id=987_654) is None

    assert "bulk retry 987654 no longer exists" in caplog.text


def test_transient_only_keeps_5xx_and_unanswered_attempts_and_leaves_out_4xx(partner, site, send, settings):
    unauthorised = send(partner, "a@example.com", NOT_ALLOWED)
    settings.DELIVERY_MAX_ATTEMPTS = 1
    dead = send(partner, "c@example.com", UNAVAILABLE)
    timed_out = send(partner, "d@example.com", UNAVAILABLE)
    Delivery.objects.filter(pk=timed_out.pk).update(last_status_code=None, last_error="Timed out")

    found = bulk.bulk_retry_candidates(filters=bulk.BulkFilter(partner=partner, transient_only=True))

    assert set(found.values_list("pk", flat=True)) == {dead.pk, timed_out.pk}
    assert unauthorised.status == "failed"
    assert bulk.BulkFilter(partner=partner, transient_only=True).as_json()["transient_only"] is True
