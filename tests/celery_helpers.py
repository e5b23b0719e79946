"""Celery state that tests must reset by hand."""

from partner_portal.celery import app as celery_app


def drop_broker_connections() -> None:
    """Forget cached broker connections, so a changed broker URL is used from the next publish."""
    # Celery caches its producer pool per app.
    celery_app._pool = None  # type: ignore[attr-defined]
    celery_app.amqp._producer_pool = None  # type: ignore[attr-defined]
