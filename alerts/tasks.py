"""Celery tasks of the alerts app: each calls one service."""

from celery import shared_task

from alerts import incidents, rules, sending
from partner_portal.publish import publish


@shared_task(ignore_result=True)
def alerts_evaluate_task() -> None:
    """Scheduled by beat every ALERTS_EVALUATE_SECONDS: the per-partner rules."""
    if incidents.incidents_evaluate(rules=rules.WORKER_RULES):
        notifications_send_soon()


@shared_task(ignore_result=True)
def notifications_send_task() -> None:
    """Scheduled by beat too, so retries go out when due whatever happened to a message."""
    sending.notifications_send()


def notifications_send_soon() -> None:
    """Ask a worker to send what is due now. A broker that does not answer only delays it: beat
    schedules the same task every ALERTS_EVALUATE_SECONDS."""
    publish(notifications_send_task, then="beat's schedule sends them")
