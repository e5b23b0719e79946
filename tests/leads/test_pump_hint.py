"""How often a web process asks for a delivery pump (leads.queue, partner_portal.hints): a hint
only asks a worker to look at the outbox, so one per interval serves every push meanwhile."""

from typing import Any

import pytest
from django.db import transaction

from leads import queue, tasks
from partner_portal import hints
from partner_portal.hints import HintThrottle
from tests.clock import ManualClock

pytestmark = pytest.mark.django_db(transaction=True)  # autocommit, as a push runs


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> ManualClock:
    clock = ManualClock()
    monkeypatch.setattr(hints, "monotonic", clock)
    return clock


@pytest.fixture
def published(settings: Any, monkeypatch: pytest.MonkeyPatch, clock: ManualClock) -> list[float]:
    """When each pump was published, at the broker's edge; tasks are not eager here."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.DELIVERY_PUMP_IDLE_SECONDS = 2.0
    sent: list[float] = []
    monkeypatch.setattr(tasks.deliveries_pump_task, "delay", lambda: sent.append(clock.now))
    monkeypatch.setattr(queue, "_hints", HintThrottle())
    return sent


def test_outside_a_transaction_one_pump_is_asked_for_per_interval(published, clock):
    for _ in range(3):
        queue.pump_hint_on_commit()
    clock.now += queue.PUMP_HINT_INTERVAL / 2
    queue.pump_hint_on_commit()  # the pump asked for half an interval ago finds this one's lead
    clock.now += queue.PUMP_HINT_INTERVAL / 2
    queue.pump_hint_on_commit()

    assert published == [1000.0, 1000.0 + queue.PUMP_HINT_INTERVAL]


def test_the_interval_stays_under_half_the_pumps_idle_linger(published, clock, settings):
    settings.DELIVERY_PUMP_IDLE_SECONDS = 0.2
    queue.pump_hint_on_commit()
    clock.now += 0.1
    queue.pump_hint_on_commit()

    assert published == [1000.0, 1000.1]


def test_inside_a_transaction_the_question_waits_for_the_commit(published, clock):
    queue.pump_hint_on_commit()
    with transaction.atomic():
        queue.pump_hint_on_commit()  # quiet now, but the commit comes after the interval
        clock.now += queue.PUMP_HINT_INTERVAL

    assert published == [1000.0, 1000.0 + queue.PUMP_HINT_INTERVAL]


def test_a_pump_the_broker_refused_does_not_hold_back_the_next(published, clock, monkeypatch):
    def refused() -> None:
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(tasks.deliveries_pump_task, "delay", refused)
    assert queue.pump_hint() is False
    monkeypatch.setattr(tasks.deliveries_pump_task, "delay", lambda: published.append(clock.now))

    assert queue.pump_hint() is True  # the broker is back: asked at once, not an interval later
    assert published == [1000.0]


def test_a_forced_hint_ignores_the_interval(published, clock):
    assert queue.pump_hint() is True
    assert queue.pump_hint() is False
    assert queue.pump_hint(force=True) is True
    assert published == [1000.0, 1000.0]


def test_with_eager_tasks_every_hint_runs(published, clock, settings):
    queue.pump_hint_on_commit()  # a quiet interval begins
    settings.CELERY_TASK_ALWAYS_EAGER = True

    queue.pump_hint_on_commit()
    queue.pump_hint_on_commit()

    assert published == [1000.0] * 3


def test_one_publish_at_a_time():
    throttle = HintThrottle()

    assert throttle.start(0.0) is True
    assert throttle.start(0.0, force=True) is False  # one is under way: it asks for the same work
    throttle.done()
    assert throttle.start(0.0) is True
