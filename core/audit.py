"""The staff audit trail: one row per staff action, written in the action's own transaction."""

import json
from typing import Any, Optional

from django.contrib.auth.models import AnonymousUser, User
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from core.models import AuditEntry

# Stand in for a secret's value in before/after: the trail says a secret changed, never what to.
MASK_SET = "[set]"
MASK_CHANGED = "[changed]"


def _object_id(obj: models.Model) -> str:
    # The identifier staff see in URLs and pages, so an entry can be matched to what they saw;
    # the integer key only for models that have nothing public.
    for attribute in ("public_id", "key_id", "site_uuid"):
        value = getattr(obj, attribute, None)
        if value:
            return str(value)
    return str(obj.pk)


def _jsonable(value: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
    # JSONField stores plain JSON only; dates and UUIDs become strings the way Django's encoder writes them.
    if value is None:
        return None
    result: dict[str, Any] = json.loads(json.dumps(value, cls=DjangoJSONEncoder))
    return result


def audit_record(
    *,
    actor: User | AnonymousUser | None,
    action: str,
    obj: models.Model,
    partner: Optional[models.Model],  # a grants.Partner; core imports no app above it
    before: Optional[dict[str, Any]] = None,
    after: Optional[dict[str, Any]] = None,
    reason: str = "",
) -> AuditEntry:
    """Write one audit entry. Callers pass secret fields as MASK_SET/MASK_CHANGED, never their values.

    Call it inside the transaction of the action it records, so both happen or neither does.
    """
    return AuditEntry.objects.create(
        actor=actor if isinstance(actor, User) else None,
        partner_id=partner.pk if partner is not None else None,
        action=action,
        object_type=obj._meta.model_name or type(obj).__name__.lower(),
        object_id=_object_id(obj),
        before=_jsonable(before),
        after=_jsonable(after),
        reason=reason,
    )


def audit_person_action(
    *,
    actor: Optional[User],
    action: str,
    obj: models.Model,
    partner: Optional[models.Model],
    before: Optional[dict[str, Any]] = None,
    after: Optional[dict[str, Any]] = None,
    reason: str = "",
) -> Optional[AuditEntry]:
    """`audit_record` for the services, which persons and the portal both call: an action a person
    took (an `actor`) joins the audit trail; a product's API key, a command, a callback or the
    mailbox (no actor) leaves no entry, its evidence being the rows it changed."""
    if actor is None:
        return None
    return audit_record(actor=actor, action=action, obj=obj, partner=partner, before=before, after=after, reason=reason)


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The parts of two snapshots that differ, as (before, after)."""
    keys = [key for key in after if before.get(key) != after[key]]
    return {key: before.get(key) for key in keys}, {key: after[key] for key in keys}
