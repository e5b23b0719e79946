"""Which partners a staff user may see: superusers every partner, other staff the partners they
belong to.

Every dashboard lookup starts from `partners_visible_to`, so an object outside the user's
partners is a 404, whether it was linked or its URL guessed.
"""

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from grants.models import Partner


def partners_visible_to(user: User | AnonymousUser) -> QuerySet[Partner]:
    if not isinstance(user, User) or not user.is_staff:
        return Partner.objects.none()
    if user.is_superuser:
        return Partner.objects.all()
    return Partner.objects.filter(staff=user)


def partner_or_404(user: User | AnonymousUser, slug: str) -> Partner:
    """The partner with this slug if the user may see it; otherwise 404, as if it did not exist."""
    return get_object_or_404(partners_visible_to(user), slug=slug)
