"""The leads list (filters, search, keyset pages) and one lead's page (data and timeline).

The actions on a lead are in portal.lead_actions.
"""

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Optional
from urllib.parse import urlencode

from django.db.models import Prefetch, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from grants.models import Partner
from leads.circuit import circuit_state
from leads.models import DeliveryAttempt, Lead, LeadQuerySet
from leads.services import RETRYABLE_STATUSES
from leads.staff_services import CANCELLABLE_STATUSES
from portal.access import partner_or_404, partners_visible_to, staff_required
from portal.lead_forms import LeadFilterForm
from portal.models import AuditEntry

PAGE_SIZE = 50
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR = re.compile(r"([0-9]{1,18})\.([0-9]{1,18})")


def lead_or_404(request: HttpRequest, slug: str, lead_id: uuid.UUID) -> Lead:
    """The lead if it belongs to a partner the user may see; otherwise 404, as if it did not exist."""
    partner = partner_or_404(request.user, slug)
    return get_object_or_404(Lead.objects.select_related("partner", "site"), partner=partner, lead_id=lead_id)


def cursor_for(lead: Lead) -> str:
    """A page boundary: the lead's (created, pk), as microseconds since the epoch and the pk."""
    return f"{(lead.created - _EPOCH) // timedelta(microseconds=1)}.{lead.pk}"


def cursor_parse(text: str) -> Optional[tuple[datetime, int]]:
    match = _CURSOR.fullmatch(text)
    if match is None:
        return None
    try:
        return _EPOCH + timedelta(microseconds=int(match[1])), int(match[2])
    except OverflowError:
        return None


def _visible_leads(request: HttpRequest, partners: list[Partner], slug: str) -> LeadQuerySet:
    """The user's leads, or one partner's. The partner ids are literal values, not a subquery,
    so the database can use the (partner, created, id) index to read a page in order."""
    leads = Lead.objects.select_related("partner", "site")
    if slug:
        # The form accepted the slug, so it is one of `partners`.
        return leads.filter(partner_id=next(p.pk for p in partners if p.slug == slug))
    if request.user.is_superuser:
        return leads  # every partner: the (created, id) index serves the page
    ids = [partner.pk for partner in partners]
    return leads.filter(partner_id=ids[0]) if len(ids) == 1 else leads.filter(partner_id__in=ids)


@require_GET
@staff_required
def lead_list(request: HttpRequest) -> HttpResponse:
    """Newest first, in keyset pages: `?after=` walks to older leads, `?before=` back to newer.

    No page numbers and no total: both would make the database count every matching lead.
    """
    partners = list(partners_visible_to(request.user).order_by("name"))
    form = LeadFilterForm(request.GET, partners=partners)
    rows: list[Lead] = []
    older = newer = None
    if form.is_valid():
        leads = _visible_leads(request, partners, form.cleaned_data["partner"]).filter_by(form.filters())
        rows, older, newer = _page(leads, request.GET)
    keep = {k: v for k, v in request.GET.items() if k not in ("after", "before") and v}
    context = {
        "form": form,
        "leads": rows,
        "filtered": any(keep.values()),
        "older_url": f"?{urlencode({**keep, 'after': older})}" if older else None,
        "newer_url": f"?{urlencode({**keep, 'before': newer})}" if newer else None,
        "newest_url": f"?{urlencode(keep)}" if newer else None,
        "show_partner": len(partners) > 1,
        "section": "leads",
    }
    return render(request, "portal/lead_list.html", context)


def _page(leads: LeadQuerySet, params: Any) -> tuple[list[Lead], Optional[str], Optional[str]]:
    """One page of leads and the cursors of the pages around it (None where there is none)."""
    after = cursor_parse(params.get("after", ""))
    before = cursor_parse(params.get("before", ""))
    if before is not None:
        found = list(leads.newer_than(*before).order_by("created", "id")[: PAGE_SIZE + 1])
        rows = list(reversed(found[:PAGE_SIZE]))
        more_newer, more_older = len(found) > PAGE_SIZE, True
    else:
        if after is not None:
            leads = leads.older_than(*after)
        found = list(leads.order_by("-created", "-id")[: PAGE_SIZE + 1])
        rows = found[:PAGE_SIZE]
        more_newer, more_older = after is not None, len(found) > PAGE_SIZE
    if not rows:
        return rows, None, None
    return rows, cursor_for(rows[-1]) if more_older else None, cursor_for(rows[0]) if more_newer else None


@require_GET
@staff_required
def lead_detail(request: HttpRequest, slug: str, lead_id: uuid.UUID) -> HttpResponse:
    """The lead's current data and a timeline of its deliveries and attempts, newest first."""
    lead = lead_or_404(request, slug, lead_id)
    attempts: Prefetch[Any, Any, Any] = Prefetch(
        "attempts", queryset=DeliveryAttempt.objects.select_related("actor").order_by("-number")
    )
    deliveries = list(
        lead.deliveries.select_related("actor", "retry_requested_by").prefetch_related(attempts).order_by("-sequence")
    )
    audit = (
        AuditEntry.objects.filter(partner=lead.partner)
        .filter(
            Q(object_type="lead", object_id=str(lead.lead_id))
            | Q(object_type="delivery", object_id__in=[str(d.public_id) for d in deliveries])
        )
        .select_related("actor", "partner")
    )
    timeline = [
        {
            "delivery": delivery,
            "payload": json.dumps(delivery.payload, indent=2, ensure_ascii=False),
            "attempts": [
                {
                    "attempt": attempt,
                    "request_body": pretty_json(attempt.request_body),
                    "response_body": pretty_json(attempt.response_body),
                }
                for attempt in delivery.attempts.all()
            ],
        }
        for delivery in deliveries
    ]
    context = {
        "lead": lead,
        "partner": lead.partner,
        "timeline": timeline,
        "entries": audit,
        "data_json": json.dumps(lead.data, indent=2, sort_keys=True, ensure_ascii=False),
        "site_circuit": circuit_state(lead.site),
        "cancellable": CANCELLABLE_STATUSES,
        "retryable": RETRYABLE_STATUSES,
        "section": "leads",
    }
    return render(request, "portal/lead_detail.html", context)


def pretty_json(text: str) -> str:
    """A stored request or response body, indented when it is JSON, as it came otherwise."""
    if not text:
        return ""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text
