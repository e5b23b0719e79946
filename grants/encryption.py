"""Encryption of stored secrets with Fernet keys from FIELD_ENCRYPTION_KEYS (newest first)."""

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class UndecryptableSecret(ImproperlyConfigured):
    """A stored secret that no configured key opens: the key list is wrong, so stop loudly."""


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty: set at least one Fernet key.")
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS holds a value that is not a Fernet key "
            "(32 url-safe base64-encoded bytes, see cryptography's Fernet.generate_key())."
        ) from exc


def keys_check(keys: list[str]) -> None:
    """Raise ImproperlyConfigured unless `keys` is a usable key list (settings call this at start-up)."""
    _fernet(tuple(keys))


def _current() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(plain: str) -> str:
    """A token for `plain`, made with the newest key."""
    return _current().encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    """The plain text of `token`; raises UndecryptableSecret when no configured key opens it."""
    try:
        return _current().decrypt(token.encode()).decode()
    except InvalidToken:
        raise UndecryptableSecret(
            "A stored secret could not be decrypted with any key in FIELD_ENCRYPTION_KEYS. "
            "Restore the key it was written with (keys rotate newest first)."
        ) from None


def rotate(token: str) -> str:
    """`token` re-encrypted with the newest key (unchanged in meaning)."""
    try:
        return _current().rotate(token.encode()).decode()
    except InvalidToken:
        raise UndecryptableSecret(
            "A stored secret could not be decrypted with any key in FIELD_ENCRYPTION_KEYS."
        ) from None
