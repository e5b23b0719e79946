"""Retention: bodies past their age are pruned in batches, recent ones stay, and the history still
reads right (status codes, outcomes, the lead's API document, the pages) with the body saying it
was pruned."""

import hashlib
import json
import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from grants import callbacks
from grants.models import GrantEmail, Partner, WebhookEvent
from leads.models import Delivery, DeliveryAttempt
from leads.services import lead_submit
from operations import retention, tasks
from operations.models import PruneMark
from tests.leads.conftest import SITE_UUID, basic

pytestmark = pytest.mark.django_db

NOW = timezone.now()
OLD = NOW - timedelta(days=31)
RECENT = NOW - timedelta(days=29)
PRUNED = "(pruned after 30 days)"


def delivered(partner: Partner, n: int, rg, django_capture_on_commit_callbacks) -> Delivery:
    with django_capture_on_commit_callbacks(execute=True):
        delivery = lead_submit(
            partner=partner,
            site_uuid=SITE_UUID,
            operation="create_lead",
            data={"source": "Zillow", "email": f"jack{n}@example.com"},
        )
    return Delivery.objects.get(pk=delivery.pk)


def attempts(delivery: Delivery, *started, outcome: str = "retry") -> list[DeliveryAttempt]:
    """Attempts of the delivery, as a worker would have written them, started at these times."""
    return [
        DeliveryAttempt.objects.create(
            delivery=delivery,
            number=n,
            trigger="sweeper",
            started=at,
            duration_ms=80,
            request_method="POST",
            request_url="https://rg.example/rest/sites/x/leads",
            request_body='{"email": "jack@example.com"}',
            response_status=503,
            response_body='{"error": "Service Unavailable"}',
            error="Real Geeks answered 503: Service Unavailable",
            outcome=outcome,
        )
        for n, at in enumerate(started, start=10)
    ]


def fresh(row):
    return type(row).objects.get(pk=row.pk)


def test_old_attempt_bodies_are_pruned_and_recent_ones_stay_with_every_summary_kept(
    partner, site, rg, django_capture_on_commit_callbacks
):
    delivery = delivered(partner, 1, rg, django_capture_on_commit_callbacks)
    old, recent = attempts(delivery, OLD, RECENT)

    (result, *_) = retention.bodies_prune(now=NOW)

    assert (result.rule.name, result.rows, result.finished) == ("attempt_bodies", 1, True)
    old, recent = fresh(old), fresh(recent)
    assert (old.request_body, old.response_body, old.bodies_pruned_at) == (PRUNED, PRUNED, NOW)
    assert (old.response_status, old.outcome, old.duration_ms, old.error) == (
        503,
        "retry",
        80,
        "Real Geeks answered 503: Service Unavailable",
    )
    assert (recent.request_body, recent.response_body, recent.bodies_pruned_at) == (
        '{"email": "jack@example.com"}',
        '{"error": "Service Unavailable"}',
        None,
    )
    # The delivery's own summary (and the whole payload sent) are untouched.
    delivery_now = fresh(delivery)
    assert (delivery_now.status, delivery_now.last_status_code, delivery_now.payload) == (
        "delivered",
        201,
        delivery.payload,
    )


def test_the_leads_api_document_still_shows_status_codes_and_says_the_body_was_pruned(
    partner, site, rg, credentials, django_capture_on_commit_callbacks
):
    delivery = delivered(partner, 2, rg, django_capture_on_commit_callbacks)
    DeliveryAttempt.objects.filter(delivery=delivery).update(started=OLD)
    retention.bodies_prune(now=NOW)

    document = Client(HTTP_AUTHORIZATION=basic(*credentials)).get(f"/api/leads/{delivery.lead.lead_id}/").json()

    (shown,) = document["deliveries"]
    assert (shown["status"], shown["last_status_code"]) == ("delivered", 201)
    (attempt,) = shown["attempts"]
    assert (attempt["response_status"], attempt["outcome"]) == (201, "delivered")
    assert attempt["request_body"] == attempt["response_body"] == PRUNED
    assert shown["payload"]["email"] == "jack2@example.com"


def test_the_leads_page_shows_the_attempt_with_its_status_and_the_pruned_note(
    partner, site, rg, root_client, django_capture_on_commit_callbacks
):
    delivery = delivered(partner, 3, rg, django_capture_on_commit_callbacks)
    DeliveryAttempt.objects.filter(delivery=delivery).update(started=OLD)
    retention.bodies_prune(now=NOW)

    page = root_client.get(f"/partners/{partner.slug}/leads/{delivery.lead.lead_id}/")

    assert page.status_code == 200
    text = page.content.decode()
    assert PRUNED in text and "201" in text and "Delivered" in text


def test_bodies_are_pruned_a_batch_at_a_time_and_the_next_run_starts_where_this_one_ended(
    partner, site, rg, django_capture_on_commit_callbacks
):
    delivery = delivered(partner, 4, rg, django_capture_on_commit_callbacks)
    DeliveryAttempt.objects.update(started=RECENT)
    attempts(delivery, *(OLD - timedelta(hours=n) for n in range(5)))

    (result, *_) = retention.bodies_prune(now=NOW, batch_size=2)

    assert (result.rows, result.batches) == (5, 3)
    assert result.longest_batch_ms >= 0
    assert PruneMark.objects.get(rule="attempt_bodies").reached == NOW - timedelta(days=30)
    assert DeliveryAttempt.objects.filter(bodies_pruned_at__isnull=True).count() == 1
    # A day later: the recent attempt has aged past the limit; nothing pruned is read again.
    (later, *_) = retention.bodies_prune(now=NOW + timedelta(days=2), batch_size=2)
    assert (later.rows, later.batches) == (1, 1)


def test_a_row_written_late_with_an_earlier_time_is_found_by_the_next_run(
    partner, site, rg, django_capture_on_commit_callbacks
):
    delivery = delivered(partner, 5, rg, django_capture_on_commit_callbacks)
    DeliveryAttempt.objects.update(started=RECENT)
    retention.bodies_prune(now=NOW)
    (late,) = attempts(delivery, NOW - timedelta(days=30, hours=2))  # just before the last run's cutoff

    (result, *_) = retention.bodies_prune(now=NOW + timedelta(hours=1))

    assert result.rows == 1
    assert fresh(late).bodies_pruned_at is not None


def test_a_run_out_of_time_stops_between_batches_and_the_task_hands_over_to_another(
    partner, site, rg, monkeypatch, django_capture_on_commit_callbacks
):
    delivery = delivered(partner, 6, rg, django_capture_on_commit_callbacks)
    attempts(delivery, OLD, OLD)

    (stopped, *_) = retention.bodies_prune(now=NOW, budget_seconds=0)
    assert (stopped.rows, stopped.finished) == (0, False)

    runs = []
    real = retention.bodies_prune

    def counted(**kwargs):
        runs.append(kwargs["budget_seconds"])
        return real(now=NOW, budget_seconds=0 if len(runs) == 1 else None)

    monkeypatch.setattr(retention, "bodies_prune", counted)
    tasks.bodies_prune_task.delay()  # eager in tests: the hand-over runs at once

    assert runs == [60.0, 60.0]
    assert DeliveryAttempt.objects.filter(bodies_pruned_at__isnull=False).count() == 2


def test_zero_days_keeps_bodies_forever(partner, site, rg, settings, django_capture_on_commit_callbacks):
    settings.RETENTION_ATTEMPT_BODY_DAYS = 0
    delivery = delivered(partner, 7, rg, django_capture_on_commit_callbacks)
    (old,) = attempts(delivery, NOW - timedelta(days=3000))

    (result, *_) = retention.bodies_prune(now=NOW)

    assert (result.cutoff, result.rows) == (None, 0)
    assert fresh(old).bodies_pruned_at is None
    assert result.describe() == "attempt request and response bodies: kept forever (RETENTION_ATTEMPT_BODY_DAYS=0)"


def callback_event(partner: Partner, *, received_at, state: str) -> WebhookEvent:
    body = json.dumps({"action": "lead_created", "id": str(uuid.uuid4()), "site_uuid": str(SITE_UUID)}).encode()
    callbacks.webhook_event_receive(partner_id=partner.pk, body=body, headers={}, remote_addr="10.0.0.1")
    digest = hashlib.sha256(body).hexdigest()
    WebhookEvent.objects.filter(body_sha256=digest).update(received_at=received_at, state=state)
    return WebhookEvent.objects.get(body_sha256=digest)


def test_old_processed_callbacks_lose_their_body_and_keep_digest_action_and_state(partner, root_client):
    old = callback_event(partner, received_at=NOW - timedelta(days=91), state="processed")
    waiting = callback_event(partner, received_at=NOW - timedelta(days=91), state="received")
    recent = callback_event(partner, received_at=NOW - timedelta(days=89), state="processed")
    before = fresh(old)

    (_, result, _) = retention.bodies_prune(now=NOW)

    assert result.rows == 1
    old = fresh(old)
    assert (bytes(old.body), old.body_pruned_at) == (b"(pruned after 90 days)", NOW)
    assert (old.body_sha256, old.action, old.site_uuid, old.lead_id, old.state) == (
        before.body_sha256,
        "lead_created",
        SITE_UUID,
        before.lead_id,
        "processed",
    )
    assert fresh(waiting).body_pruned_at is None and fresh(recent).body_pruned_at is None
    page = root_client.get(f"/callbacks/{old.public_id}/")
    assert page.status_code == 200 and "(pruned after 90 days)" in page.content.decode()


RAW_EMAIL = b"From: Real Geeks <no-reply@realgeeks.com>\r\nSubject: Access granted\r\n\r\nSite granted."


def grant_email(*, received_at, status: str) -> GrantEmail:
    return GrantEmail.objects.create(
        source=GrantEmail.Source.PASTE,
        dedupe_key=uuid.uuid4().hex,
        subject="Access granted",
        raw=RAW_EMAIL,
        raw_size=len(RAW_EMAIL),
        status=status,
        received_at=received_at,
    )


def test_old_decided_grant_emails_lose_their_raw_message_and_those_in_review_keep_it(root_client):
    old = grant_email(received_at=NOW - timedelta(days=366), status="granted")
    in_review = grant_email(received_at=NOW - timedelta(days=400), status="needs_review")
    recent = grant_email(received_at=NOW - timedelta(days=364), status="resolved")

    (_, _, result) = retention.bodies_prune(now=NOW)

    assert result.rows == 1
    old = fresh(old)
    assert (bytes(old.raw), old.raw_pruned_at, old.raw_size, old.subject, old.status) == (
        b"(pruned after 365 days)",
        NOW,
        len(RAW_EMAIL),
        "Access granted",
        "granted",
    )
    assert fresh(in_review).raw_pruned_at is None and fresh(recent).raw_pruned_at is None
    assert root_client.get(f"/grant-emails/{old.public_id}/").status_code == 200


def test_the_dry_run_says_what_would_be_pruned_and_changes_nothing(
    partner, site, rg, django_capture_on_commit_callbacks
):
    delivery = delivered(partner, 8, rg, django_capture_on_commit_callbacks)
    attempts(delivery, OLD, OLD, RECENT)
    out = StringIO()

    call_command("prune_bodies", "--dry-run", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0].startswith("attempt request and response bodies: 2 older than 30 days (before ")
    assert lines[0].endswith("would be pruned")
    assert lines[1].startswith("raw callbacks: 0 older than 90 days")
    assert lines[2].startswith("raw grant emails: 0 older than 365 days")
    assert DeliveryAttempt.objects.filter(bodies_pruned_at__isnull=False).count() == 0


def test_the_command_prunes_and_reports_rows_batches_and_its_longest_batch(
    partner, site, rg, django_capture_on_commit_callbacks
):
    delivery = delivered(partner, 9, rg, django_capture_on_commit_callbacks)
    attempts(delivery, OLD, OLD, OLD)
    out = StringIO()

    call_command("prune_bodies", "--batch-size", "2", stdout=out)

    first = out.getvalue().splitlines()[0]
    assert first.startswith("attempt request and response bodies: pruned 3 older than 30 days")
    assert " in 2 batches, " in first and "longest batch" in first
    assert DeliveryAttempt.objects.filter(bodies_pruned_at__isnull=False).count() == 3


def test_the_overview_says_which_retention_is_in_force(root_client, settings):
    settings.RETENTION_CALLBACK_BODY_DAYS = 0

    page = root_client.get("/").content.decode()

    assert "Attempt request and response bodies are pruned after 30 days" in page
    assert "raw callbacks are kept forever" in page
    assert "raw grant emails are pruned after 365 days" in page


def test_beat_runs_the_prune_hourly(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["operations-bodies-prune"]

    assert (entry["task"], entry["schedule"]) == ("operations.tasks.bodies_prune_task", 3600.0)


def test_superusers_see_each_rules_progress_in_the_admin_and_nobody_edits_it(
    partner, site, rg, root_client, django_capture_on_commit_callbacks
):
    delivery = delivered(partner, 10, rg, django_capture_on_commit_callbacks)
    attempts(delivery, OLD)
    retention.bodies_prune(now=NOW)

    page = root_client.get("/admin/operations/prunemark/")

    assert page.status_code == 200 and "attempt_bodies" in page.content.decode()
    mark = PruneMark.objects.get(rule="attempt_bodies")
    assert root_client.get(f"/admin/operations/prunemark/{mark.pk}/delete/").status_code == 403
