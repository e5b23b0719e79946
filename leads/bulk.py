"""Acting on many deliveries at once: bulk retry jobs, and cancelling a site's held deliveries.

A bulk retry chooses its deliveries when it is created (the job's items), then a worker handles
them a chunk per task, each through `delivery_retry` in its own transaction, so progress is
visible as it happens and a crash loses at most the item in hand.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Optional

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from core.audit import audit_person_action
from grants.models import Partner, Site
from leads.delivery import DeliveryStateError, delivery_held_cancel, delivery_retry
from leads.models import BulkRetry, BulkRetryItem, Delivery, DeliveryAttempt, Lead
from partner_portal.publish import publish_on_commit

logger = logging.getLogger(__name__)

BULK_STATUSES = (Delivery.Status.FAILED, Delivery.Status.DEAD)


class BulkRetryError(Exception):
    """The job cannot be created as asked; the message says why, for staff."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class BulkFilter:
    """Which failed or dead deliveries of one partner to retry. Dates are inclusive, in UTC."""

    partner: Partner
    statuses: tuple[str, ...] = BULK_STATUSES
    site_uuid: Optional[uuid.UUID] = None
    operation: str = ""
    created_from: Optional[date] = None
    created_to: Optional[date] = None
    http_status: Optional[int] = None
    # Only what may pass on a second try: RG's 5xx answers and attempts RG never answered
    # (timeouts, refused connections). A 4xx would be refused again as it was.
    transient_only: bool = False

    def as_json(self) -> dict[str, Any]:
        """The filter as a job and its audit entry keep it: only what was set, as plain JSON."""
        values: dict[str, Any] = {
            "partner": self.partner.slug,
            "status": list(self.statuses),
            "site": str(self.site_uuid) if self.site_uuid else None,
            "operation": self.operation or None,
            "created_from": self.created_from.isoformat() if self.created_from else None,
            "created_to": self.created_to.isoformat() if self.created_to else None,
            "http_status": self.http_status,
            "transient_only": True if self.transient_only else None,
        }
        return {name: value for name, value in values.items() if value is not None}


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


def bulk_retry_candidates(*, filters: BulkFilter) -> QuerySet[Delivery]:
    """The partner's deliveries matching the filter, oldest first (the order a job takes them in)."""
    statuses = [s for s in filters.statuses if s in BULK_STATUSES] or list(BULK_STATUSES)
    deliveries = Delivery.objects.filter(lead__partner=filters.partner, status__in=statuses)
    if filters.site_uuid:
        deliveries = deliveries.filter(lead__site__site_uuid=filters.site_uuid)
    if filters.operation:
        deliveries = deliveries.filter(operation=filters.operation)
    if filters.created_from:
        deliveries = deliveries.filter(created__gte=_midnight(filters.created_from))
    if filters.created_to:
        deliveries = deliveries.filter(created__lt=_midnight(filters.created_to + timedelta(days=1)))
    if filters.http_status is not None:
        deliveries = deliveries.filter(last_status_code=filters.http_status)
    if filters.transient_only:
        # No status after an attempt is an attempt RG never answered; a delivery never attempted
        # (expired while held) has no status either and is no timeout.
        deliveries = deliveries.filter(
            Q(last_status_code__gte=500) | Q(last_status_code__isnull=True, last_attempt_at__isnull=False)
        )
    return deliveries.order_by("created", "id")


def bulk_retry_start(*, filters: BulkFilter, actor: Optional[User]) -> BulkRetry:
    """Create a job over the first BULK_RETRY_MAX_DELIVERIES matches and publish it on commit.

    Raises BulkRetryError when nothing matches.
    """
    with transaction.atomic():
        ids = list(
            bulk_retry_candidates(filters=filters).values_list("pk", flat=True)[: settings.BULK_RETRY_MAX_DELIVERIES]
        )
        if not ids:
            raise BulkRetryError("No failed or dead deliveries match this filter any more.")
        job = BulkRetry.objects.create(
            partner=filters.partner, created_by=actor, filters=filters.as_json(), total=len(ids)
        )
        BulkRetryItem.objects.bulk_create([BulkRetryItem(job=job, delivery_id=pk) for pk in ids], batch_size=1000)
        after = {"filters": job.filters, "count": job.total}
        audit_person_action(actor=actor, action="delivery.bulk_retry", obj=job, partner=job.partner, after=after)
        _publish_on_commit(job.pk)
    return job


def _publish_on_commit(job_id: int) -> None:
    # Imported here: the task module imports this one.
    from leads.tasks import bulk_retry_run_task

    publish_on_commit(bulk_retry_run_task, job_id, then="bulk_retries_resume publishes it again")


def bulk_retry_run(*, job_id: int) -> Optional[BulkRetry]:
    """Handle the job's next chunk of items; then publish the next chunk, or finish the job.

    Safe to run twice at once (a redelivered message): each item is claimed by a conditional
    UPDATE, so a delivery is retried once per job. A job that no longer exists (deleted with
    its partner while its message waited) is nothing to do: None.
    """
    now = timezone.now()
    BulkRetry.objects.filter(pk=job_id, state=BulkRetry.State.QUEUED).update(
        state=BulkRetry.State.RUNNING, started=now, updated=now
    )
    job = BulkRetry.objects.select_related("created_by").filter(pk=job_id).first()
    if job is None:
        logger.warning("bulk retry %s no longer exists; its message is dropped", job_id)
        return None
    if job.is_finished:
        return job
    pending = job.items.filter(result=BulkRetryItem.Result.PENDING).order_by("id")
    chunk = list(pending.values_list("pk", "delivery_id", "delivery__lead_id")[: settings.BULK_RETRY_CHUNK_SIZE])
    for item_id, delivery_id, lead_id in chunk:
        _item_retry(job, item_id=item_id, delivery_id=delivery_id, lead_id=lead_id)
    if pending.exists():
        _publish_on_commit(job_id)
    else:
        now = timezone.now()
        BulkRetry.objects.filter(pk=job_id).exclude(state=BulkRetry.State.FINISHED).update(
            state=BulkRetry.State.FINISHED, finished=now, updated=now
        )
    job.refresh_from_db()
    return job


def _item_retry(job: BulkRetry, *, item_id: int, delivery_id: int, lead_id: int) -> None:
    with transaction.atomic():
        if not BulkRetryItem.objects.filter(pk=item_id, result=BulkRetryItem.Result.PENDING).update(
            result=BulkRetryItem.Result.RETRIED
        ):
            return  # another run of this job took it
        Lead.objects.lock(lead_id)
        delivery = Delivery.objects.get(pk=delivery_id)
        note = ""
        if delivery.status not in BULK_STATUSES:
            # Someone retried, resent or cancelled it since the job was created: leave it be.
            note = f"It was {delivery.get_status_display().lower()} by the time the job reached it."
        else:
            try:
                with transaction.atomic():
                    delivery_retry(delivery=delivery, actor=job.created_by, trigger=DeliveryAttempt.Trigger.BULK)
            except DeliveryStateError as exc:
                note = exc.message
        if note:
            BulkRetryItem.objects.filter(pk=item_id).update(result=BulkRetryItem.Result.SKIPPED, note=note[:200])
        BulkRetry.objects.filter(pk=job.pk).update(
            done=F("done") + 1,
            retried=F("retried") + (0 if note else 1),
            skipped=F("skipped") + (1 if note else 0),
            updated=timezone.now(),
        )


def bulk_retries_resume() -> int:
    """Publish unfinished jobs that stopped moving (a lost message, a killed worker); how many."""
    now = timezone.now()
    stalled = BulkRetry.objects.exclude(state=BulkRetry.State.FINISHED).filter(
        updated__lt=now - timedelta(seconds=settings.BULK_RETRY_STALL_SECONDS)
    )
    ids = list(stalled.values_list("pk", flat=True)[:100])
    BulkRetry.objects.filter(pk__in=ids).update(updated=now)
    for job_id in ids:
        _publish_on_commit(job_id)
    if ids:
        logger.info("resumed %s stalled bulk retries", len(ids))
    return len(ids)


@dataclass(frozen=True)
class BulkProgress:
    """A job's progress and what became of the deliveries it retried, as the progress page shows it."""

    state: str
    total: int
    done: int
    retried: int
    skipped: int
    delivered: int
    failed_again: int
    in_flight: int

    @property
    def finished(self) -> bool:
        return self.state == BulkRetry.State.FINISHED

    @property
    def settled(self) -> bool:
        """Finished, and every retried delivery has an outcome (nothing left for the page to wait on)."""
        return self.finished and self.in_flight == 0

    def as_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "total": self.total,
            "done": self.done,
            "retried": self.retried,
            "skipped": self.skipped,
            "delivered": self.delivered,
            "failed_again": self.failed_again,
            "in_flight": self.in_flight,
            "finished": self.finished,
            "settled": self.settled,
        }


def bulk_retry_progress(*, job: BulkRetry) -> BulkProgress:
    """The job's counters, re-read, and the current status of the deliveries it retried."""
    job.refresh_from_db(fields=["state", "total", "done", "retried", "skipped"])
    rows = (
        Delivery.objects.filter(bulk_retry_items__job=job, bulk_retry_items__result=BulkRetryItem.Result.RETRIED)
        .values("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    by_status = {row["status"]: row["n"] for row in rows}
    delivered = by_status.pop(Delivery.Status.DELIVERED, 0)
    failed_again = sum(by_status.pop(status, 0) for status in BULK_STATUSES)
    by_status.pop(Delivery.Status.CANCELLED, None)
    return BulkProgress(
        state=job.state,
        total=job.total,
        done=job.done,
        retried=job.retried,
        skipped=job.skipped,
        delivered=delivered,
        failed_again=failed_again,
        in_flight=sum(by_status.values()),
    )


# Leads handled per click of "cancel held"; a larger backlog takes another click (the page says so).
CANCEL_HELD_BATCH = 1000
CANCELLED_WHILE_HELD = "Cancelled by staff while held for the site's grant."


@transaction.atomic
def deliveries_cancel_held(*, site: Site) -> int:
    """Cancel the site's held deliveries, and those waiting behind them on the same leads (they
    could never go once the held ones are cancelled). Returns how many were cancelled."""
    lead_ids = list(
        Lead.objects.filter(site=site, deliveries__status=Delivery.Status.HELD)
        .order_by("pk")
        .values_list("pk", flat=True)
        .distinct()[:CANCEL_HELD_BATCH]
    )
    return sum(delivery_held_cancel(lead_pk=lead_pk, reason=CANCELLED_WHILE_HELD) for lead_pk in lead_ids)
