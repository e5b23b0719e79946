"""What staff do to one lead, from the dashboard or the read and act API: resend, edit and resend,
patch, add an activity, assign an agent, cancel or retry a delivery.

Each action records its own audit entry, in the action's transaction, when a person acts (an
`actor`); a product acting with its API key (no actor) leaves none. New deliveries go through the
outbox exactly as a push does (`lead_submit`, `lead_resend`): one transaction writes them and they
are published on commit; nothing here calls RG during the web request except the (cached) agent
list.
"""

import copy
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Optional

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from core.audit import audit_person_action
from grants.models import Partner, SiteAgent
from leads import delivery as outbox
from leads.agents import AgentsUnavailable, users_for
from leads.models import CREATING_OPERATIONS, Delivery, Lead, Operation
from leads.services import lead_resend, lead_submit, payload_validate
from leads.validation import validate_lead

CANCELLABLE_STATUSES = outbox.CANCELLABLE_STATUSES

# The lead fields staff may edit, in RG's order (REALGEEKS_API.md). `id`, `created` and
# `activities` are not among them: the id is RG's key, and activities are added, never edited.
EDITABLE_FIELDS = (
    "source",
    "source_details",
    "email",
    "second_email",
    "first_name",
    "last_name",
    "phone",
    "phone2",
    "address",
    "street_address",
    "city",
    "state",
    "zip",
    "role",
    "region",
    "notes",
    "tags",
)


class LeadChangedError(Exception):
    """The lead changed since the staff member loaded the form; they must look again."""


class NothingChangedError(Exception):
    """The edits leave the lead as it is, so there is nothing to send."""


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: Any
    after: Any


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def lead_version(lead: Lead) -> str:
    """A short fingerprint of the lead's data, carried by forms to notice a concurrent change."""
    return hashlib.sha256(json.dumps(lead.data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def lead_changes(data: dict[str, Any], edited: dict[str, Any]) -> list[FieldChange]:
    """The editable fields whose value in `edited` differs from `data`, in EDITABLE_FIELDS order.

    A blank value ("", [] or None) and an absent field are the same thing.
    """
    changes = []
    for name in EDITABLE_FIELDS:
        if name not in edited:
            continue
        before, after = data.get(name), edited[name]
        if _empty(before) and _empty(after):
            continue
        if before != after:
            changes.append(FieldChange(name, None if _empty(before) else before, None if _empty(after) else after))
    return changes


def lead_edited_data(data: dict[str, Any], changes: list[FieldChange]) -> dict[str, Any]:
    """The lead's data with the changes applied; a change to blank removes the field."""
    merged = copy.deepcopy(data)
    for change in changes:
        if change.after is None:
            merged.pop(change.field, None)
        else:
            merged[change.field] = copy.deepcopy(change.after)
    return merged


def _locked(lead: Lead, expected_version: Optional[str]) -> Lead:
    locked = Lead.objects.select_related("site", "partner").select_for_update().get(pk=lead.pk)
    if expected_version is not None and lead_version(locked) != expected_version:
        raise LeadChangedError("The lead changed while you were editing it. Check the new data and try again.")
    return locked


def _changes_audit(
    actor: User, action: str, lead: Lead, changes: list[FieldChange], delivery: Delivery, reason: str
) -> None:
    before = {c.field: c.before for c in changes}
    after = {**{c.field: c.after for c in changes}, "delivery": delivery.public_id}
    audit_person_action(
        actor=actor, action=action, obj=lead, partner=lead.partner, before=before, after=after, reason=reason
    )


def lead_edit_resend(
    *, lead: Lead, edited: dict[str, Any], actor: User, expected_version: Optional[str] = None, reason: str = ""
) -> tuple[Delivery, list[FieldChange]]:
    """Apply staff's edits to the lead, check it as RG checks a new lead, and send it again as a
    create under the same lead id. Returns the new delivery and the changes it carries.

    Raises PayloadError (nothing changed) when RG would refuse the edited lead, LeadChangedError
    when the lead no longer has `expected_version`, NothingChangedError when nothing would change.
    """
    with transaction.atomic():
        lead = _locked(lead, expected_version)
        changes = lead_changes(lead.data, edited)
        if not changes:
            raise NothingChangedError("Nothing changed.")
        data = lead_edited_data(lead.data, changes)
        validate_lead(data)
        lead.data = data
        lead.refresh_identity()
        lead.updated = timezone.now()
        lead.save(update_fields=["data", "email", "name", "phone", "updated"])
        delivery = lead_resend(lead=lead, actor=actor)
        _changes_audit(actor, "lead.edit_resend", lead, changes, delivery, reason)
    return delivery, changes


def lead_resend_checked(*, lead: Lead, actor: Optional[User]) -> Delivery:
    """`lead_resend`, but only when RG would accept the create it sends: a lead known only from
    updates may lack `source`, which RG requires of a new lead.

    Raises PayloadError, sending nothing, when RG would refuse it.
    """
    first = lead.deliveries.filter(operation__in=CREATING_OPERATIONS).order_by("sequence").first()
    operation = first.operation if first else Operation.CREATE_LEAD
    payload_validate(operation, {**lead.data, "id": str(lead.lead_id)})
    with transaction.atomic():
        delivery = lead_resend(lead=lead, actor=actor)
        status_now = Lead.objects.values_list("status", flat=True).get(pk=lead.pk)
        after = {"status": status_now, "delivery": delivery.public_id}
        audit_person_action(
            actor=actor,
            action="lead.resend",
            obj=lead,
            partner=lead.partner,
            before={"status": lead.status},
            after=after,
        )
    return delivery


def lead_patch(
    *, lead: Lead, edited: dict[str, Any], actor: User, expected_version: Optional[str] = None, reason: str = ""
) -> tuple[Delivery, list[FieldChange]]:
    """Send only the fields staff changed, as an `update_lead` delivery (a cleared field is sent
    as "", which RG's update accepts for any field).

    Raises PayloadError, LeadChangedError or NothingChangedError as `lead_edit_resend` does.
    """
    with transaction.atomic():
        lead = _locked(lead, expected_version)
        changes = lead_changes(lead.data, edited)
        if not changes:
            raise NothingChangedError("Nothing changed.")
        body = {change.field: "" if change.after is None else change.after for change in changes}
        delivery = _submit(lead, Operation.UPDATE_LEAD, body, actor)
        _changes_audit(actor, "lead.patch", lead, changes, delivery, reason)
    return delivery, changes


def lead_activity_add(*, lead: Lead, activity: dict[str, Any], actor: User) -> Delivery:
    """Add one activity to the lead at RG. Raises PayloadError when RG would refuse it."""
    with transaction.atomic():
        delivery = _submit(lead, Operation.ADD_ACTIVITIES, [activity], actor)
        after = {"activity": activity, "delivery": delivery.public_id}
        audit_person_action(actor=actor, action="lead.activity_add", obj=lead, partner=lead.partner, after=after)
    return delivery


def lead_assign(*, lead: Lead, user_id: str, actor: User, agent_name: str = "") -> Delivery:
    """Assign the lead to one of the site's RG users, the way RG documents it: a `was_assigned`
    activity naming the user's id."""
    with transaction.atomic():
        delivery = _submit(lead, Operation.ADD_ACTIVITIES, [{"type": "was_assigned", "user": {"id": user_id}}], actor)
        after = {"agent": {"id": user_id, "name": agent_name}, "delivery": delivery.public_id}
        audit_person_action(actor=actor, action="lead.assign", obj=lead, partner=lead.partner, after=after)
    return delivery


def delivery_cancel(*, delivery: Delivery, actor: User) -> Delivery:
    """Cancel a delivery that has not been sent (leads.delivery.delivery_cancel says which)."""
    before, partner = {"status": delivery.status}, delivery.lead.partner
    with transaction.atomic():
        delivery = outbox.delivery_cancel(delivery=delivery, actor=actor)
        audit_person_action(
            actor=actor,
            action="delivery.cancel",
            obj=delivery,
            partner=partner,
            before=before,
            after={"status": delivery.status},
        )
    return delivery


def delivery_retry(*, delivery: Delivery, actor: Optional[User]) -> Delivery:
    """Attempt a failed, dead, retrying or held delivery now, with a fresh automatic retry budget."""
    before, partner = {"status": delivery.status, "attempt_count": delivery.attempt_count}, delivery.lead.partner
    with transaction.atomic():
        delivery = outbox.delivery_retry(delivery=delivery, actor=actor)
        audit_person_action(
            actor=actor,
            action="delivery.retry",
            obj=delivery,
            partner=partner,
            before=before,
            after={"status": delivery.status},
        )
    return delivery


def _submit(lead: Lead, operation: str, data: Any, actor: User) -> Delivery:
    return lead_submit(
        partner=lead.partner,
        site_uuid=lead.site.site_uuid,
        operation=operation,
        data=data,
        lead_id=lead.lead_id,
        origin=Delivery.Origin.DASHBOARD,
        actor=actor,
    )


@dataclass(frozen=True)
class Agent:
    id: str
    name: str
    email: str
    role: str

    @property
    def label(self) -> str:
        details = ", ".join(part for part in (self.role, self.email) if part)
        return f"{self.name or self.id} ({details})" if details else self.name or self.id


@dataclass(frozen=True)
class SiteAgents:
    """A site's agents and where the list came from: RG's users list, or (when RG could not be
    asked) the agents RG's callbacks told us about, with `problem` saying why."""

    agents: list[Agent]
    from_realgeeks: bool
    problem: str = ""


def site_agents(*, partner: Partner, site_uuid: Any) -> SiteAgents:
    """The site's users from RG (cached briefly by `users_for`), else those known from callbacks."""
    try:
        users = users_for(partner, site_uuid)
    except AgentsUnavailable as exc:
        known = SiteAgent.objects.filter(partner=partner, site_uuid=site_uuid, is_deleted=False)
        agents = [Agent(a.user_id, a.name, a.email, a.role) for a in known]
        return SiteAgents(agents, from_realgeeks=False, problem=exc.message)
    agents = [
        Agent(str(user["id"]), str(user.get("name") or ""), str(user.get("email") or ""), str(user.get("role") or ""))
        for user in users
        if isinstance(user, dict) and user.get("id") not in (None, "")
    ]
    return SiteAgents(agents, from_realgeeks=True)
