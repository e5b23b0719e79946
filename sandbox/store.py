"""What the sandbox keeps of the leads it accepted: merged current data and activities in arrival order.

Bodies reach these functions already validated by `leads.validation`.
"""

import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from sandbox.models import SandboxActivity, SandboxLead


class LeadNotFound(Exception):
    pass


def lead_id_parse(lead_id: str) -> uuid.UUID:
    """The UUID a path's lead id spells; LeadNotFound when it spells none (no lead can have it)."""
    if not lead_id.isascii():
        raise LeadNotFound
    try:
        return uuid.UUID(lead_id)
    except ValueError:
        raise LeadNotFound from None


@transaction.atomic
def lead_receive(*, site_uuid: uuid.UUID, data: dict[str, Any], kind: str = SandboxLead.Kind.LEAD) -> SandboxLead:
    """A new lead, or the lead with the same id with these fields merged in, as RG merges a repeated create."""
    fields = {name: value for name, value in data.items() if name != "activities"}
    lead_id = uuid.UUID(fields["id"]) if fields.get("id") else uuid.uuid4()
    lead, created = SandboxLead.objects.select_for_update().get_or_create(
        site_uuid=site_uuid, lead_id=lead_id, defaults={"data": fields, "kind": kind}
    )
    if not created:
        lead.data = {**lead.data, **fields}
        lead.updated = timezone.now()
        lead.save(update_fields=["data", "updated"])
    _activities_add(lead, data.get("activities") or [])
    return lead


@transaction.atomic
def lead_update(
    *, site_uuid: uuid.UUID, lead_id: uuid.UUID, data: dict[str, Any], blank_unsets: bool = False
) -> SandboxLead:
    """The lead with only the present fields changed and its activities added; with `blank_unsets` (v2),
    a field sent as `""` is removed. LeadNotFound when the site has no such lead."""
    lead = _lead_for_update(site_uuid, lead_id)
    # The id in the path names the lead; an id in the body cannot rename it.
    fields = {name: value for name, value in data.items() if name not in ("activities", "id")}
    merged = {**lead.data, **fields}
    if blank_unsets:
        merged = {name: value for name, value in merged.items() if not (name in fields and value == "")}
    lead.data = merged
    lead.updated = timezone.now()
    lead.save(update_fields=["data", "updated"])
    _activities_add(lead, data.get("activities") or [])
    return lead


@transaction.atomic
def activities_add(*, site_uuid: uuid.UUID, lead_id: uuid.UUID, activities: list[dict[str, Any]]) -> SandboxLead:
    lead = _lead_for_update(site_uuid, lead_id)
    _activities_add(lead, activities)
    return lead


def _lead_for_update(site_uuid: uuid.UUID, lead_id: uuid.UUID) -> SandboxLead:
    lead = SandboxLead.objects.select_for_update().filter(site_uuid=site_uuid, lead_id=lead_id).first()
    if lead is None:
        raise LeadNotFound
    return lead


def _activities_add(lead: SandboxLead, activities: list[dict[str, Any]]) -> None:
    SandboxActivity.objects.bulk_create(SandboxActivity(lead=lead, data=activity) for activity in activities)


def lead_as_dict(lead: SandboxLead) -> dict[str, Any]:
    """The lead as stored, with its activities in arrival order (for `/sandbox/leads.json`)."""
    return {
        "site_uuid": str(lead.site_uuid),
        "lead_id": str(lead.lead_id),
        "kind": lead.kind,
        "data": lead.data,
        "activities": [activity.data for activity in lead.activities.all()],
        "created": lead.created.isoformat(),
        "updated": lead.updated.isoformat(),
    }
