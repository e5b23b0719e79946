"""Celery tasks for site grants. Each takes an id (or nothing) and calls one service."""

from celery import shared_task

from grants import callbacks, imap


@shared_task
def webhook_events_process() -> int:
    """Hinted after callbacks are stored: process every received callback."""
    return callbacks.webhook_events_process()


@shared_task
def webhook_event_process(event_id: int) -> int:
    """Messages from before callbacks were processed in batches named one event each: a batch
    run processes that event with the rest. Remove once no such message can be left queued."""
    return callbacks.webhook_events_process()


@shared_task
def webhook_events_requeue() -> int:
    """Beat: callbacks whose hint was lost or whose worker died go round again."""
    return callbacks.webhook_events_requeue()


@shared_task
def grant_mailbox_poll() -> int:
    """Beat (when GRANT_IMAP_HOST is set): read new grant emails from the mailbox."""
    return imap.grant_mailbox_poll()
