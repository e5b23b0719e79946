"""Is the portal able to work? Reachability checks for /healthz, and worker liveness.

A periodic task (`core.tasks.heartbeat_record`, registered under its old name
`portal.tasks.heartbeat_record`) records that a worker ran it; /healthz reports
how long ago that was. Worker liveness is reported, not judged: a load balancer must keep
sending web traffic while workers restart, since the outbox holds the work until they return.
"""

from typing import Optional

from django.db import connection
from django.utils import timezone

from core.models import WorkerHeartbeat
from partner_portal.celery import app as celery_app


def _reason(exc: Exception) -> str:
    # The class name and first line only: driver messages can carry hostnames, never more.
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first_line}"[:200]


def database_problem() -> Optional[str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any failure means "not reachable"; the reason is reported
        return _reason(exc)
    return None


def broker_problem() -> Optional[str]:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
    except Exception as exc:  # any failure means "not reachable"; the reason is reported
        return _reason(exc)
    return None


def worker_heartbeat_record(*, hostname: str) -> WorkerHeartbeat:
    """The worker's heartbeat row, created or moved to now."""
    heartbeat, _ = WorkerHeartbeat.objects.update_or_create(
        hostname=hostname[:200], defaults={"last_seen": timezone.now()}
    )
    return heartbeat


def workers_last_seen() -> Optional[float]:
    """Seconds since any worker last recorded a heartbeat; None if none ever did (or no database)."""
    try:
        newest = WorkerHeartbeat.objects.order_by("-last_seen").values_list("last_seen", flat=True).first()
    except Exception:  # the database problem is reported on its own; this figure is then unknown
        return None
    if newest is None:
        return None
    return round(max((timezone.now() - newest).total_seconds(), 0.0), 1)
