"""A site's agents and lenders as RG lists them (GET /rest/sites/{site}/users), cached briefly:
the push API passes the list through, and the dashboard's agent pickers call it often."""

import uuid
from typing import Any

from django.conf import settings
from django.core.cache import cache

from grants.models import Partner
from leads import realgeeks


class AgentsUnavailable(Exception):
    """RG did not give the list. `refused` when RG turned the partner's credentials away for
    this site (401 or 403), `missing` when it does not know the site (404)."""

    def __init__(self, message: str, *, refused: bool = False, missing: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.refused = refused
        self.missing = missing


def users_for(partner: Partner, site_uuid: uuid.UUID) -> list[dict[str, Any]]:
    """RG's user list, cached for REALGEEKS_USERS_CACHE_SECONDS. Raises AgentsUnavailable."""
    cache_key = f"leads:rg-users:{partner.pk}:{site_uuid}"
    users = cache.get(cache_key)
    if users is not None:
        return list(users)
    creds = realgeeks.Credentials.for_partner(partner)
    try:
        users = realgeeks.list_users(creds, site_uuid)
    except realgeeks.RealGeeksError as exc:
        if exc.status in (401, 403):
            raise AgentsUnavailable(
                f"Real Geeks refused this site to the partner's credentials. {exc.message}", refused=True
            ) from None
        raise AgentsUnavailable(exc.message, missing=exc.status == 404) from None
    cache.set(cache_key, users, settings.REALGEEKS_USERS_CACHE_SECONDS)
    return users
