"""Celery tasks: each takes an id and calls one service."""

from celery import shared_task

from leads import bulk, delivery


@shared_task(ignore_result=True)
def delivery_attempt_task(delivery_id: int, trigger: str) -> None:
    delivery.delivery_attempt(delivery_id=delivery_id, trigger=trigger)


@shared_task(ignore_result=True)
def deliveries_sweep_task() -> None:
    delivery.deliveries_sweep()


@shared_task(ignore_result=True)
def bulk_retry_run_task(job_id: int) -> None:
    bulk.bulk_retry_run(job_id=job_id)


@shared_task(ignore_result=True)
def bulk_retries_resume_task() -> None:
    bulk.bulk_retries_resume()
