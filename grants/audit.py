"""What a partner's audit entries show of it (core.audit writes them)."""

from typing import Any

from grants.models import Partner

# The partner fields an audit entry shows; secrets are summarised by the caller, never copied.
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
