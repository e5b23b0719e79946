"""Who may act at all: signed-in staff, and superusers for what is no one partner's.

Which partners a staff user may see is grants.access's business.
"""

from collections.abc import Callable
from functools import wraps
from typing import Concatenate, ParamSpec

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

P = ParamSpec("P")


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
