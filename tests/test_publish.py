"""Publishing a task for stored work (partner_portal.publish): after the commit, and a broker that
is down never fails the caller and never has its URL logged."""

import logging
from typing import Any

import pytest
from django.db import transaction
from kombu.exceptions import OperationalError

from leads import tasks
from partner_portal.hints import HintThrottle
from partner_portal.publish import hint, hint_interval, publish, publish_on_commit

pytestmark = pytest.mark.django_db(transaction=True)  # autocommit, as a request runs


@pytest.fixture
def published(settings: Any, monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """The bulk retry jobs published, recorded at the broker's edge; tasks are not eager here."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    sent: list[tuple[Any, ...]] = []
    monkeypatch.setattr(tasks.bulk_retry_run_task, "delay", lambda *args: sent.append(args))
    return sent


def test_a_publish_inside_a_transaction_waits_for_the_commit(published):
    with transaction.atomic():
        publish_on_commit(tasks.bulk_retry_run_task, 42, then="it is resumed")
        assert published == []

    assert published == [(42,)]


def test_a_publish_outside_a_transaction_goes_at_once(published):
    publish_on_commit(tasks.bulk_retry_run_task, 42, then="it is resumed")

    assert published == [(42,)]


def test_a_down_broker_is_logged_with_the_task_and_who_asks_again_never_its_url(monkeypatch, caplog):
    def refused(*args: Any) -> None:
        raise OperationalError("Error 111 connecting to redis://:hunter2@broker.internal:6379/0.")

    monkeypatch.setattr(tasks.bulk_retry_run_task, "delay", refused)
    with caplog.at_level(logging.WARNING, logger="partner_portal.publish"):
        assert publish(tasks.bulk_retry_run_task, 42, then="bulk_retries_resume publishes it again") is False

    assert caplog.messages == [
        "could not publish leads.tasks.bulk_retry_run_task(42) (OperationalError); "
        "bulk_retries_resume publishes it again"
    ]
    assert "hunter2" not in caplog.text


def test_with_eager_tasks_no_hint_is_throttled_and_none_covers_for_another(settings, monkeypatch):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    ran: list[str] = []
    monkeypatch.setattr(tasks.deliveries_pump_task, "delay", lambda: ran.append("pump"))
    throttle = HintThrottle()

    assert hint(throttle, tasks.deliveries_pump_task, interval=60.0, then="the sweeper asks again") is True
    assert hint(throttle, tasks.deliveries_pump_task, interval=60.0, then="the sweeper asks again") is True
    assert ran == ["pump", "pump"]
    assert not throttle.quiet()
    assert hint_interval(60.0) == 0.0
