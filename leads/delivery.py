"""Delivering the outbox: one attempt at one delivery, the sweeper, releasing held deliveries.

A worker claims a row with a conditional UPDATE and a lease, so a delivery is in flight in at
most one place; a killed worker's claim runs out and the sweeper hands the row to another.
"""

import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Optional

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from grants.models import Site
from grants.services import site_mark_doubtful
from leads import queue, realgeeks, retry
from leads.models import CREATING_OPERATIONS, Delivery, DeliveryAttempt, Lead

logger = logging.getLogger(__name__)

WAITING_FOR_CREATE = "Waiting for the lead's create to be delivered."
WAITING_FOR_EARLIER = "Waiting for an earlier delivery of this lead."
INTERRUPTED = "The worker stopped before this attempt finished; the delivery was handed to another."


def _claimable(now: datetime) -> Q:
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    return (Q(status__in=[Delivery.Status.PENDING, Delivery.Status.RETRYING]) & due) | Q(
        status=Delivery.Status.CLAIMED, claimed_until__lt=now
    )


def delivery_claim(*, delivery_id: int) -> Optional[uuid.UUID]:
    """Take the delivery for this worker if it is due and nobody holds a live claim; the token
    names the claim, or None when another worker has it or it is not due."""
    now, token = timezone.now(), uuid.uuid4()
    changed = (
        Delivery.objects.filter(pk=delivery_id)
        .filter(_claimable(now))
        .update(status=Delivery.Status.CLAIMED, claimed_until=retry.lease_until(now), claim_token=token, updated=now)
    )
    return token if changed == 1 else None


def delivery_attempt(*, delivery_id: int, trigger: str) -> Optional[str]:
    """Claim, check order and grant, call RG once, record the attempt and what comes next.

    Returns the delivery's status afterwards, or None when it could not be claimed.
    """
    token = delivery_claim(delivery_id=delivery_id)
    if token is None:
        return None
    delivery = Delivery.objects.select_related("lead__site", "lead__partner").get(pk=delivery_id)
    DeliveryAttempt.objects.filter(delivery=delivery, outcome=DeliveryAttempt.Outcome.STARTED).update(
        outcome=DeliveryAttempt.Outcome.INTERRUPTED, error=INTERRUPTED
    )
    parked = _park_if_blocked(delivery, token)
    if parked:
        return parked
    attempt = _attempt_start(delivery, token, trigger)
    started = time.monotonic()
    partner, site = delivery.lead.partner, delivery.lead.site
    creds = realgeeks.Credentials(partner.api_url(), partner.rg_username, partner.rg_password)
    try:
        reply = realgeeks.call(
            delivery.operation,
            creds,
            site_uuid=site.site_uuid,
            lead_id=delivery.lead.lead_id,
            payload=delivery.payload,
        )
        result = _Result(status=reply.status, body=reply.text, error=None)
    except realgeeks.RealGeeksError as exc:
        result = _Result(status=exc.status, body=exc.body, error=exc)
    result.duration_ms = int((time.monotonic() - started) * 1000)
    status = _attempt_finish(delivery, attempt, token, result)
    if result.error is not None and result.error.status == 401:
        site_mark_doubtful(site=site, note=f"Real Geeks answered 401 to delivery {delivery.public_id}.")
    return status


def _park_if_blocked(delivery: Delivery, token: uuid.UUID) -> Optional[str]:
    """Put the delivery back as waiting (order) or held (grant) if it may not go now."""
    with transaction.atomic():
        lead = Lead.objects.lock(delivery.lead_id)
        earlier = lead.deliveries.filter(sequence__lt=delivery.sequence, status__in=Delivery.BLOCKING_STATUSES)
        if earlier.exists():
            status, reason = Delivery.Status.WAITING, WAITING_FOR_EARLIER
        elif delivery.lead_must_exist_first() and not _lead_exists_at_rg(lead):
            status, reason = Delivery.Status.WAITING, WAITING_FOR_CREATE
        elif not Site.objects.get(pk=lead.site_id).is_sendable:
            status = Delivery.Status.HELD
            reason = f"Site {lead.site.site_uuid} is not granted to this partner yet."
        else:
            return None
        Delivery.objects.filter(pk=delivery.pk, claim_token=token).update(
            status=status,
            last_error=reason,
            next_attempt_at=None,
            claimed_until=None,
            claim_token=None,
            updated=timezone.now(),
        )
        lead.refresh_status()
    return status


def _lead_exists_at_rg(lead: Lead) -> bool:
    if lead.created_elsewhere:
        return True
    return lead.deliveries.filter(operation__in=CREATING_OPERATIONS, status=Delivery.Status.DELIVERED).exists()


def _attempt_start(delivery: Delivery, token: uuid.UUID, trigger: str) -> DeliveryAttempt:
    """The attempt row, written before the call so a crash mid-call still leaves a trace."""
    lead, partner = delivery.lead, delivery.lead.partner
    ep = realgeeks.endpoint(
        delivery.operation, base_url=partner.api_url(), site_uuid=lead.site.site_uuid, lead_id=lead.lead_id
    )
    now = timezone.now()
    manual = trigger in (DeliveryAttempt.Trigger.MANUAL, DeliveryAttempt.Trigger.BULK)
    with transaction.atomic():
        delivery.attempt_count += 1
        Delivery.objects.filter(pk=delivery.pk, claim_token=token).update(
            attempt_count=delivery.attempt_count, last_attempt_at=now, retry_requested_by=None, updated=now
        )
        return DeliveryAttempt.objects.create(
            delivery=delivery,
            number=delivery.attempt_count,
            trigger=trigger,
            actor=(delivery.retry_requested_by or delivery.actor) if manual else None,
            started=now,
            request_method=ep.method,
            request_url=ep.url,
            request_body=json.dumps(delivery.payload),
        )


@dataclass
class _Result:
    status: Optional[int]
    body: str
    error: Optional[realgeeks.RealGeeksError]
    duration_ms: int = 0


def _attempt_finish(delivery: Delivery, attempt: DeliveryAttempt, token: uuid.UUID, result: _Result) -> str:
    now = timezone.now()
    if result.error is None:
        verdict = retry.DELIVERED
    else:
        budget_used = delivery.attempt_count - delivery.attempts_before_retry
        verdict = retry.verdict_for_error(result.error, attempt_count=budget_used, now=now)
    error = result.error.message if result.error else ""
    with transaction.atomic():
        lead = Lead.objects.lock(delivery.lead_id)
        attempt.duration_ms = result.duration_ms
        attempt.response_status = result.status
        attempt.response_body = (result.body or "")[: settings.ATTEMPT_BODY_MAX_CHARS]
        attempt.error = error[:500]
        attempt.outcome = verdict.outcome
        attempt.next_attempt_at = verdict.next_attempt_at
        attempt.save()
        recorded = Delivery.objects.filter(pk=delivery.pk, claim_token=token).update(
            status=verdict.status,
            next_attempt_at=verdict.next_attempt_at,
            enqueued_at=None,
            claimed_until=None,
            claim_token=None,
            last_status_code=result.status,
            last_error=error[:500],
            delivered_at=now if verdict.status == Delivery.Status.DELIVERED else None,
            updated=now,
        )
        if not recorded:
            # The lease ran out mid-call and another worker took over; its outcome will count.
            logger.warning("delivery %s: claim lost before the outcome was recorded", delivery.pk)
            return verdict.status
        if verdict.status in Delivery.TERMINAL_STATUSES:
            deliveries_release_waiting(lead=lead)
        lead.refresh_status()
    logger.info("delivery %s attempt %s: %s", delivery.pk, attempt.number, verdict.status)
    return verdict.status


def deliveries_release_waiting(*, lead: Lead) -> list[int]:
    """Make the lead's waiting deliveries due again (each re-checks order when claimed).

    Call inside a transaction holding the lead's lock, after one of its deliveries finished.
    """
    now = timezone.now()
    ids = list(lead.deliveries.filter(status=Delivery.Status.WAITING).values_list("pk", flat=True))
    Delivery.objects.filter(pk__in=ids).update(status=Delivery.Status.PENDING, next_attempt_at=now, updated=now)
    queue.publish_on_commit(delivery_ids=ids, trigger=DeliveryAttempt.Trigger.AUTOMATIC)
    return ids


@transaction.atomic
def deliveries_release_held(*, site: Site) -> int:
    """The site may be sent to now: its held deliveries become due and are published."""
    if not Site.objects.get(pk=site.pk).is_sendable:
        return 0
    now = timezone.now()
    ids = list(
        Delivery.objects.filter(status=Delivery.Status.HELD, lead__site=site).values_list("pk", flat=True)[
            : settings.DELIVERY_SWEEP_BATCH
        ]
    )
    Delivery.objects.filter(pk__in=ids).update(
        status=Delivery.Status.PENDING, next_attempt_at=now, last_error="", updated=now
    )
    for lead in Lead.objects.filter(deliveries__pk__in=ids).distinct():
        lead.refresh_status()
    queue.publish_on_commit(delivery_ids=ids, trigger=DeliveryAttempt.Trigger.AUTOMATIC)
    return len(ids)


@dataclass(frozen=True)
class SweepResult:
    published: int
    released: int
    expired: int


def deliveries_sweep() -> SweepResult:
    """Publish what is due and was not picked up (lost message, killed worker, broker outage),
    release held deliveries whose site is now granted, fail those held too long."""
    now = timezone.now()
    expired = _held_expire(now)
    released = 0
    granted = Site.objects.sendable().filter(leads__deliveries__status=Delivery.Status.HELD).distinct()
    for site in granted[: settings.DELIVERY_SWEEP_BATCH]:
        released += deliveries_release_held(site=site)
    not_published_recently = Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=retry.requeue_cutoff(now))
    due = Q(status__in=[Delivery.Status.PENDING, Delivery.Status.RETRYING], next_attempt_at__lte=now) | Q(
        status=Delivery.Status.CLAIMED, claimed_until__lt=now
    )
    ids = list(
        Delivery.objects.filter(due & not_published_recently)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[: settings.DELIVERY_SWEEP_BATCH]
    )
    Delivery.objects.filter(pk__in=ids).update(enqueued_at=now)
    published = sum(queue.publish(delivery_id=pk, trigger=DeliveryAttempt.Trigger.SWEEPER) for pk in ids)
    if ids or released or expired:
        logger.info("sweep: published %s of %s, released %s, expired %s", published, len(ids), released, expired)
    return SweepResult(published=published, released=released, expired=expired)


def _held_expire(now: datetime) -> int:
    """Fail deliveries held longer than DELIVERY_HELD_MAX_AGE_HOURS, saying why."""
    ids = list(
        Delivery.objects.filter(status=Delivery.Status.HELD, created__lt=retry.held_too_long_before(now)).values_list(
            "pk", flat=True
        )[: settings.DELIVERY_SWEEP_BATCH]
    )
    for pk in ids:
        with transaction.atomic():
            delivery = Delivery.objects.get(pk=pk)
            lead = Lead.objects.lock(delivery.lead_id)
            changed = Delivery.objects.filter(pk=pk, status=Delivery.Status.HELD).update(
                status=Delivery.Status.FAILED,
                last_error=retry.held_too_long_reason(),
                next_attempt_at=None,
                updated=now,
            )
            if changed:
                deliveries_release_waiting(lead=lead)
                lead.refresh_status()
    return len(ids)
