"""Destination callbacks: store once, process in a worker, record failures, reprocess on demand.

Storing is the webhook's whole job: one INSERT, then a hint. Processing happens in batches: a
hint asks a worker to process every received callback (webhook_events_process), so one hint
serves every callback stored meanwhile, and the requeue beat asks again for anything a lost hint
or a dead worker left behind.
"""

import functools
import hashlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Optional

from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import F, Field
from django.utils import timezone

from core.audit import audit_person_action
from grants import destination, inbound
from grants.destination import CallbackProblem
from grants.models import Site, WebhookEvent, WebhookRejection
from grants.services import site_grant, site_revoke
from partner_portal.database import current, param, prepared_cursor
from partner_portal.hints import HintThrottle
from partner_portal.publish import hint, hint_interval, hint_on_commit

logger = logging.getLogger(__name__)

# An event still waiting this long after it arrived lost its hint (or the broker was down); the
# beat task asks again (a second run is harmless: processing claims the rows first).
REQUEUE_AFTER = timedelta(minutes=2)
# A claim older than this belongs to a worker that died; well above CELERY_TASK_TIME_LIMIT.
CLAIM_TIMEOUT = timedelta(minutes=10)
# A web process publishes at most one hint per HINT_INTERVAL, and a processing run lasts at least
# that long, so the run the last hint started finds what a throttled hint would have asked for.
# A publish costs the web process about a millisecond of kombu's CPU: at 0.1 s, a burst of
# callbacks paid more for its hints than for their signatures. A callback waits at most this long.
HINT_INTERVAL = 0.5
# Events one run claims at a time: a worker that dies leaves at most these for the requeue.
PROCESS_BATCH = 100
# A run stops claiming after this long and asks for another run if work remains, so it shares
# the worker with other tasks and stays far inside CELERY_TASK_SOFT_TIME_LIMIT.
PROCESS_SECONDS = 20.0


@dataclass(frozen=True)
class Received:
    """What the webhook answers from: whether the body was a JSON object, and the stored
    event's id (None when the same request had been stored before: a replay)."""

    is_valid: bool
    event_id: Optional[int]


def _decode(body: bytes) -> Optional[dict[str, Any]]:
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError):
        # ValueError covers bad UTF-8 and bad JSON; RecursionError absurdly deep nesting.
        return None
    return decoded if isinstance(decoded, dict) else None


def webhook_rejection_record(*, partner_id: int, reason: str, remote_addr: str = "") -> None:
    """Count a refused callback for staff. Nothing of its body is kept."""
    rejection, _ = WebhookRejection.objects.get_or_create(partner_id=partner_id)
    WebhookRejection.objects.filter(pk=rejection.pk).update(
        count=F("count") + 1,
        last_reason=destination.clean_text(reason, 200),
        last_remote_addr=destination.clean_text(remote_addr, 45),
        last_at=timezone.now(),
    )


def webhook_event_receive(
    *, partner_id: int, body: bytes, headers: Mapping[str, str], remote_addr: str = ""
) -> Received:
    """Store a verified callback once and ask for its processing.

    One INSERT and no transaction of its own: called in autocommit (the webhook), the row is
    committed when this returns. The same partner and body again stores nothing (the unique key
    says so, no read first), whatever its unsigned headers say now: a signed body means one
    thing, once. Only then is the stored event touched: if its processing had failed, it is
    processed again. A body that is not a JSON object is stored as invalid and not processed.
    `headers` must be case-insensitive (Django's `request.headers`).
    """
    arrived = timezone.now()
    decoded = _decode(body)
    envelope = destination.read_envelope(headers.get(destination.ACTION_HEADER, ""), decoded)
    timestamp_raw = destination.clean_text(headers.get(destination.TIMESTAMP_HEADER, ""), 64)
    timestamp, timestamp_warning = destination.event_time(
        action=envelope.action, header_raw=timestamp_raw, body=decoded, arrived=arrived
    )
    digest = hashlib.sha256(body).hexdigest()
    event_id = _insert_unless_stored(
        {
            "partner_id": partner_id,
            "received_at": arrived,
            "remote_addr": destination.clean_text(remote_addr, 45),
            "action": envelope.action,
            "body": body,
            "body_sha256": digest,
            "headers": destination.redact_headers(headers),
            "timestamp_raw": timestamp_raw,
            "timestamp": timestamp.at if timestamp else None,
            "timestamp_ns": timestamp.ns if timestamp else None,
            "warning": " ".join(w for w in (envelope.warning, timestamp_warning) if w),
            "site_uuid": envelope.site_uuid,
            "lead_id": envelope.lead_id,
            "is_valid": decoded is not None,
            "state": WebhookEvent.State.RECEIVED if decoded is not None else WebhookEvent.State.INVALID,
            "error": "" if decoded is not None else "The body is not a JSON object.",
        }
    )
    if event_id is None:
        _replayed(partner_id=partner_id, digest=digest)
        if envelope.warning or timestamp_warning:
            # A genuine retry repeats RG's headers; this is worth an operator's look. Not written
            # to the stored event: a replay writes nothing that staff read as that event's.
            logger.warning(
                "Signed body %s of partner %s replayed with other headers: %s",
                digest[:12],
                partner_id,
                " ".join(w for w in (envelope.warning, timestamp_warning) if w),
            )
    elif decoded is not None:
        hint_on_commit(_hints, webhook_events_hint)
    return Received(is_valid=decoded is not None, event_id=event_id)


def _insert_unless_stored(values: Mapping[str, Any]) -> Optional[int]:
    """INSERT a WebhookEvent of `values` (by attribute name; the model's defaults fill the rest)
    unless its unique key finds one stored: the new id, or None.

    Raw SQL because the ORM has no INSERT ... ON CONFLICT DO NOTHING RETURNING, and its
    `bulk_create(ignore_conflicts=True)` does not say whether a row went in. The values are adapted as
    the fields would, so this works on PostgreSQL and SQLite (3.35+) alike.
    """
    db = current()
    params = [
        param(db, WebhookEvent, field.name, values[field.attname] if field.attname in values else field.get_default())
        for field in _inserted_fields()
    ]
    with prepared_cursor(db) as cursor:
        cursor.execute(_insert_statement(), params)
        row = cursor.fetchone()
    return row[0] if row else None


@functools.cache
def _inserted_fields() -> tuple["Field[Any, Any]", ...]:
    return tuple(field for field in WebhookEvent._meta.concrete_fields if not field.primary_key)


@functools.cache
def _insert_statement() -> str:
    meta = WebhookEvent._meta
    quote = connection.ops.quote_name
    (unique,) = (c for c in meta.total_unique_constraints if c.name == "webhook_event_unique_body")
    column_of = {field.name: field.column for field in _inserted_fields()}
    columns = ", ".join(quote(column) for column in column_of.values())
    key = ", ".join(quote(column_of[name]) for name in unique.fields)
    placeholders = ", ".join(["%s"] * len(_inserted_fields()))
    # Only the model's own names are formatted in, never input (hence the noqa).
    return (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({placeholders}) "  # noqa: S608
        f"ON CONFLICT ({key}) DO NOTHING RETURNING {quote(meta.pk.column)}"
    )


def _replayed(*, partner_id: int, digest: str) -> None:
    """The same body again: if the stored event's processing failed, it goes round again, as
    stored (its action and time are the first delivery's, never this one's headers)."""
    stored = WebhookEvent.objects.filter(partner_id=partner_id, body_sha256=digest)
    if stored.filter(state=WebhookEvent.State.FAILED).update(state=WebhookEvent.State.RECEIVED):
        hint_on_commit(_hints, webhook_events_hint)


_hints = HintThrottle()


def webhook_events_hint(*, force: bool = False) -> bool:
    """Ask a worker to process every received callback; whether it asked.

    It does not when this process asked less than HINT_INTERVAL ago (unless `force`) or is asking
    right now: the run that hint starts lasts long enough to find this callback too (see
    webhook_events_process), unless the publish returned more than HINT_INTERVAL after its message
    arrived; then the requeue beat asks, minutes later. One publish at a time keeps a broker that
    does not answer from holding every request thread for its connection timeout. Never raises:
    with the broker down the callbacks stay received, RG still gets its 200, and the requeue beat
    asks again.
    """
    from grants import tasks  # tasks import this module's services

    # A failed publish is not counted: the next callback asks again at once, for this one's too.
    return hint(
        _hints, tasks.webhook_events_process, interval=HINT_INTERVAL, force=force, then="the requeue beat asks again"
    )


@transaction.atomic
def webhook_event_reprocess(*, event: WebhookEvent, actor: Optional[User] = None) -> WebhookEvent:
    """Queue a stored callback to be processed again (after a failure, or once its action is known).
    A person's request (`actor`) that queues it is audited.

    Raises CallbackProblem for an invalid body, which has nothing to process, and for a second
    event of one signed body, stored before a body counted once.
    """
    if not event.is_valid:
        raise CallbackProblem("This callback's body is not a JSON object; there is nothing to process.")
    if event.body_pruned_at is not None:
        raise CallbackProblem("This callback's body was pruned after its retention; there is nothing to process.")
    if event.body_sha256 != hashlib.sha256(bytes(event.body)).hexdigest():
        # Kept by migration 0004 as evidence: its action came from an unsigned header.
        raise CallbackProblem("This callback repeats the signed body of an earlier one; reprocess that one instead.")
    before = {"state": event.state, "error": event.error}
    changed = (
        WebhookEvent.objects.filter(pk=event.pk)
        .exclude(state=WebhookEvent.State.PROCESSING)
        .update(state=WebhookEvent.State.RECEIVED)
    )
    if changed:
        # Forced: staff are waiting for the answer, not sharing a hint with a burst of callbacks.
        transaction.on_commit(lambda: webhook_events_hint(force=True))
    event.refresh_from_db()
    if changed:
        after = {"state": event.state}
        audit_person_action(
            actor=actor, action="webhook_event.reprocess", obj=event, partner=event.partner, before=before, after=after
        )
    return event


def webhook_events_requeue() -> int:
    """Ask again for the events a lost hint left received or a dead worker left claimed; how many."""
    now = timezone.now()
    stuck = WebhookEvent.objects.stuck(received_before=now - REQUEUE_AFTER, claimed_before=now - CLAIM_TIMEOUT).count()
    if stuck:
        # A dead worker's claim is released, so the next run can claim the event.
        WebhookEvent.objects.filter(state=WebhookEvent.State.PROCESSING, claimed_at__lt=now - CLAIM_TIMEOUT).update(
            state=WebhookEvent.State.RECEIVED
        )
        webhook_events_hint(force=True)
    return stuck


def webhook_events_process(*, budget_seconds: float = PROCESS_SECONDS) -> int:
    """Process every received callback, a claimed batch at a time, until none is left; how many.

    Each batch is claimed first (a conditional UPDATE), so runs in many workers never process one
    event twice. The run lasts at least the hint interval, looking once more at its end: a
    callback whose hint was throttled was stored after the hint that started this run, and
    before that look. Out of budget with work left, it asks for another run instead.
    """
    started = time.monotonic()
    last_look = started + hint_interval(HINT_INTERVAL)
    processed = 0
    while True:
        claimed = _claim_received(PROCESS_BATCH)
        for event in claimed:
            _process_claimed(event)
        processed += len(claimed)
        now = time.monotonic()
        if claimed:
            if now - started >= budget_seconds:
                webhook_events_hint(force=True)
                return processed
        elif now >= last_look:
            return processed
        else:
            time.sleep(last_look - now)


def _claim_received(limit: int) -> list[WebhookEvent]:
    """Claim up to `limit` received events, oldest first, for this run alone; them, oldest first.

    On PostgreSQL the pick skips rows another run is claiming at that moment (SKIP LOCKED); the
    UPDATE re-checks the state either way, and SQLite runs one writer at a time. The pick is a
    CTE because PostgreSQL runs a CTE once: a LIMIT in an `IN (SELECT ...)` may be run again for
    each row the UPDATE looks at, and then claim far more than `limit`.
    """
    table = WebhookEvent._meta.db_table
    lock = " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    received, processing = WebhookEvent.State.RECEIVED.value, WebhookEvent.State.PROCESSING.value
    with connection.cursor() as cursor:
        # Only the model's table name and this module's constants are formatted in (hence the noqa).
        cursor.execute(
            f"WITH picked AS (SELECT id FROM {table} WHERE state = %s ORDER BY received_at LIMIT %s{lock})"  # noqa: S608
            f" UPDATE {table} SET state = %s, claimed_at = %s, attempts = attempts + 1"
            " WHERE state = %s AND id IN (SELECT id FROM picked) RETURNING id",
            [received, limit, processing, connection.ops.adapt_datetimefield_value(timezone.now()), received],
        )
        ids = [row[0] for row in cursor.fetchall()]
    if not ids:
        return []
    # The partner's secrets are for talking to RG, not for processing: not decrypted here.
    events = WebhookEvent.objects.select_related("partner").defer(
        "partner__rg_password", "partner__webhook_secrets_encrypted"
    )
    return list(events.filter(pk__in=ids).order_by("received_at", "pk"))


def _process_claimed(event: WebhookEvent) -> None:
    """Process one event this run claimed.

    A failure is recorded on the event (state failed, error), never raised: RG has already been
    answered, and staff reprocess from the record.
    """
    try:
        with transaction.atomic():
            state, note = _apply(event)
            WebhookEvent.objects.filter(pk=event.pk).update(state=state, error=note, processed_at=timezone.now())
    except Exception as exc:  # any failure is kept on the event for staff; the message says what
        logger.warning("Callback %s failed: %s", event.public_id, exc, exc_info=not isinstance(exc, CallbackProblem))
        WebhookEvent.objects.filter(pk=event.pk).update(
            state=WebhookEvent.State.FAILED, error=_describe(exc), processed_at=None
        )


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
