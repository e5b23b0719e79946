"""Reachability checks for /healthz."""

from typing import Optional

from django.db import connection

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
