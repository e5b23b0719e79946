"""Celery tasks: each calls one service."""

from celery import shared_task

from leads import bulk, delivery, engine


@shared_task(ignore_result=True)
def deliveries_pump_task() -> None:
    engine.pump_run()


@shared_task(ignore_result=True)
def deliveries_sweep_task() -> None:
    delivery.deliveries_sweep()


@shared_task(ignore_result=True)
def bulk_retry_run_task(job_id: int) -> None:
    bulk.bulk_retry_run(job_id=job_id)


@shared_task(ignore_result=True)
def bulk_retries_resume_task() -> None:
    bulk.bulk_retries_resume()
