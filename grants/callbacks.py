"""Destination callbacks: store once, process in a worker, record failures, reprocess on demand."""

import hashlib
import json
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Optional

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from grants import destination, inbound
from grants.destination import CallbackProblem
from grants.models import Partner, Site, WebhookEvent, WebhookRejection
from grants.services import site_grant, site_revoke

logger = logging.getLogger(__name__)

# An event still waiting this long after it arrived lost its broker message; the beat task
# enqueues it again (a duplicate message is harmless: processing claims the row first).
REQUEUE_AFTER = timedelta(minutes=2)
# A claim older than this belongs to a worker that died; well above CELERY_TASK_TIME_LIMIT.
CLAIM_TIMEOUT = timedelta(minutes=10)
REQUEUE_BATCH = 500


def _decode(body: bytes) -> Optional[dict[str, Any]]:
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError):
        # ValueError covers bad UTF-8 and bad JSON; RecursionError absurdly deep nesting.
        return None
    return decoded if isinstance(decoded, dict) else None


def _enqueue(event_id: int) -> None:
    from grants import tasks  # tasks import this module's services

    tasks.webhook_event_process.delay(event_id)


def _enqueue_on_commit(event_id: int) -> None:
    # robust: a broker that is down must not turn RG's 200 into a 500 after the row is stored;
    # the webhook_events_requeue beat task sends it later. (A lambda, not a partial: Django's
    # error log for a robust callback reads its __qualname__.)
    transaction.on_commit(lambda: _enqueue(event_id), robust=True)


def webhook_rejection_record(*, partner: Partner, reason: str, remote_addr: str = "") -> None:
    """Count a refused callback for staff. Nothing of its body is kept."""
    rejection, _ = WebhookRejection.objects.get_or_create(partner=partner)
    WebhookRejection.objects.filter(pk=rejection.pk).update(
        count=F("count") + 1,
        last_reason=destination.clean_text(reason, 200),
        last_remote_addr=destination.clean_text(remote_addr, 45),
        last_at=timezone.now(),
    )


@transaction.atomic
def webhook_event_receive(
    *, partner: Partner, body: bytes, headers: Mapping[str, str], remote_addr: str = ""
) -> WebhookEvent:
    """Store a verified callback once and queue its processing.

    The same partner, action and body again returns the stored event; if its processing had
    failed, it is queued again. A body that is not a JSON object is stored as invalid and not
    queued. `headers` must be case-insensitive (Django's `request.headers`).
    """
    decoded = _decode(body)
    envelope = destination.read_envelope(headers.get(destination.ACTION_HEADER, ""), decoded)
    digest = hashlib.sha256(body).hexdigest()
    existing = WebhookEvent.objects.filter(partner=partner, action=envelope.action, body_sha256=digest).first()
    if existing is not None:
        return _replayed(existing)

    timestamp_raw = destination.clean_text(headers.get(destination.TIMESTAMP_HEADER, ""), 64)
    timestamp = destination.parse_timestamp(timestamp_raw)
    event = WebhookEvent(
        partner=partner,
        remote_addr=destination.clean_text(remote_addr, 45),
        action=envelope.action,
        body=body,
        body_sha256=digest,
        headers=destination.redact_headers(headers),
        timestamp_raw=timestamp_raw,
        timestamp=timestamp.at if timestamp else None,
        timestamp_ns=timestamp.ns if timestamp else None,
        site_uuid=envelope.site_uuid,
        lead_id=envelope.lead_id,
        is_valid=decoded is not None,
        state=WebhookEvent.State.RECEIVED if decoded is not None else WebhookEvent.State.INVALID,
        error="" if decoded is not None else "The body is not a JSON object.",
    )
    try:
        with transaction.atomic():
            event.save()
    except IntegrityError:
        # The same request arrived twice at once and the other copy was stored first.
        return _replayed(
            WebhookEvent.objects.get(partner=partner, action=envelope.action, body_sha256=digest),
        )
    if event.is_valid:
        _enqueue_on_commit(event.pk)
    return event


def _replayed(event: WebhookEvent) -> WebhookEvent:
    changed = WebhookEvent.objects.filter(pk=event.pk, state=WebhookEvent.State.FAILED).update(
        state=WebhookEvent.State.RECEIVED
    )
    if changed:
        event.refresh_from_db()
        _enqueue_on_commit(event.pk)
    return event


@transaction.atomic
def webhook_event_reprocess(*, event: WebhookEvent) -> WebhookEvent:
    """Queue a stored callback to be processed again (after a failure, or once its action is known).

    Raises CallbackProblem for an invalid body, which has nothing to process.
    """
    if not event.is_valid:
        raise CallbackProblem("This callback's body is not a JSON object; there is nothing to process.")
    changed = (
        WebhookEvent.objects.filter(pk=event.pk)
        .exclude(state=WebhookEvent.State.PROCESSING)
        .update(state=WebhookEvent.State.RECEIVED)
    )
    if changed:
        _enqueue_on_commit(event.pk)
    event.refresh_from_db()
    return event


def webhook_events_requeue() -> int:
    """Queue again the events whose broker message was lost or whose worker died; returns how many."""
    now = timezone.now()
    stuck = WebhookEvent.objects.stuck(received_before=now - REQUEUE_AFTER, claimed_before=now - CLAIM_TIMEOUT)
    ids = list(stuck.order_by("received_at").values_list("pk", flat=True)[:REQUEUE_BATCH])
    # A dead worker's claim is released, so the next claim can succeed.
    WebhookEvent.objects.filter(
        pk__in=ids, state=WebhookEvent.State.PROCESSING, claimed_at__lt=now - CLAIM_TIMEOUT
    ).update(state=WebhookEvent.State.RECEIVED)
    for event_id in ids:
        _enqueue_on_commit(event_id)
    return len(ids)


def webhook_event_process(*, event_id: int) -> Optional[WebhookEvent]:
    """Claim and process one stored callback; None when another worker has it or it is done.

    A failure is recorded on the event (state failed, error, attempts), never raised: RG has
    already been answered, and staff reprocess from the record.
    """
    claimed = WebhookEvent.objects.filter(pk=event_id, state=WebhookEvent.State.RECEIVED).update(
        state=WebhookEvent.State.PROCESSING, claimed_at=timezone.now(), attempts=F("attempts") + 1
    )
    if not claimed:
        return None
    event = WebhookEvent.objects.select_related("partner").get(pk=event_id)
    try:
        with transaction.atomic():
            state, note = _apply(event)
            WebhookEvent.objects.filter(pk=event.pk).update(state=state, error=note, processed_at=timezone.now())
    except Exception as exc:  # any failure is kept on the event for staff; the message says what
        logger.warning("Callback %s failed: %s", event.public_id, exc, exc_info=not isinstance(exc, CallbackProblem))
        WebhookEvent.objects.filter(pk=event.pk).update(
            state=WebhookEvent.State.FAILED, error=_describe(exc), processed_at=None
        )
    event.refresh_from_db()
    return event


def _describe(exc: Exception) -> str:
    if isinstance(exc, CallbackProblem):
        return str(exc)
    return destination.clean_text(f"{type(exc).__name__}: {exc}", 2000)


def _apply(event: WebhookEvent) -> tuple[str, str]:
    body = _decode(bytes(event.body))
    if body is None:
        raise CallbackProblem("The body is not a JSON object.")
    action = event.action
    if action == destination.INTEGRATION_ENABLED:
        return _grant(event, body)
    if action == destination.INTEGRATION_DISABLED:
        return _revoke(event)
    if action in destination.LEAD_ACTIONS:
        return WebhookEvent.State.PROCESSED, inbound.inbound_lead_apply(event=event, body=body)
    if action in destination.USER_ACTIONS:
        return WebhookEvent.State.PROCESSED, inbound.site_agent_apply(event=event, body=body)
    return WebhookEvent.State.IGNORED, f"Unknown action {action!r}: kept; reprocess it once the action is known."


def _required_site_uuid(event: WebhookEvent) -> Any:
    if event.site_uuid is None:
        raise CallbackProblem(f"{event.action} without a valid site_uuid.")
    return event.site_uuid


def _superseded(event: WebhookEvent) -> bool:
    """Whether a newer integration_enabled/_disabled for this site was already applied."""
    others = (
        WebhookEvent.objects.filter(
            partner=event.partner,
            site_uuid=event.site_uuid,
            action__in=[destination.INTEGRATION_ENABLED, destination.INTEGRATION_DISABLED],
            state=WebhookEvent.State.PROCESSED,
        )
        .exclude(pk=event.pk)
        .only("timestamp_ns", "received_at")
    )
    return any(other.order_key() > event.order_key() for other in others)


def _grant(event: WebhookEvent, body: Mapping[str, Any]) -> tuple[str, str]:
    site_uuid = _required_site_uuid(event)
    if _superseded(event):
        return WebhookEvent.State.IGNORED, "Older than an integration callback already applied to this site."
    partner_id = destination.clean_text(str(body.get("partner_id") or ""), 200)
    domain = destination.clean_text(str(body.get("site_domain") or ""), 253)
    note = ""
    if event.partner.rg_partner_id and partner_id and partner_id != event.partner.rg_partner_id:
        # Still a grant (the signature proves RG sent it), but the client may have mistyped.
        note = f"partner_id {partner_id!r} differs from this partner's Partner ID {event.partner.rg_partner_id!r}."
    site_grant(
        partner=event.partner,
        site_uuid=site_uuid,
        source=Site.Source.CALLBACK,
        domain=domain,
        rg_partner_id=partner_id,
        note=note or "integration_enabled callback",
        webhook_event=event,
    )
    return WebhookEvent.State.PROCESSED, note


def _revoke(event: WebhookEvent) -> tuple[str, str]:
    site_uuid = _required_site_uuid(event)
    if _superseded(event):
        return WebhookEvent.State.IGNORED, "Older than an integration callback already applied to this site."
    site = Site.objects.filter(partner=event.partner, site_uuid=site_uuid).first()
    if site is None:
        return WebhookEvent.State.PROCESSED, "No such site here: nothing to revoke."
    site_revoke(site=site, source=Site.Source.CALLBACK, note="integration_disabled callback", webhook_event=event)
    return WebhookEvent.State.PROCESSED, ""
