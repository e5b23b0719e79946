"""HTTP Basic against SandboxAccount, with RG's rule: one 401 for missing, wrong or not-allowed."""

import base64
import binascii
import uuid
from typing import Optional

from django.http import HttpRequest

from sandbox import rows
from sandbox.models import SandboxAccount

# What checking a request needs of its account.
_ACCOUNT_FIELDS = ("id", "password_hash", "site_uuids")


class Unauthorized(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def basic_credentials(request: HttpRequest) -> Optional[tuple[str, str]]:
    """The (username, password) of an HTTP Basic Authorization header, or None when there is none readable."""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, colon, password = decoded.partition(":")
    # PostgreSQL refuses NUL in a query parameter; such a username cannot be an account anyway.
    if not colon or "\x00" in username:
        return None
    return username, password


def site_key(site: str) -> Optional[str]:
    """The canonical spelling of a site UUID from a path, as accounts store it; None if it is not one."""
    if not site.isascii():
        return None
    try:
        return str(uuid.UUID(site))
    except ValueError:
        return None


def authenticate(credentials: Optional[tuple[str, str]], site: str) -> SandboxAccount:
    """The account these credentials belong to, if it may send to `site`; Unauthorized otherwise."""
    if credentials is None:
        raise Unauthorized("Missing credentials: use HTTP Basic authentication.")
    username, password = credentials
    found = rows.row(SandboxAccount, _ACCOUNT_FIELDS, where="username", equals=username)
    account = SandboxAccount(username=username, **found) if found is not None else None
    if account is None or not account.check_password(password):
        raise Unauthorized("Invalid credentials.")
    key = site_key(site)
    if key is None or not account.may_send_to(key):
        raise Unauthorized("These credentials may not send to this site.")
    return account
