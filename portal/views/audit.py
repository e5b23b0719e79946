"""The staff audit trail's page."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from core.access import staff_required
from core.models import AuditEntry
from core.paging import keyset_page, whole_number
from grants.access import partners_visible_to
from portal.forms.filters import AuditFilterForm

AUDIT_PAGE_SIZE = 50
_ID_DIGITS = 18  # an entry id: 18 digits stay within a bigint


@staff_required
def audit_list(request: HttpRequest) -> HttpResponse:
    """Newest first, filtered by partner and action, paged by id so deep pages stay cheap."""
    partners = partners_visible_to(request.user)
    visible = AuditEntry.objects.all()
    if not request.user.is_superuser:
        visible = visible.filter(partner__in=partners)
    entries = visible.select_related("actor", "partner")
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
    # Paged on only (older entries), by the entry id; a broken cursor shows the first page.
    before = whole_number(request.GET.get("before", ""), _ID_DIGITS)
    page = keyset_page(entries, ("id",), AUDIT_PAGE_SIZE, older_than=None if before is None else (before,))
    context = {
        "form": form,
        "entries": page.rows,
        "next_before": page.older.id if page.older else None,
        "partners": partners,
        "partner_slug": partner_slug,
        "action": action,
        "actions": visible.order_by("action").values_list("action", flat=True).distinct(),
        "section": "audit",
    }
    return render(request, "portal/audit_list.html", context)
