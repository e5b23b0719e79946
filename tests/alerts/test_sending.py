"""Sending notices: email through Django's mail, Slack's JSON, Standard Webhooks signatures that
the reference implementation verifies, and retries with backoff whose every attempt is kept."""

import json
from datetime import timedelta

import pytest
import responses
import standardwebhooks
from django.core import mail

from alerts import sending
from alerts.incidents import incidents_evaluate
from alerts.models import Incident, Notification, NotificationAttempt
from alerts.services import channel_test
from grants.models import Site
from tests.alerts.conftest import later

pytestmark = pytest.mark.django_db

SLACK_URL = "https://hooks.slack.example/services/T000/B000/XXXX"
WEBHOOK_URL = "https://alerts.acme.example/portal"


def open_circuit_incident(site: Site) -> list[Notification]:
    Site.objects.filter(pk=site.pk).update(circuit_opened_at=later(0))
    return incidents_evaluate(rules=[Incident.Rule.CIRCUIT_OPEN], now=later(0))


def send_at(minutes: float) -> int:
    return sending.notifications_send(now=later(minutes))


def test_an_email_channel_sends_through_djangos_mail_to_each_address(site, email_channel, settings):
    settings.ALERTS_EMAIL_FROM = "Portal <alerts@portal.example>"
    open_circuit_incident(site)
    assert send_at(0) == 1
    (message,) = mail.outbox
    assert message.to == ["ops@acme.example", "oncall@acme.example"]
    assert message.from_email == "Portal <alerts@portal.example>"
    assert message.subject == "[Partner Portal] Deliveries to site Example Realty paused: its circuit is open"
    notification = Notification.objects.get()
    assert (notification.status, notification.attempt_count, notification.sent_at) == ("sent", 1, later(0))
    assert notification.attempts.get().outcome == NotificationAttempt.Outcome.SENT


def test_a_slack_channel_gets_the_text_as_slack_json(site, slack_channel):
    open_circuit_incident(site)
    with responses.RequestsMock() as rg:
        rg.post(SLACK_URL, body="ok")
        send_at(0)
        (call,) = rg.calls
    assert json.loads(call.request.body or b"") == {"text": Notification.objects.get().text}
    assert call.request.headers["Content-Type"] == "application/json"
    assert Notification.objects.get().status == Notification.Status.SENT


def test_a_signed_webhook_verifies_with_the_standard_webhooks_reference_implementation(site, webhook_channel):
    open_circuit_incident(site)
    with responses.RequestsMock() as receiver:
        receiver.post(WEBHOOK_URL, status=204)
        send_at(0)
        (call,) = receiver.calls
    headers = dict(call.request.headers)
    body = standardwebhooks.Webhook(webhook_channel.secret).verify(call.request.body or b"", headers)
    notification = Notification.objects.get()
    assert headers["webhook-id"] == notification.webhook_id
    assert body["type"] == "incident.opened"
    assert body["data"]["id"] == str(Incident.objects.get().public_id)
    assert "Authorization" not in headers
    # A receiver with another secret refuses it.
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook("whsec_" + "QUJD" * 8).verify(call.request.body or b"", headers)


def test_a_failing_webhook_is_retried_with_backoff_and_every_attempt_is_kept(site, webhook_channel):
    open_circuit_incident(site)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as receiver:
        receiver.post(WEBHOOK_URL, status=500, body="database is down")
        send_at(0)
        notification = Notification.objects.get()
        assert notification.status == Notification.Status.RETRYING
        assert notification.next_attempt_at == later(1)  # ALERTS_NOTIFY_RETRY_SECONDS
        assert send_at(0.9) == 0  # not due yet
        send_at(1)
        assert Notification.objects.get().next_attempt_at == later(3)  # the delay doubles
        receiver.replace(responses.POST, WEBHOOK_URL, status=200, body="thanks")
        send_at(3)
        calls = list(receiver.calls)
    notification = Notification.objects.get()
    assert (notification.status, notification.attempt_count, notification.last_error) == ("sent", 3, "")
    history = list(notification.attempts.values_list("number", "outcome", "status_code", "error", "response_excerpt"))
    assert history == [
        (1, "failed", 500, "HTTP 500", "database is down"),
        (2, "failed", 500, "HTTP 500", "database is down"),
        (3, "sent", 200, "", "thanks"),
    ]
    # One message, so one id for every retry (receivers drop duplicates by it); signed afresh each time.
    assert {call.request.headers["webhook-id"] for call in calls} == {notification.webhook_id}
    for call in calls:
        standardwebhooks.Webhook(webhook_channel.secret).verify(call.request.body or b"", dict(call.request.headers))


def test_a_notice_that_never_goes_through_fails_after_the_last_attempt(site, slack_channel):
    open_circuit_incident(site)
    with responses.RequestsMock() as receiver:
        receiver.post(SLACK_URL, status=404, body="no_service")
        for minutes in (0, 1, 3, 7):
            send_at(minutes)
        assert send_at(60) == 0
    notification = Notification.objects.get()
    assert (notification.status, notification.attempt_count) == ("failed", 4)
    assert notification.next_attempt_at is None and notification.last_status_code == 404


def test_a_connection_failure_is_an_attempt_with_a_reason_that_does_not_quote_the_url(site, slack_channel):
    open_circuit_incident(site)
    send_at(0)  # nothing is listening at the Slack URL's host (responses is not active here)
    attempt = NotificationAttempt.objects.get()
    assert attempt.outcome == "failed" and attempt.status_code is None
    assert attempt.error == "Could not connect to the channel's host."
    assert "XXXX" not in attempt.error


def test_a_notification_is_claimed_by_one_sender_only(site, email_channel):
    (notification,) = open_circuit_incident(site)
    assert sending._claim(notification.pk, later(0)) is not None
    assert sending._claim(notification.pk, later(0)) is None


def test_a_claim_whose_sender_died_is_taken_again_once_it_runs_out(site, email_channel, settings):
    (notification,) = open_circuit_incident(site)
    assert sending._claim(notification.pk, later(0)) is not None  # and the sender died here
    assert send_at(0.5) == 0
    lease = timedelta(seconds=2 * settings.ALERTS_HTTP_TIMEOUT_SECONDS + 31)
    assert sending.notifications_send(now=later(0) + lease) == 1
    assert len(mail.outbox) == 1
    notification.refresh_from_db()
    assert (notification.status, notification.attempt_count) == ("sent", 2)


def test_a_test_notice_is_sent_like_any_other(webhook_channel):
    channel_test(channel=webhook_channel)
    with responses.RequestsMock() as receiver:
        receiver.post(WEBHOOK_URL, status=200)
        sending.notifications_send()
        (call,) = receiver.calls
    body = standardwebhooks.Webhook(webhook_channel.secret).verify(call.request.body or b"", dict(call.request.headers))
    assert body["type"] == "alert.test"
    assert Notification.objects.get().event == Notification.Event.TEST


def test_retry_delays_double_up_to_an_hour(settings):
    settings.ALERTS_NOTIFY_RETRY_SECONDS = 60
    assert [sending.retry_delay_seconds(n) for n in (1, 2, 3, 7, 8)] == [60, 120, 240, 3600, 3600]
