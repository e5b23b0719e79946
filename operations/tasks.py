"""Celery tasks of the operations app: each calls one service."""

from celery import shared_task
from django.conf import settings

from operations import retention


@shared_task(ignore_result=True)
def bodies_prune_task() -> None:
    """Scheduled hourly by beat. A prune with more to do than half the task time limit allows
    (the first one after an upgrade, or a shortened retention) hands over to another run."""
    results = retention.bodies_prune(budget_seconds=settings.CELERY_TASK_SOFT_TIME_LIMIT / 2)
    if not all(result.finished for result in results):
        bodies_prune_task.delay()
