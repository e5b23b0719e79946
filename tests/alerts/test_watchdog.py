"""The worker-heartbeat rule runs in beat's watchdog, which also sends the operator channels'
notices itself: when no worker runs, nothing else would. The beat task (a worker's) leaves it be."""

from datetime import timedelta
from unittest import mock

import pytest
from celery.signals import beat_init
from django.core import mail
from django.utils import timezone

from alerts import tasks, watchdog
from alerts.models import Incident, Notification
from core.models import WorkerHeartbeat

pytestmark = pytest.mark.django_db


def test_the_watchdog_opens_the_heartbeat_incident_and_emails_operators_with_no_worker(operator_channel, email_channel):
    WorkerHeartbeat.objects.create(hostname="worker1@host", last_seen=timezone.now() - timedelta(minutes=6))
    watchdog.watchdog_tick()
    incident = Incident.objects.get()
    assert (incident.rule, incident.partner) == (Incident.Rule.WORKERS_SILENT, None)
    (message,) = mail.outbox
    assert message.to == ["operators@portal.example"]
    assert message.subject.startswith("[Partner Portal] No worker heartbeat for 5 min")

    WorkerHeartbeat.objects.update(last_seen=timezone.now())
    watchdog.watchdog_tick()
    assert mail.outbox[-1].subject.startswith("[Partner Portal] Resolved: No worker heartbeat")
    assert not Notification.objects.filter(channel=email_channel).exists()


def test_a_failing_look_is_logged_and_the_watchdog_goes_on(caplog):
    with mock.patch("alerts.incidents.incidents_evaluate", side_effect=RuntimeError("database away")):
        watchdog.watchdog_tick()
    assert "alerts watchdog: this look failed" in caplog.text


def test_the_beat_task_evaluates_the_partner_rules_but_not_the_heartbeat(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    with mock.patch("alerts.incidents.incidents_evaluate", return_value=[]) as evaluate:
        tasks.alerts_evaluate_task.delay()
    rules = evaluate.call_args.kwargs["rules"]
    assert Incident.Rule.WORKERS_SILENT not in rules
    assert set(rules) | {Incident.Rule.WORKERS_SILENT} == set(Incident.Rule)


def test_the_watchdog_thread_starts_with_beat():
    with mock.patch("alerts.watchdog.threading.Thread") as thread:
        beat_init.send(sender=None)
    thread.assert_called_once()
    assert thread.call_args.kwargs["daemon"] is True
    thread.return_value.start.assert_called_once()
