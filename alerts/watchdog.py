"""The worker-heartbeat watchdog, which runs inside Celery beat.

The other rules are evaluated by a beat task that a worker runs, which cannot tell that no
worker runs at all. So beat, the one process of its kind in a deployment, starts this thread:
every ALERTS_EVALUATE_SECONDS it evaluates the heartbeat rule and sends the notices due to
operator channels itself, through no broker and no worker. Its first look waits
ALERTS_HEARTBEAT_MINUTES, so workers starting alongside beat have time for their first beat.
"""

import logging
import threading
import time
from typing import Any

from celery.signals import beat_init
from django.conf import settings
from django.db import close_old_connections

from alerts import incidents, rules, sending

logger = logging.getLogger(__name__)


def watchdog_tick() -> None:
    """One look: the heartbeat rule, then the operator channels' due notices. Never raises (the
    thread must outlive a database that is briefly away)."""
    try:
        incidents.incidents_evaluate(rules=rules.WATCHDOG_RULES)
        sending.notifications_send(operators_only=True)
    except Exception:
        logger.exception("alerts watchdog: this look failed; trying again in %ss", settings.ALERTS_EVALUATE_SECONDS)
    finally:
        close_old_connections()


def _watch() -> None:
    time.sleep(settings.ALERTS_HEARTBEAT_MINUTES * 60)
    while True:
        watchdog_tick()
        time.sleep(settings.ALERTS_EVALUATE_SECONDS)


@beat_init.connect(dispatch_uid="alerts.watchdog")
def watchdog_start(sender: Any = None, **kwargs: Any) -> None:
    threading.Thread(target=_watch, name="alerts-watchdog", daemon=True).start()
    logger.info("alerts watchdog started: worker heartbeats are checked from beat")
