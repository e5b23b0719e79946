"""Asking a worker to run a delivery pump. The outbox rows are the truth; a message is a hint.

A pump claims whatever is due, so one hint serves every lead accepted meanwhile. A web process
therefore publishes at most one hint per PUMP_HINT_INTERVAL: a pump started by the previous
hint is still running (it lingers DELIVERY_PUMP_IDLE_SECONDS, far longer, before it stops for
lack of work) and finds the new delivery on its next claim.
"""

import logging
import threading
import time

from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)

# Each publish costs the web process a broker round trip and kombu's CPU; twice a second is
# plenty while a pump lingers DELIVERY_PUMP_IDLE_SECONDS.
PUMP_HINT_INTERVAL = 0.5

_last_hint = 0.0
_lock = threading.Lock()


def pump_hint(*, force: bool = False) -> bool:
    """Publish a pump task unless one was published moments ago. Never raises: with the broker
    down the request still succeeds, and the sweeper asks again once the broker is back."""
    global _last_hint
    # Imported here because the task module imports the services that call this one.
    from leads.tasks import deliveries_pump_task

    eager = settings.CELERY_TASK_ALWAYS_EAGER
    with _lock:
        now = time.monotonic()
        # The interval must stay well under the pump's idle linger, or a throttled hint could
        # leave a delivery for the sweeper (see the module docstring).
        if not (force or eager) and now - _last_hint < min(PUMP_HINT_INTERVAL, settings.DELIVERY_PUMP_IDLE_SECONDS / 2):
            return False
        _last_hint = now
    try:
        deliveries_pump_task.delay()
    except Exception as exc:  # any broker failure: the rows stay due and the sweeper asks again
        logger.warning("could not publish a delivery pump (%s); the sweeper will", type(exc).__name__)
        with _lock:
            _last_hint = 0.0
        return False
    return True


def pump_hint_on_commit() -> None:
    """Ask for a pump once the current transaction has committed what it should deliver."""
    transaction.on_commit(pump_hint)
