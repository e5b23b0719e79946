"""Grant emails as a trusted receiving server hands them on, for the tests of every channel."""

from pathlib import Path
from typing import Any

TRUSTED_SERVER = "mx.portal.example"
SENDER_AUTH_EMAILS = Path(__file__).parent / "emails" / "sender_auth"
PASSED = (
    f"Authentication-Results: {TRUSTED_SERVER}; dkim=pass header.d=realgeeks.com header.s=rg2026;"
    " spf=pass smtp.mailfrom=bounce@realgeeks.com\r\n"
)


def authenticated(raw: bytes) -> bytes:
    """`raw` with the trusted receiving server's verdict on top: DKIM and SPF pass for realgeeks.com."""
    return PASSED.encode() + raw


def sender_auth_email(name: str) -> bytes:
    return (SENDER_AUTH_EMAILS / name).read_bytes()


def trust_receiving_server(settings: Any) -> None:
    settings.GRANT_EMAIL_TRUSTED_AUTHSERV_IDS = [TRUSTED_SERVER]
    settings.GRANT_EMAIL_SENDER_DOMAINS = ["realgeeks.com"]
