"""Whose sandbox rows a staff user may read, as in the dashboard: superusers everything, other
staff their partners'. A request or an account is a partner's by the partner's RG username (the
HTTP Basic username it sends with); a lead or an agent by a site of the partner's."""

from typing import Any, TypeVar

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Model, QuerySet

from grants.access import partners_visible_to
from grants.models import Site

M = TypeVar("M", bound=Model)


def sent_by_partners_of(user: User | AnonymousUser, rows: QuerySet[M], field: str = "username") -> QuerySet[M]:
    if user.is_superuser:
        return rows
    usernames = partners_visible_to(user).exclude(rg_username="").values("rg_username")
    return rows.filter(**{f"{field}__in": usernames})


def on_sites_of(user: User | AnonymousUser, rows: QuerySet[M], field: str = "site_uuid") -> QuerySet[M]:
    if user.is_superuser:
        return rows
    sites: QuerySet[Any] = Site.objects.filter(partner__in=partners_visible_to(user)).values("site_uuid")
    return rows.filter(**{f"{field}__in": sites})
