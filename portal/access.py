"""Which partners a signed-in staff user may see: superusers all, other staff their own."""

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from grants.models import Partner


def partners_visible_to(user: User | AnonymousUser) -> QuerySet[Partner]:
    if not isinstance(user, User) or not user.is_staff:
        return Partner.objects.none()
    if user.is_superuser:
        return Partner.objects.all()
    return Partner.objects.filter(staff=user)
