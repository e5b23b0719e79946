"""Standard Webhooks signatures (standardwebhooks.com), which signed-webhook channels send.

The receiver verifies `webhook-signature: v1,<base64 HMAC-SHA256>` over "id.timestamp.body"
with the shared secret (`whsec_` + base64 of 24 to 64 random bytes), and refuses a timestamp
far from its clock. The id is the notification's and stays the same on every retry, so a
receiver can drop a notice it already took; the timestamp and signature are made per attempt.
"""

import base64
import binascii
import hashlib
import hmac
import secrets
from typing import Optional

SECRET_PREFIX = "whsec_"  # noqa: S105 (the spec's prefix, not a secret)
SECRET_BYTES = 32


def secret_new() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)


def secret_refusal(secret: str) -> Optional[str]:
    """Why `secret` cannot sign, or None."""
    if not secret.startswith(SECRET_PREFIX):
        return f"A signing secret starts with {SECRET_PREFIX}, then base64."
    try:
        key = _key(secret)
    except (binascii.Error, ValueError):
        return f"After {SECRET_PREFIX}, a signing secret is base64."
    if not 24 <= len(key) <= 64:
        return "A signing secret holds 24 to 64 bytes (Standard Webhooks)."
    return None


def signature(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header's value for one attempt."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret=secret, msg_id=msg_id, timestamp=timestamp, body=body),
    }
