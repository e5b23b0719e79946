"""The Celery app. Configuration comes from settings (the CELERY_ names); tasks live in apps."""

import os
from typing import Any

from celery import Celery, signals
from kombu.transport import TRANSPORT_ALIASES  # type: ignore[attr-defined]

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "partner_portal.settings")

# `filesystem://` (the development default broker) means our transport, not kombu's: kombu's can
# hand the worker a half-written message, which kills it (partner_portal/broker.py). Every
# process (web publishing, beat, the worker consuming, manage.py) imports this module through
# the `partner_portal` package before it opens a broker connection.
TRANSPORT_ALIASES["filesystem"] = "partner_portal.broker:Transport"

app = Celery("partner_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
def _yield_the_cpu_to_the_web(**kwargs: Any) -> None:
    """Lower the worker's CPU priority (its pool's processes inherit it) by WORKER_NICENESS.

    Where web and worker share cores (`make run`, a small host) and both are busy, a product's
    push is waiting on an answer, under a 2 s timeout in RG's clients, while a delivery waits
    durably in the outbox. On a host of its own the worker loses nothing: priority only matters
    when something else wants the CPU.
    """
    from django.conf import settings

    niceness = settings.WORKER_NICENESS
    if niceness > 0:
        os.nice(niceness)
