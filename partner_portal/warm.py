"""Readying a freshly started web worker before it takes its first connection.

A cold worker imports every view module, DRF's classes and the database driver's adapters on its
first requests. Measured with six workers starting together on two cores, those first requests
took about 2 s, the whole of RG's client's timeout, and every restart or deploy paid it again.
gunicorn calls `warm` (gunicorn.conf.py's `post_worker_init`) before the worker accepts anything,
so the cost lands where no request waits on it: the other workers keep serving meanwhile.
"""

import logging

from django.db import connections
from django.urls import get_resolver

from partner_portal.celery import app as celery_app

log = logging.getLogger(__name__)


def warm() -> None:
    """Import every view, build Celery's tasks and producers, and open and close one database connection.
    Never raises: a worker that could not warm up still serves, only more slowly at first."""
    try:
        get_resolver().reverse_dict  # noqa: B018  imports the URLconf: every view and serializer
        # A push's first processing hint paid 0.3 s for these: Celery's task registry, its result
        # backend and kombu's transport, all built on first use.
        celery_app.finalize(auto=True)
        celery_app.backend  # noqa: B018
        celery_app.producer_pool  # noqa: B018
        connections["default"].ensure_connection()
    except Exception:  # the database may be down at boot; /healthz reports that, not this
        log.warning("web worker warm-up incomplete", exc_info=True)
    finally:
        # The connection belongs to gunicorn's main thread, which never serves a request: closing
        # it keeps one idle PostgreSQL connection per worker from lingering.
        connections.close_all()
