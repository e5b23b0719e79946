"""Who may see what: superusers every partner, other staff the partners they belong to.

Every dashboard lookup starts from `partners_visible_to`, so an object outside the user's
partners is a 404, whether it was linked or its URL guessed.
"""

from collections.abc import Callable
from functools import wraps
from typing import Concatenate, ParamSpec

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404

from grants.models import Partner

P = ParamSpec("P")


def partners_visible_to(user: User | AnonymousUser) -> QuerySet[Partner]:
    if not isinstance(user, User) or not user.is_staff:
        return Partner.objects.none()
    if user.is_superuser:
        return Partner.objects.all()
    return Partner.objects.filter(staff=user)


def partner_or_404(user: User | AnonymousUser, slug: str) -> Partner:
    """The partner with this slug if the user may see it; otherwise 404, as if it did not exist."""
    return get_object_or_404(partners_visible_to(user), slug=slug)


def acting_user(request: HttpRequest) -> User:
    """The signed-in user behind a request that passed `staff_required`, for services and audit."""
    user = request.user
    if not isinstance(user, User):
        raise PermissionDenied("Log in first.")
    return user


def staff_required(
    view: Callable[Concatenate[HttpRequest, P], HttpResponse],
) -> Callable[Concatenate[HttpRequest, P], HttpResponse]:
    """Log in first; then only staff accounts (403 for a signed-in user who is not staff)."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
        if not request.user.is_staff:
            raise PermissionDenied("Staff accounts only.")
        return view(request, *args, **kwargs)

    return wrapper


def superuser_required(
    view: Callable[Concatenate[HttpRequest, P], HttpResponse],
) -> Callable[Concatenate[HttpRequest, P], HttpResponse]:
    """For actions that are not scoped to one partner, such as creating a partner."""

    @staff_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
        if not request.user.is_superuser:
            raise PermissionDenied("Only superusers can do this.")
        return view(request, *args, **kwargs)

    return wrapper
