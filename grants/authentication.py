"""DRF authentication with a portal API key over HTTP Basic (key id as username, secret as password).

`request.auth` is the ApiKey, and through it the partner every query is scoped to.

Two things keep it cheap and safe on the push API's hot path:
- A key, found by its id, is kept in this process for API_KEY_CACHE_SECONDS, so most requests
  run no query for it. The secret is still checked on every request, in constant time. A
  revoked key or a deactivated partner stops working in this process at once (signals below)
  and in every other within API_KEY_CACHE_SECONDS.
- Failed attempts are counted per client address in the shared cache (DRF's throttle history):
  past API_KEY_FAILURES_PER_MINUTE the address gets 429 with Retry-After, even for a right
  secret, so guessing cannot go on. One warning is logged when an address is blocked, not one
  per request.
"""

import base64
import binascii
import logging
import time
from datetime import timedelta
from typing import Any, Optional

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from grants.models import ApiKey, Partner
from grants.process_cache import ProcessCache

logger = logging.getLogger(__name__)

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
        if _blocked:
            _refuse_if_blocked(FailedKeyThrottle().get_ident(request))
        try:
            key_id, secret = _basic_credentials(encoded.strip())
            key = keys.get(key_id)
            if key is None or not key.secret_matches(secret):
                raise exceptions.AuthenticationFailed("Invalid API key.")
        except exceptions.AuthenticationFailed:
            failures = FailedKeyThrottle()
            if not failures.allow_request(request, None):  # type: ignore[arg-type]  # no view here
                _block(failures.get_ident(request), max(failures.wait() or 60.0, 1.0))
            raise
        _touch(key)
        return ApiKeyUser(key), key

    def authenticate_header(self, request: Request) -> str:
        return f'Basic realm="{self.www_authenticate_realm}"'


class FailedKeyThrottle(SimpleRateThrottle):
    """Failed API-key attempts per client address (REMOTE_ADDR, or X-Forwarded-For behind
    REST_FRAMEWORK's NUM_PROXIES), in the default cache so every process counts together."""

    scope = "api_key_failures"

    def get_rate(self) -> str:
        return f"{settings.API_KEY_FAILURES_PER_MINUTE}/min"

    def get_cache_key(self, request: Request, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


# Per process: the usable keys by id, with their partners (a revoked key or a deactivated
# partner is dropped at once here, within API_KEY_CACHE_SECONDS elsewhere); and client address
# -> monotonic time its block ends, pruned when there are many.
keys = ProcessCache(ApiKey.objects.usable_by_id, bound_setting="API_KEY_CACHE_SECONDS", models=(ApiKey, Partner))
_blocked: dict[str, float] = {}
_BLOCKED_PRUNE_AT = 10_000


def _refuse_if_blocked(address: str) -> None:
    until = _blocked.get(address)
    if until is None:
        return
    remaining = until - time.monotonic()
    if remaining > 0:
        raise exceptions.Throttled(wait=remaining, detail="Too many failed API key attempts from this address.")
    del _blocked[address]


def _block(address: str, seconds: float) -> None:
    if len(_blocked) >= _BLOCKED_PRUNE_AT:
        now = time.monotonic()
        for stale in [a for a, until in _blocked.items() if until <= now]:
            del _blocked[stale]
    _blocked[address] = time.monotonic() + seconds
    logger.warning(
        "API key failures from %s passed %s a minute: refused for %.0f s",
        address,
        settings.API_KEY_FAILURES_PER_MINUTE,
        seconds,
    )
    raise exceptions.Throttled(wait=seconds, detail="Too many failed API key attempts from this address.")


def api_keys_reset() -> None:
    """Forget cached keys and blocked addresses (tests)."""
    keys.forget()
    _blocked.clear()


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
    key.last_used_at = now  # the cached copy too, or it would write on every request


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
