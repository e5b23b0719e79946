"""What a partner's audit entries show of it (core.audit writes them): its plain fields as they
are, its secrets never. A secret shows as core.audit's masks or by fingerprint."""

import hashlib
from typing import Any

from grants.models import Partner

# The partner fields an audit entry shows; secrets are summarised, never copied.
PARTNER_AUDITED_FIELDS = (
    "name",
    "slug",
    "rg_username",
    "rg_partner_id",
    "rg_company_id",
    "rg_api_url",
    "grant_email_address",
    "is_active",
)


def partner_snapshot(partner: Partner) -> dict[str, Any]:
    return {field: getattr(partner, field) for field in PARTNER_AUDITED_FIELDS}


def secret_fingerprint(secret: str) -> str:
    """A short, non-reversible name for a secret, so staff can tell secrets apart without seeing them."""
    return hashlib.sha256(secret.encode()).hexdigest()[:10]


def webhook_secrets_change(before: list[str], after: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A change of a partner's webhook secrets as audit (before, after): how many, and which were
    added and removed by fingerprint."""
    return {"count": len(before)}, {
        "count": len(after),
        "added": [secret_fingerprint(s) for s in after if s not in before],
        "removed": [secret_fingerprint(s) for s in before if s not in after],
    }
