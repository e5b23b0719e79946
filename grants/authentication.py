"""DRF authentication with a portal API key over HTTP Basic (key id as username, secret as password).

`request.auth` is the ApiKey, and through it the partner every query is scoped to.
"""

import base64
import binascii
from datetime import timedelta
from typing import Any, Optional

from django.db.models import Q
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from grants.models import ApiKey

# Writing last_used_at on every request would make each push two writes; a few minutes of
# precision is all staff need to spot an unused key.
LAST_USED_PRECISION = timedelta(minutes=5)


class ApiKeyUser:
    """Stands in for request.user when a product authenticated with an API key (not a person)."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_superuser = False
    pk = None

    def __init__(self, key: ApiKey) -> None:
        self.key = key

    def __str__(self) -> str:
        return f"api key {self.key.key_id}"


class ApiKeyAuthentication(BaseAuthentication):
    www_authenticate_realm = "partner-portal"

    def authenticate(self, request: Request) -> Optional[tuple[Any, ApiKey]]:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        key_id, secret = _basic_credentials(encoded.strip())
        key = ApiKey.objects.authenticate(key_id, secret)
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        _touch(key)
        return ApiKeyUser(key), key

    def authenticate_header(self, request: Request) -> str:
        return f'Basic realm="{self.www_authenticate_realm}"'


def _basic_credentials(encoded: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise exceptions.AuthenticationFailed("Invalid HTTP Basic credentials.") from None
    key_id, sep, secret = decoded.partition(":")
    # NUL cannot reach PostgreSQL in a query parameter; no real key contains one.
    if not sep or not key_id or not secret or "\x00" in decoded:
        raise exceptions.AuthenticationFailed("Invalid HTTP Basic credentials.")
    return key_id, secret


def _touch(key: ApiKey) -> None:
    now = timezone.now()
    if key.last_used_at is not None and key.last_used_at >= now - LAST_USED_PRECISION:
        return  # fresh enough: no write, and no query
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_PRECISION)
    ApiKey.objects.filter(stale, pk=key.pk).update(last_used_at=now)


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Describes the API key in the OpenAPI schema (drf-spectacular finds it by target_class)."""

    target_class = ApiKeyAuthentication
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "basic",
            "description": "A portal API key: the key id as the username, its secret as the password.",
        }
