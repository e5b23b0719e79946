"""Celery tasks for site grants. Each takes an id (or nothing) and calls one service."""

from celery import shared_task

from grants import callbacks, imap


@shared_task
def webhook_event_process(event_id: int) -> None:
    callbacks.webhook_event_process(event_id=event_id)


@shared_task
def webhook_events_requeue() -> int:
    """Beat: callbacks whose broker message was lost or whose worker died go round again."""
    return callbacks.webhook_events_requeue()


@shared_task
def grant_mailbox_poll() -> int:
    """Beat (when GRANT_IMAP_HOST is set): read new grant emails from the mailbox."""
    return imap.grant_mailbox_poll()
