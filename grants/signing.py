"""Real Geeks Destination signatures: lowercase hex HMAC-SHA256 of the exact raw body."""

import hashlib
import hmac
from collections.abc import Iterable


def sign(body: bytes, secret: str) -> str:
    """The X-Lead-Router-Signature RG would send for `body` under `secret`."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(body: bytes, signature: str, secrets: Iterable[str]) -> bool:
    """Whether `signature` signs `body` under any of `secrets` (rotation keeps old ones valid).

    Every secret is tried, and each comparison is constant-time, so timing tells nothing.
    """
    presented = signature.strip().lower().encode()
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(sign(body, secret).encode(), presented)
    return matched
