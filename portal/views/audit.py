"""The staff audit trail's page."""

import re

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from core.access import staff_required
from core.models import AuditEntry
from grants.access import partners_visible_to
from portal.forms.filters import AuditFilterForm

AUDIT_PAGE_SIZE = 50
_ID = re.compile(r"[0-9]{1,18}")  # an entry id: ASCII digits, within a bigint


@staff_required
def audit_list(request: HttpRequest) -> HttpResponse:
    """Newest first, filtered by partner and action, paged by id so deep pages stay cheap."""
    partners = partners_visible_to(request.user)
    visible = AuditEntry.objects.all()
    if not request.user.is_superuser:
        visible = visible.filter(partner__in=partners)
    entries = visible.select_related("actor", "partner").order_by("-id")
    form = AuditFilterForm(request.GET, partners=partners)
    partner_slug = action = ""
    if form.is_valid():
        partner_slug, action = form.cleaned_data["partner"], form.cleaned_data["action"]
    else:
        entries = entries.none()  # a bad filter shows its message and no rows rather than all of them
    if partner_slug:
        entries = entries.filter(partner__slug=partner_slug)
    if action:
        entries = entries.filter(action=action)
    before = request.GET.get("before", "")
    if _ID.fullmatch(before):  # anything else is a broken cursor: the first page
        entries = entries.filter(id__lt=int(before))
    page = list(entries[: AUDIT_PAGE_SIZE + 1])
    context = {
        "form": form,
        "entries": page[:AUDIT_PAGE_SIZE],
        "next_before": page[AUDIT_PAGE_SIZE - 1].id if len(page) > AUDIT_PAGE_SIZE else None,
        "partners": partners,
        "partner_slug": partner_slug,
        "action": action,
        "actions": visible.order_by("action").values_list("action", flat=True).distinct(),
        "section": "audit",
    }
    return render(request, "portal/audit_list.html", context)
