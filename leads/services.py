"""Accepting leads into the outbox, and asking for them to be sent again.

Delivering them is leads.delivery's job; the rules for RG's answers are leads.retry's.
"""

import copy
import uuid
from datetime import UTC, datetime
from typing import Any, Optional

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from grants.models import Partner, Site
from leads import queue
from leads.delivery import RETRYABLE_STATUSES, DeliveryStateError, delivery_retry
from leads.models import CREATING_OPERATIONS, Delivery, DeliveryAttempt, Lead, Operation
from leads.validation import (
    PayloadError,
    validate_activities,
    validate_lead,
    validate_potential_seller,
)


def timestamp(now: datetime) -> str:
    """RG's timestamp format, e.g. 2015-04-01T08:41:51.123456+00:00."""
    return now.astimezone(UTC).isoformat()


def payload_validate(operation: str, data: Any) -> Any:
    """A checked copy of a request body for `operation`; raises PayloadError as RG would."""
    if operation == Operation.CREATE_LEAD:
        return validate_lead(data)
    if operation in (Operation.UPDATE_LEAD, Operation.UPDATE_LEAD_V2):
        return validate_lead(data, partial=True)
    if operation == Operation.ADD_ACTIVITIES:
        return validate_activities(data)
    if operation == Operation.POTENTIAL_SELLER:
        return validate_potential_seller(data)
    raise ValueError(f"Unknown operation {operation!r}")


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
    """The lead's current state after this request: fields replace, activities accumulate."""
    merged = copy.deepcopy(data)
    if operation == Operation.ADD_ACTIVITIES:
        changes: dict[str, Any] = {"activities": payload}
    else:
        changes = payload
    for name, value in changes.items():
        if name == "activities":
            merged["activities"] = [*(merged.get("activities") or []), *copy.deepcopy(value or [])]
        elif operation == Operation.UPDATE_LEAD_V2 and value == "":
            merged.pop(name, None)  # v2: "" unsets the field
        else:
            merged[name] = copy.deepcopy(value)
    return merged


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


def _lead_for(partner: Partner, site: Site, operation: str, lead_id: uuid.UUID, now: datetime) -> Lead:
    """The lead this request is about, locked; created for a create, or as a stub for an update
    of a lead the portal never saw (its create went to RG some other way)."""
    lead, _ = Lead.objects.select_for_update().get_or_create(
        partner=partner,
        lead_id=lead_id,
        defaults={
            "site": site,
            "data": {"id": str(lead_id)},
            "created": now,
            "updated": now,
            "created_elsewhere": operation not in CREATING_OPERATIONS,
        },
    )
    if lead.site_id != site.pk:
        # One lead id belongs to one site; RG ids are per lead, so this is a sender's mistake.
        status = 422 if operation in CREATING_OPERATIONS else 404
        raise PayloadError(f"Lead {lead_id} belongs to another site.", status)
    return lead


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
    last = lead.deliveries.aggregate(last=Max("sequence"))["last"] or 0
    delivery = Delivery.objects.create(
        lead=lead,
        sequence=last + 1,
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


def lead_submit(
    *,
    partner: Partner,
    site_uuid: uuid.UUID,
    operation: str,
    data: Any,
    lead_id: Optional[uuid.UUID] = None,
    origin: str = Delivery.Origin.API,
    actor: Optional[User] = None,
) -> Delivery:
    """Validate a push, store the lead and its delivery in one transaction, publish on commit.

    `data` is the parsed request body; `lead_id` is the path's lead id (updates and activities).
    Raises PayloadError (nothing stored) when RG would refuse the body.
    """
    payload = payload_validate(operation, data)
    now = timezone.now()
    if operation in CREATING_OPERATIONS:
        lead_id = _new_lead_id(payload)
    if lead_id is None:
        raise ValueError(f"{operation} needs the lead_id")
    _stamp(payload, operation, lead_id=lead_id, now=now)
    with transaction.atomic():
        site = _site_for(partner, site_uuid)
        lead = _lead_for(partner, site, operation, lead_id, now)
        lead.data = _merged(lead.data, payload, operation)
        lead.refresh_identity()
        lead.updated = now
        lead.save()
        delivery = _delivery_add(lead, operation, payload, origin=origin, actor=actor, now=now)
        lead.refresh_status()
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
    "lead_resend",
    "lead_submit",
    "payload_validate",
]
