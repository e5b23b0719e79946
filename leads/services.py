"""Accepting leads into the outbox, and asking for them to be sent again.

Delivering them is leads.delivery's job; the rules for RG's answers are leads.retry's.
"""

import contextlib
import copy
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Optional

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from grants.models import ApiKey, Partner, Site
from leads import accept, queue, rg_operations
from leads.delivery import RETRYABLE_STATUSES, DeliveryStateError, delivery_retry
from leads.models import CREATING_OPERATIONS, Delivery, DeliveryAttempt, Lead, Operation, lead_identity
from leads.validation import PayloadError


def timestamp(now: datetime) -> str:
    """RG's timestamp format, e.g. 2015-04-01T08:41:51.123456+00:00."""
    return now.astimezone(UTC).isoformat()


def payload_validate(operation: str, data: Any) -> Any:
    """A checked copy of a request body for `operation`; raises PayloadError as RG would."""
    return rg_operations.by_name(operation).validate(data)


def _stamp(payload: Any, operation: str, *, lead_id: uuid.UUID, now: datetime) -> None:
    """Set `created` where absent (delivery may happen much later) and the new lead's `id`."""
    created = timestamp(now)
    activities = payload if operation == Operation.ADD_ACTIVITIES else payload.get("activities") or []
    for activity in activities:
        if activity.get("created") is None:
            activity["created"] = created
    if operation in CREATING_OPERATIONS:
        payload["id"] = str(lead_id)
        if payload.get("created") is None:
            payload["created"] = created


def _merged(data: dict[str, Any], payload: Any, operation: str) -> dict[str, Any]:
    """The lead's state after this request: fields replace, activities accumulate (the latest
    LEAD_KEEP_ACTIVITIES are kept; every one stays in its delivery's payload). `data` is a fresh
    copy read for this request and is changed in place; `payload` is only read."""
    changes: Any = {"activities": payload} if operation == Operation.ADD_ACTIVITIES else payload
    for name, value in changes.items():
        if name == "activities":
            kept = [*(data.get("activities") or []), *(value or [])]
            data["activities"] = kept[-settings.LEAD_KEEP_ACTIVITIES :] if settings.LEAD_KEEP_ACTIVITIES else []
        elif operation == Operation.UPDATE_LEAD_V2 and value == "":
            data.pop(name, None)  # v2: "" unsets the field
        else:
            data[name] = value
    return data


def _activities_in(operation: str, data: Any) -> int:
    """How many activities a body carries, counted before they are validated one by one."""
    if operation == Operation.ADD_ACTIVITIES:
        activities = data
    else:
        activities = data.get("activities") if isinstance(data, dict) else None
    return len(activities) if isinstance(activities, list) else 0


def _activities_refuse_excess(operation: str, data: Any) -> int:
    """The number of activities in the body; PayloadError when over PUSH_MAX_ACTIVITIES."""
    count = _activities_in(operation, data)
    limit = settings.PUSH_MAX_ACTIVITIES
    if count > limit:
        raise PayloadError(
            f"A request may carry at most {limit} activities (PUSH_MAX_ACTIVITIES); this one has {count}.",
            where="activities",
        )
    return count


def _site_for(partner: Partner, site_uuid: uuid.UUID) -> Site:
    # An unknown site is accepted and held: the grant often arrives after the first leads do
    # (the client grants, the partner's product starts sending at once).
    site, _ = Site.objects.get_or_create(
        partner=partner, site_uuid=site_uuid, defaults={"source": Site.Source.API, "status": Site.Status.PENDING}
    )
    return site


def _new_lead_id(payload: dict[str, Any]) -> uuid.UUID:
    value = payload.get("id")
    return uuid.UUID(value) if value else uuid.uuid4()


def request_digest(operation: str, path_lead_id: Optional[uuid.UUID], data: Any, router_destinations: str) -> str:
    """What makes two pushes the same request: the operation, the lead id in the path (updates
    and activities), the body as sent (keys in any order) and the destinations header."""
    canonical = json.dumps(
        [operation, str(path_lead_id or ""), data, router_destinations], sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Pushed:
    """An accepted push: its delivery, and whether it was a repeat of one already accepted
    (then nothing new was stored and RG gets the original delivery only)."""

    delivery_or_written: "Delivery | tuple[accept.NewDelivery, int, int, int]"
    repeated: bool = False

    @property
    def delivery(self) -> Delivery:
        """The delivery; a new one is built from what was written (no query), and only when
        asked for: the push API answers without it."""
        if isinstance(self.delivery_or_written, Delivery):
            return self.delivery_or_written
        return _delivery_as_written(*self.delivery_or_written)


# Optimistic rounds (read, merge, write if unchanged) before reading under the lead's lock.
OPTIMISTIC_ROUNDS = 3
LOCKED_ROUNDS = 3


def lead_push(
    *,
    partner: Partner,
    site_uuid: uuid.UUID,
    operation: str,
    data: Any,
    lead_id: Optional[uuid.UUID] = None,
    origin: str = Delivery.Origin.API,
    actor: Optional[User] = None,
    api_key: Optional[ApiKey] = None,
    idempotency_key: str = "",
    router_destinations: str = "",
) -> Pushed:
    """Validate a push and store the lead's new state with its delivery (leads.accept: one read
    and one write); a worker is asked to deliver it.

    `data` is the parsed request body; `lead_id` is the path's lead id (updates and activities).
    A push from the API that repeats one accepted for the same lead within
    PUSH_IDEMPOTENCY_SECONDS (same operation and body), or reuses its `idempotency_key` for the
    same API key, stores nothing and returns the original delivery. Raises PayloadError
    (nothing stored) when RG would refuse the body or a limit is reached.
    """
    count = _activities_refuse_excess(operation, data)
    from_api = origin == Delivery.Origin.API
    digest = request_digest(operation, lead_id, data, router_destinations) if from_api else ""
    payload = payload_validate(operation, data)
    now = timezone.now()
    if operation in CREATING_OPERATIONS:
        lead_id = _new_lead_id(payload)
    else:
        router_destinations = ""  # RG reads the header on creates only
    if lead_id is None:
        raise ValueError(f"{operation} needs the lead_id")
    _stamp(payload, operation, lead_id=lead_id, now=now)
    new = accept.NewDelivery(
        operation=operation,
        payload=payload,
        origin=origin,
        actor_id=actor.pk if actor else None,
        api_key_id=api_key.pk if api_key else None,
        request_digest=digest,
        idempotency_key=idempotency_key,
        router_destinations=router_destinations,
        now=now,
    )
    if operation in CREATING_OPERATIONS and not idempotency_key and accept.creates_without_reading():
        # A new lead at a known site, the common push: one statement, no read. A lead that
        # exists (a repeat, a second create) or an unknown site writes nothing and goes on below.
        state = _lead_state(accept.NOTHING_KNOWN, payload, operation, count, lead_id)
        written = accept.create(partner_id=partner.pk, site_uuid=site_uuid, lead_id=lead_id, lead=state, delivery=new)
        if written is not None:
            queue.pump_hint_on_commit()
            return Pushed((new, *written))
    for round_number in range(OPTIMISTIC_ROUNDS + LOCKED_ROUNDS):
        locked = round_number >= OPTIMISTIC_ROUNDS
        with transaction.atomic() if locked else contextlib.nullcontext():
            known = accept.known(
                partner_id=partner.pk,
                site_uuid=site_uuid,
                lead_id=lead_id,
                digest=digest,
                repeat_since=now - timedelta(seconds=settings.PUSH_IDEMPOTENCY_SECONDS),
                api_key_id=new.api_key_id,
                idempotency_key=idempotency_key,
                lock=locked,
            )
            site_id = _site_id(partner, site_uuid, known, operation, lead_id)
            earlier = _earlier(known, new)
            if earlier is not None:
                return Pushed(earlier, repeated=True)
            state = _lead_state(known, payload, operation, count, lead_id)
            try:
                written = accept.write(
                    partner_id=partner.pk, site_id=site_id, lead_id=lead_id, known=known, lead=state, delivery=new
                )
            except IntegrityError:
                if not idempotency_key:
                    raise
                continue  # the same key, pushed concurrently, won: the next round finds it
        if written is not None:
            queue.pump_hint_on_commit()
            return Pushed((new, *written))
    raise PayloadError(f"Lead {lead_id} is changing too fast to accept this now; send it again.", 409)


def _earlier(known: accept.Known, new: accept.NewDelivery) -> Optional[Delivery]:
    """The delivery this push repeats, if any; PayloadError when its Idempotency-Key was used
    for a different request."""
    if known.keyed_delivery_id is not None:
        keyed = Delivery.objects.get(pk=known.keyed_delivery_id)
        if keyed.request_digest != new.request_digest:
            raise PayloadError(
                f"Idempotency-Key {new.idempotency_key!r} was already used for a different request.", 422
            )
        return keyed
    if known.repeated_delivery_id is not None:
        return Delivery.objects.get(pk=known.repeated_delivery_id)
    return None


def _site_id(partner: Partner, site_uuid: uuid.UUID, known: accept.Known, operation: str, lead_id: uuid.UUID) -> int:
    if known.lead_pk is not None and known.lead_site_id != known.site_id:
        # One lead id belongs to one site; RG ids are per lead, so this is a sender's mistake.
        status = 422 if operation in CREATING_OPERATIONS else 404
        raise PayloadError(f"Lead {lead_id} belongs to another site.", status)
    return known.site_id if known.site_id is not None else _site_for(partner, site_uuid).pk


def _lead_state(known: accept.Known, payload: Any, operation: str, count: int, lead_id: uuid.UUID) -> accept.LeadState:
    total = known.activity_count + count
    if total > settings.LEAD_MAX_ACTIVITIES:
        raise PayloadError(
            f"Lead {lead_id} may have at most {settings.LEAD_MAX_ACTIVITIES} activities (LEAD_MAX_ACTIVITIES); "
            f"it has {known.activity_count} and this request adds {count}.",
            where="activities",
        )
    data = _merged({"id": str(lead_id), **known.data}, payload, operation)
    email, name, phone = lead_identity(data)
    return accept.LeadState(data=data, email=email, name=name, phone=phone, activity_count=total)


def _delivery_as_written(new: accept.NewDelivery, pk: int, lead_pk: int, sequence: int) -> Delivery:
    """The stored delivery, built from what was written rather than read back."""
    return Delivery(
        pk=pk,
        public_id=new.public_id,
        lead_id=lead_pk,
        sequence=sequence,
        operation=new.operation,
        payload=new.payload,
        origin=new.origin,
        actor_id=new.actor_id,
        api_key_id=new.api_key_id,
        request_digest=new.request_digest,
        idempotency_key=new.idempotency_key,
        router_destinations=new.router_destinations,
        status=Delivery.Status.PENDING,
        next_attempt_at=new.now,
        created=new.now,
        updated=new.now,
    )


def lead_submit(**kwargs: Any) -> Delivery:
    """`lead_push` for callers that only need the delivery (staff actions, the send command)."""
    return lead_push(**kwargs).delivery


def _delivery_add(
    lead: Lead,
    operation: str,
    payload: Any,
    *,
    origin: str,
    actor: Optional[User],
    now: datetime,
    trigger: str = "",
) -> Delivery:
    """A new delivery of a lead locked by the caller, next in its sequence."""
    lead.last_sequence += 1
    Lead.objects.filter(pk=lead.pk).update(last_sequence=lead.last_sequence)
    delivery = Delivery.objects.create(
        lead=lead,
        sequence=lead.last_sequence,
        operation=operation,
        payload=payload,
        origin=origin,
        actor=actor,
        retry_trigger=trigger,
        status=Delivery.Status.PENDING,
        next_attempt_at=now,
        created=now,
        updated=now,
    )
    queue.pump_hint_on_commit()
    return delivery


def lead_resend(*, lead: Lead, actor: Optional[User] = None, trigger: str = DeliveryAttempt.Trigger.MANUAL) -> Delivery:
    """Send the lead's current state to RG again as a create, under the same lead id."""
    with transaction.atomic():
        lead = Lead.objects.lock(lead.pk)
        first = lead.deliveries.filter(operation__in=CREATING_OPERATIONS).order_by("sequence").first()
        operation = first.operation if first else Operation.CREATE_LEAD
        payload = copy.deepcopy(lead.data)
        payload["id"] = str(lead.lead_id)
        delivery = _delivery_add(
            lead, operation, payload, origin=Delivery.Origin.RESEND, actor=actor, now=timezone.now(), trigger=trigger
        )
        lead.refresh_status()
    return delivery


__all__ = [
    "RETRYABLE_STATUSES",
    "DeliveryStateError",
    "delivery_retry",
    "lead_push",
    "lead_resend",
    "lead_submit",
    "payload_validate",
]
