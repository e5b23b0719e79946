"""`{% audit_rows entries as rows %}`: audit entries paired with their objects' URLs (one bulk
lookup per object type, see portal.audit_links), for templates/portal/_audit_table.html."""

from collections.abc import Iterable
from typing import Any, Optional

from django import template

from core.models import AuditEntry
from portal.audit_links import audit_links

register = template.Library()


@register.simple_tag(takes_context=True)
def audit_rows(context: Any, entries: Iterable[AuditEntry]) -> list[tuple[AuditEntry, Optional[str]]]:
    request = context.get("request")
    if request is None:
        return [(entry, None) for entry in entries]
    return audit_links(entries, request.user)
