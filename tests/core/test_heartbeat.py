import socket
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from core.health import worker_heartbeat_record
from core.models import WorkerHeartbeat
from core.tasks import heartbeat_record
from partner_portal.celery import app as celery_app


@pytest.mark.django_db
def test_the_heartbeat_task_records_the_host_that_ran_it():
    heartbeat_record.apply()

    heartbeat = WorkerHeartbeat.objects.get()
    assert heartbeat.hostname == socket.gethostname()
    assert timezone.now() - heartbeat.last_seen < timedelta(seconds=5)


@pytest.mark.django_db
def test_a_worker_seen_again_moves_its_own_row_forward():
    WorkerHeartbeat.objects.create(hostname="worker1@box-a", last_seen=timezone.now() - timedelta(hours=1))
    WorkerHeartbeat.objects.create(hostname="worker2@box-b", last_seen=timezone.now() - timedelta(hours=1))

    worker_heartbeat_record(hostname="worker1@box-a")

    assert WorkerHeartbeat.objects.count() == 2
    refreshed = WorkerHeartbeat.objects.get(hostname="worker1@box-a")
    assert timezone.now() - refreshed.last_seen < timedelta(seconds=5)
    untouched = WorkerHeartbeat.objects.get(hostname="worker2@box-b")
    assert timezone.now() - untouched.last_seen > timedelta(minutes=59)


@pytest.mark.django_db
def test_healthz_reports_seconds_since_the_newest_heartbeat(client):
    WorkerHeartbeat.objects.create(hostname="worker1@box-a", last_seen=timezone.now() - timedelta(seconds=600))
    WorkerHeartbeat.objects.create(hostname="worker2@box-b", last_seen=timezone.now() - timedelta(seconds=42))

    body = client.get("/healthz").json()

    assert body["status"] == "ok"
    assert 42 <= body["workers_last_seen"] < 60


@pytest.mark.django_db
def test_healthz_stays_healthy_with_no_heartbeat_and_says_so(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["workers_last_seen"] is None


def test_beat_schedules_the_registered_heartbeat_task():
    entry = settings.CELERY_BEAT_SCHEDULE["portal-heartbeat"]
    celery_app.loader.import_default_modules()

    assert entry["task"] in celery_app.tasks
    assert entry["schedule"] == settings.WORKER_HEARTBEAT_SECONDS
