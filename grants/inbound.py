"""What RG's lead and user callbacks say, kept as the latest state per lead and per agent.

Callbacks can arrive out of order (RG retries, several RG workers), so every field remembers
the timestamp of the event that set it, and an older event never overwrites a newer one.
"""

import json
from collections.abc import Mapping
from typing import Any

from grants import destination
from grants.destination import CallbackProblem
from grants.models import InboundLead, SiteAgent, WebhookEvent

# An activity without a readable `created` sorts after the dated ones.
_UNDATED = 1 << 62


def _activity_time(activity: Any) -> int:
    created = activity.get("created") if isinstance(activity, dict) else None
    parsed = destination.parse_timestamp(created) if isinstance(created, str) else None
    return parsed.ns if parsed else _UNDATED


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _merge_activities(current: list[Any], new: Any) -> list[Any]:
    """`current` plus the activities in `new` it does not already hold, oldest first."""
    if isinstance(new, dict):
        new = [new]
    if not isinstance(new, list):
        return current
    seen = {_canonical(a) for a in current}
    merged = list(current)
    for activity in new:
        key = _canonical(activity)
        if key not in seen:
            seen.add(key)
            merged.append(activity)
    return sorted(merged, key=_activity_time)


def inbound_lead_apply(*, event: WebhookEvent, body: Mapping[str, Any]) -> str:
    """Merge a created / updated / activity_added / potential-seller callback into its InboundLead.

    Returns a note for staff (empty when everything applied). `""` unsets a field on `updated`.
    """
    if event.site_uuid is None:
        raise CallbackProblem(f"{event.action} without a valid site_uuid.")
    if event.lead_id is None:
        raise CallbackProblem(f"{event.action} without a valid lead id.")
    lead, _ = InboundLead.objects.select_for_update().get_or_create(
        partner=event.partner, site_uuid=event.site_uuid, lead_id=event.lead_id
    )
    at = event.order_key()
    unsets = event.action == destination.LEAD_UPDATED
    skipped = []
    for name, value in destination.without_nuls(dict(body)).items():
        if name in destination.ENVELOPE_FIELDS:
            continue
        if lead.detail_times.get(name, -1) > at:
            skipped.append(name)
            continue
        lead.detail_times[name] = at
        if unsets and value == "":
            lead.details.pop(name, None)
        else:
            lead.details[name] = value
    lead.activities = _merge_activities(lead.activities, destination.without_nuls(body.get("activities")))
    if event.action in destination.POTENTIAL_SELLER_ACTIONS:
        lead.is_potential_seller = True
    if at >= lead.last_event_ns:
        lead.last_event, lead.last_event_ns = event, at
    lead.save()
    return f"Newer values kept for: {', '.join(sorted(skipped))}." if skipped else ""


def site_agent_apply(*, event: WebhookEvent, body: Mapping[str, Any]) -> str:
    """Keep a user_updated / user_deleted callback in the site's agent list.

    RG does not document the body: the User object is read from `user` when that is an object,
    else from the body itself (its `id`, or `user_id`).
    """
    if event.site_uuid is None:
        raise CallbackProblem(f"{event.action} without a valid site_uuid.")
    nested = body.get("user")
    user: Mapping[str, Any] = nested if isinstance(nested, dict) else body
    user_id = destination.clean_text(str(user.get("id") or body.get("user_id") or "").strip(), 64)
    if not user_id:
        raise CallbackProblem(f"{event.action} without a user id.")
    agent, _ = SiteAgent.objects.select_for_update().get_or_create(
        partner=event.partner, site_uuid=event.site_uuid, user_id=user_id
    )
    at = event.order_key()
    if agent.updated_ns > at:
        return "A newer event for this agent was already applied."
    agent.updated_ns = at
    agent.updated_at = event.timestamp or event.received_at
    if event.action == destination.USER_DELETED:
        agent.is_deleted = True
    else:
        data = destination.without_nuls({k: v for k, v in user.items() if k not in destination.ENVELOPE_FIELDS})
        agent.data = data
        agent.name = destination.clean_text(str(data.get("name") or ""), 200)
        agent.email = destination.clean_text(str(data.get("email") or ""), 254)
        agent.role = destination.clean_text(str(data.get("role") or ""), 32)
        agent.is_deleted = False
    agent.save()
    return ""
