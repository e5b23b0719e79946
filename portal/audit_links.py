"""Links from audit entries to the objects they name, resolved for a whole page at once.

An entry names its object by type and public id (core.audit._object_id). Each type is looked
up once per page, inside what the user may see, so a page of fifty entries costs one query per
object type on it, never one per row. An object that is gone, or not the user's, has no link.
"""

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any, Optional

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Q, QuerySet
from django.urls import reverse

from alerts.models import Channel
from core.models import AuditEntry
from grants.access import partners_visible_to
from grants.models import ApiKey, GrantEmail, Partner, Site, WebhookEvent
from leads.models import BulkRetry, Delivery, Lead

# (partner id, object id) for types whose public id is unique per partner only; else object id.
Key = tuple[Optional[int], str]
PartnerIds = QuerySet[Partner, Any]
Resolver = Callable[[list[AuditEntry], PartnerIds, bool], dict[Key, str]]


def _uuids(entries: list[AuditEntry]) -> list[uuid.UUID]:
    """The entries' object ids that are UUIDs (older entries may hold an integer key)."""
    found = []
    for entry in entries:
        try:
            found.append(uuid.UUID(entry.object_id))
        except ValueError:
            continue
    return found


def _scope(partner_ids: PartnerIds, everything: bool, field: str = "partner_id") -> Q:
    # Superusers see rows without a partner too (unmatched grant emails, global alert channels),
    # as on those objects' own pages.
    return Q() if everything else Q(**{f"{field}__in": partner_ids})


def _leads(entries: list[AuditEntry], partner_ids: PartnerIds, everything: bool) -> dict[Key, str]:
    rows = Lead.objects.filter(_scope(partner_ids, everything), lead_id__in=_uuids(entries))
    return {
        (partner_id, str(lead_id)): reverse("portal:lead_detail", args=[slug, lead_id])
        for partner_id, slug, lead_id in rows.values_list("partner_id", "partner__slug", "lead_id")
    }


def _deliveries(entries: list[AuditEntry], partner_ids: PartnerIds, everything: bool) -> dict[Key, str]:
    rows = Delivery.objects.filter(_scope(partner_ids, everything, "lead__partner_id"), public_id__in=_uuids(entries))
    return {
        (None, str(public_id)): reverse("portal:delivery_detail", args=[slug, lead_id, public_id])
        for public_id, lead_id, slug in rows.values_list("public_id", "lead__lead_id", "lead__partner__slug")
    }


def _sites(entries: list[AuditEntry], partner_ids: PartnerIds, everything: bool) -> dict[Key, str]:
    rows = Site.objects.filter(_scope(partner_ids, everything), site_uuid__in=_uuids(entries))
    return {
        (partner_id, str(site_uuid)): reverse("portal:site_detail", args=[slug, site_uuid])
        for partner_id, slug, site_uuid in rows.values_list("partner_id", "partner__slug", "site_uuid")
    }


def _partners(entries: list[AuditEntry], partner_ids: PartnerIds, everything: bool) -> dict[Key, str]:
    rows = Partner.objects.filter(_scope(partner_ids, everything, "id"), public_id__in=_uuids(entries))
    return {
        (None, str(public_id)): reverse("portal:partner_detail", args=[slug])
        for public_id, slug in rows.values_list("public_id", "slug")
    }


def _api_keys(entries: list[AuditEntry], partner_ids: PartnerIds, everything: bool) -> dict[Key, str]:
    # A key has no page of its own: its partner's page lists it.
    rows = ApiKey.objects.filter(_scope(partner_ids, everything), key_id__in=[e.object_id for e in entries])
    return {
        (None, key_id): reverse("portal:partner_detail", args=[slug])
        for key_id, slug in rows.values_list("key_id", "partner__slug")
    }


def _by_public_id(model: Any, url_name: str) -> Resolver:
    def resolve(entries: list[AuditEntry], partner_ids: PartnerIds, everything: bool) -> dict[Key, str]:
        rows = model.objects.filter(_scope(partner_ids, everything), public_id__in=_uuids(entries))
        return {
            (None, str(public_id)): reverse(url_name, args=[public_id])
            for public_id in rows.values_list("public_id", flat=True)
        }

    return resolve


# object_type (the model's name, as core.audit.audit_record writes it) -> its resolver.
RESOLVERS: dict[str, Resolver] = {
    "lead": _leads,
    "delivery": _deliveries,
    "site": _sites,
    "partner": _partners,
    "apikey": _api_keys,
    "bulkretry": _by_public_id(BulkRetry, "portal:bulk_retry_detail"),
    "webhookevent": _by_public_id(WebhookEvent, "portal:callback_detail"),
    "grantemail": _by_public_id(GrantEmail, "portal:grant_email_detail"),
    "channel": _by_public_id(Channel, "portal:alert_channel"),
}
_PER_PARTNER = {"lead", "site"}


def audit_links(entries: Iterable[AuditEntry], user: User | AnonymousUser) -> list[tuple[AuditEntry, Optional[str]]]:
    """Each entry with the URL of its object's page, or None when there is none the user may see."""
    entries = list(entries)
    by_type: dict[str, list[AuditEntry]] = defaultdict(list)
    for entry in entries:
        if entry.object_type in RESOLVERS:
            by_type[entry.object_type].append(entry)
    if not by_type:
        return [(entry, None) for entry in entries]
    everything = isinstance(user, User) and user.is_superuser
    # A subquery, not a list: no query of its own.
    partner_ids = partners_visible_to(user).values("id")
    urls = {kind: RESOLVERS[kind](group, partner_ids, everything) for kind, group in by_type.items()}
    result = []
    for entry in entries:
        found = urls.get(entry.object_type, {})
        scope = entry.partner_id if entry.object_type in _PER_PARTNER else None
        result.append((entry, found.get((scope, entry.object_id))))
    return result
