"""Who is calling the API and which partners' data they may see."""

from typing import Any

from django.contrib.auth.models import User
from django.db.models import QuerySet
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from grants.access import partners_visible_to
from grants.models import ApiKey, Partner


def partners_for(request: Request) -> QuerySet[Partner]:
    """An API key sees its partner; a signed-in staff user the partners they belong to."""
    if isinstance(request.auth, ApiKey):
        return Partner.objects.filter(pk=request.auth.partner_id)
    if isinstance(request.user, User):
        return partners_visible_to(request.user)
    return Partner.objects.none()


def person(request: Request) -> User | None:
    """The staff user acting, for attempt and audit rows; None for an API key."""
    return request.user if isinstance(request.user, User) else None


class HasApiKey(BasePermission):
    """The push API: a partner's product, identified by its key."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, ApiKey)


class HasApiKeyOrStaffSession(BasePermission):
    """The read and act API: a product's key or a signed-in staff user."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if isinstance(request.auth, ApiKey):
            return True
        return isinstance(request.user, User) and request.user.is_active and request.user.is_staff
