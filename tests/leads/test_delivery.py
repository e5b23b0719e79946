"""The outbox and its delivery rules, end to end in one process: submit, publish on commit, a task
runs inline, Real Geeks answers at the HTTP edge (tests/leads/conftest.py's `rg`)."""

import uuid
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from grants.models import Site
from grants.services import site_grant
from leads import delivery as outbox
from leads import engine
from leads.models import Delivery, Lead
from leads.services import DeliveryStateError, delivery_retry, lead_resend, lead_submit
from tests.leads.conftest import OTHER_SITE_UUID, SITE_UUID, run_tasks_inline

LEAD_ID = uuid.UUID("2b6c1f4e-8d3a-4c5b-9e7f-0a1b2c3d4e5f")
JACK = {"id": str(LEAD_ID), "source": "Zillow", "email": "jack@gmail.com", "first_name": "Jack"}
pytestmark = pytest.mark.django_db


def submit(partner, operation="create_lead", data=None, lead_id=None, site_uuid=SITE_UUID) -> Delivery:
    return lead_submit(
        partner=partner,
        site_uuid=site_uuid,
        operation=operation,
        data=dict(JACK) if data is None else data,
        lead_id=lead_id,
    )


def fresh(delivery: Delivery) -> Delivery:
    return Delivery.objects.get(pk=delivery.pk)


def make_due(delivery: Delivery) -> None:
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def test_a_submitted_lead_is_delivered_once_and_its_attempt_recorded(
    partner, site, rg, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        delivery = submit(partner)

    delivery = fresh(delivery)
    assert (delivery.status, delivery.attempt_count, delivery.last_status_code) == ("delivered", 1, 201)
    assert rg.operations() == [("POST", f"/rest/sites/{SITE_UUID}/leads")]
    sent = rg.calls[0][2]
    assert sent["id"] == str(LEAD_ID) and sent["email"] == "jack@gmail.com" and sent["created"]
    attempt = delivery.attempts.get()
    assert (attempt.trigger, attempt.outcome, attempt.response_status) == ("automatic", "delivered", 201)
    assert attempt.request_url.endswith(f"/rest/sites/{SITE_UUID}/leads") and attempt.request_method == "POST"
    assert '"jack@gmail.com"' in attempt.request_body and attempt.duration_ms is not None
    assert Lead.objects.get().status == "delivered"


def test_a_422_fails_without_a_retry_and_keeps_rgs_answer(partner, site, rg, django_capture_on_commit_callbacks):
    rg.answer((422, '{"error": "Field \'email\' is not valid."}'))
    with django_capture_on_commit_callbacks(execute=True):
        delivery = submit(partner)
    outbox.deliveries_sweep()

    delivery = fresh(delivery)
    assert (delivery.status, delivery.attempt_count, delivery.next_attempt_at) == ("failed", 1, None)
    assert delivery.last_error == "Real Geeks answered 422: Field 'email' is not valid."
    assert delivery.attempts.get().response_body == '{"error": "Field \'email\' is not valid."}'
    assert len(rg.calls) == 1
    assert Lead.objects.get().status == "failed"


def test_a_stretch_of_503s_is_retried_with_growing_delays_then_delivered(
    partner, site, rg, settings, django_capture_on_commit_callbacks
):
    rg.answer((503, "<html><title>Unavailable</title></html>"), (503, "{}"), (503, "{}"))
    with django_capture_on_commit_callbacks(execute=True):
        delivery = submit(partner)
    for _ in range(3):
        assert fresh(delivery).status == "retrying"
        make_due(delivery)
        outbox.deliveries_sweep()

    delivery = fresh(delivery)
    assert delivery.status == "delivered" and delivery.attempt_count == 4
    attempts = list(delivery.attempts.order_by("number"))
    delays = [(a.next_attempt_at - a.started).total_seconds() for a in attempts[:3] if a.next_attempt_at]
    assert delays[0] < delays[1] < delays[2]
    assert [a.trigger for a in attempts] == ["automatic", "sweeper", "sweeper", "sweeper"]
    assert [a.outcome for a in attempts] == ["retry", "retry", "retry", "delivered"]


def test_a_hanging_rg_times_out_and_the_attempt_says_so(
    partner, site, rg, settings, django_capture_on_commit_callbacks
):
    settings.REALGEEKS_READ_TIMEOUT = 3.0
    rg.answer(requests.ReadTimeout())
    with django_capture_on_commit_callbacks(execute=True):
        delivery = submit(partner)

    attempt = fresh(delivery).attempts.get()
    assert (attempt.outcome, attempt.response_status) == ("retry", None)
    assert attempt.error == "Real Geeks did not answer within 3 s"
    assert fresh(delivery).status == "retrying"


def test_a_transient_failure_on_the_last_attempt_makes_the_delivery_dead(
    partner, site, rg, settings, django_capture_on_commit_callbacks
):
    settings.DELIVERY_MAX_ATTEMPTS = 2
    rg.answer((500, "{}"), (502, "{}"))
    with django_capture_on_commit_callbacks(execute=True):
        delivery = submit(partner)
    make_due(delivery)
    outbox.deliveries_sweep()

    assert (fresh(delivery).status, fresh(delivery).attempt_count) == ("dead", 2)


def test_a_401_fails_and_marks_the_site_doubtful(partner, site, rg, django_capture_on_commit_callbacks):
    rg.answer((401, '{"error": "Unauthorized"}'))
    with django_capture_on_commit_callbacks(execute=True):
        delivery = submit(partner)

    assert fresh(delivery).status == "failed"
    assert Site.objects.get(pk=site.pk).status == Site.Status.DOUBTFUL


def test_an_update_waits_for_the_leads_create_and_follows_it(partner, site, rg, django_capture_on_commit_callbacks):
    rg.answer((503, "{}"))
    with django_capture_on_commit_callbacks(execute=True):
        create = submit(partner)
        update = submit(partner, "update_lead", {"notes": "Call after 5pm"}, lead_id=LEAD_ID)
        activities = submit(partner, "add_activities", [{"type": "note", "description": "hi"}], lead_id=LEAD_ID)

    assert fresh(create).status == "retrying"
    # Only the head of a lead's queue is ever claimed: the others were not attempted at all.
    assert (fresh(update).status, fresh(activities).status) == ("pending", "pending")
    assert (fresh(update).attempt_count, fresh(activities).attempt_count) == (0, 0)
    make_due(create)
    with django_capture_on_commit_callbacks(execute=True):
        outbox.deliveries_sweep()

    assert [fresh(d).status for d in (create, update, activities)] == ["delivered"] * 3
    assert [op for op in rg.operations()] == [
        ("POST", f"/rest/sites/{SITE_UUID}/leads"),
        ("POST", f"/rest/sites/{SITE_UUID}/leads"),
        ("PATCH", f"/rest/sites/{SITE_UUID}/leads/{LEAD_ID}"),
        ("POST", f"/rest/sites/{SITE_UUID}/leads/{LEAD_ID}/activities"),
    ]


def test_an_update_behind_a_failed_create_waits_until_a_resend_succeeds(
    partner, site, rg, django_capture_on_commit_callbacks
):
    rg.answer((422, '{"error": "nope"}'))
    with django_capture_on_commit_callbacks(execute=True):
        create = submit(partner)
        update = submit(partner, "update_lead", {"notes": "x"}, lead_id=LEAD_ID)
    assert (fresh(create).status, fresh(update).status) == ("failed", "waiting")
    assert fresh(update).last_error == "Waiting for the lead's create to be delivered."

    with django_capture_on_commit_callbacks(execute=True):
        resend = lead_resend(lead=Lead.objects.get())

    assert (fresh(resend).status, fresh(update).status) == ("delivered", "delivered")
    assert rg.calls[1][2]["id"] == str(LEAD_ID) and rg.calls[1][2]["notes"] == "x"
    assert Lead.objects.get().status == "delivered"


def test_a_delivery_for_an_ungranted_site_is_held_then_sent_when_the_grant_arrives(
    partner, rg, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        delivery = submit(partner, site_uuid=OTHER_SITE_UUID)
    assert fresh(delivery).status == "held" and rg.calls == []
    site = Site.objects.get(site_uuid=OTHER_SITE_UUID)
    assert (site.status, site.source) == ("pending", "api")
    assert Lead.objects.get().status == "held"

    with django_capture_on_commit_callbacks(execute=True):
        site_grant(partner=partner, site_uuid=OTHER_SITE_UUID, source=Site.Source.COMMAND)

    assert fresh(delivery).status == "delivered"
    assert rg.operations() == [("POST", f"/rest/sites/{OTHER_SITE_UUID}/leads")]


def test_held_deliveries_older_than_the_limit_fail_with_a_reason(
    partner, rg, settings, django_capture_on_commit_callbacks
):
    settings.DELIVERY_HELD_MAX_AGE_HOURS = 48
    with django_capture_on_commit_callbacks(execute=True):
        delivery = submit(partner, site_uuid=OTHER_SITE_UUID)
    Delivery.objects.filter(pk=delivery.pk).update(created=timezone.now() - timedelta(hours=49))

    outbox.deliveries_sweep()

    delivery = fresh(delivery)
    assert delivery.status == "failed"
    assert delivery.last_error == "The site was not granted to this partner within 2 days; grant it, then retry."


def claim(token: uuid.UUID | None = None, **kwargs) -> list[outbox.Claimed]:
    pump = engine.Pump()
    return outbox.deliveries_claim(
        slots=kwargs.pop("slots", 10), token=token or uuid.uuid4(), credentials_for=pump.credentials_for, **kwargs
    )


def test_a_claim_is_exclusive_until_its_lease_runs_out(partner, site, rg):
    delivery = submit(partner)  # not committed: nothing published

    assert [c.delivery_id for c in claim()] == [delivery.pk]
    assert claim() == []
    assert claim(lease_expired_too=True) == []  # the lease is still running
    assert rg.calls == []
    attempt = fresh(delivery).attempts.get()
    assert (attempt.outcome, attempt.number, fresh(delivery).status) == ("started", 1, "claimed")


def test_a_dead_workers_claim_is_swept_and_the_delivery_finished_once(
    partner, site, rg, django_capture_on_commit_callbacks
):
    delivery = submit(partner)
    assert len(claim()) == 1  # a worker claims it, writes its attempt row, and is killed
    Delivery.objects.filter(pk=delivery.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))

    result = outbox.deliveries_sweep()

    assert result.due
    delivery = fresh(delivery)
    assert (delivery.status, delivery.attempt_count, len(rg.calls)) == ("delivered", 2, 1)
    first, second = delivery.attempts.order_by("number")
    assert (first.outcome, first.error) == ("interrupted", outbox.INTERRUPTED)
    assert (second.outcome, second.trigger) == ("delivered", "sweeper")


def test_the_sweeper_asks_for_a_pump_only_when_something_is_due(partner, site, rg):
    run_tasks_inline(False)
    delivery = submit(partner)
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() + timedelta(minutes=1))
    assert outbox.deliveries_sweep().due is False

    make_due(delivery)
    assert outbox.deliveries_sweep().due is True


def test_a_submission_succeeds_with_the_broker_down_and_the_sweeper_publishes_it_later(
    partner, site, rg, broker_down, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        delivery = submit(partner)
    assert fresh(delivery).status == "pending"

    run_tasks_inline(True)  # the broker is back
    outbox.deliveries_sweep()

    assert fresh(delivery).status == "delivered" and len(rg.calls) == 1


def test_a_manual_retry_gets_a_fresh_budget_and_names_who_asked(
    partner, site, rg, settings, admin_user, django_capture_on_commit_callbacks
):
    settings.DELIVERY_MAX_ATTEMPTS = 1
    rg.answer((503, "{}"), (503, "{}"))
    with django_capture_on_commit_callbacks(execute=True):
        delivery = submit(partner)
    assert fresh(delivery).status == "dead"

    with django_capture_on_commit_callbacks(execute=True):
        delivery_retry(delivery=fresh(delivery), actor=admin_user)
    assert fresh(delivery).status == "dead"
    with django_capture_on_commit_callbacks(execute=True):
        delivery_retry(delivery=fresh(delivery), actor=admin_user)

    delivery = fresh(delivery)
    assert (delivery.status, delivery.attempt_count) == ("delivered", 3)
    assert [(a.trigger, a.actor) for a in delivery.attempts.order_by("number")] == [
        ("automatic", None),
        ("manual", admin_user),
        ("manual", admin_user),
    ]
    with pytest.raises(DeliveryStateError):
        delivery_retry(delivery=delivery)
