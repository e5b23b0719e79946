"""Publishing delivery tasks. The outbox row is the truth; a message is only a hint to hurry."""

import logging

from django.db import transaction
from django.utils import timezone

from leads.models import Delivery

logger = logging.getLogger(__name__)


def publish(*, delivery_id: int, trigger: str) -> bool:
    """Ask a worker to attempt the delivery now. Never raises: with the broker down the request
    still succeeds, and the sweeper publishes the row once the broker is back."""
    # Imported here because the task module imports the services that call this one.
    from leads.tasks import delivery_attempt_task

    try:
        delivery_attempt_task.delay(delivery_id, trigger)
    except Exception as exc:  # any broker failure: the row stays due and the sweeper retries it
        logger.warning("could not publish delivery %s (%s); the sweeper will", delivery_id, type(exc).__name__)
        # Clearing enqueued_at makes the next sweep publish it without waiting for the requeue age.
        Delivery.objects.filter(pk=delivery_id, enqueued_at__isnull=False).update(enqueued_at=None)
        return False
    return True


def publish_on_commit(*, delivery_ids: list[int], trigger: str) -> None:
    """Mark the deliveries published now and publish them once the current transaction commits."""
    if not delivery_ids:
        return
    Delivery.objects.filter(pk__in=delivery_ids).update(enqueued_at=timezone.now())
    for delivery_id in delivery_ids:
        transaction.on_commit(lambda d=delivery_id: publish(delivery_id=d, trigger=trigger))  # type: ignore[misc]
