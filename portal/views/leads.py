"""The leads list (filters, search, keyset pages), one lead's page (data and timeline) and one
delivery's page (all its attempts).

The actions on a lead are in portal.views.lead_actions.
"""

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Optional, TypeVar
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import Model, Q, QuerySet, prefetch_related_objects
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from core.access import staff_required
from core.models import AuditEntry
from core.paging import keyset_page, whole_number
from grants.access import partner_or_404, partners_visible_to
from grants.models import Partner, WebhookEvent
from leads import stats
from leads.circuit import circuit_state
from leads.history import attempts_newest_first, attempts_of, latest_attempts, request_body_head
from leads.models import Delivery, DeliveryAttempt, Lead, LeadQuerySet
from leads.services import RETRYABLE_STATUSES
from leads.staff_services import CANCELLABLE_STATUSES
from portal import attempts as attempt_view
from portal.forms.leads import LeadFilterForm

PAGE_SIZE = 50
# The lead's page shows this many of the newest staff actions on the lead and the deliveries it
# shows; /audit/ has every one.
AUDIT_ENTRIES = 50
# The lead's page shows this many of RG's newest callbacks about the lead; the callbacks list,
# filtered to the lead, has every one.
LEAD_CALLBACKS = 20
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR = re.compile(r"([0-9]{1,18})\.([0-9]{1,18})")
# Sequences and attempt numbers are integer columns: ten digits hold every one.
_NUMBER_DIGITS = 10
Row = TypeVar("Row", bound=Model)


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


def leads_matching(request: HttpRequest, partners: list[Partner], form: LeadFilterForm) -> LeadQuerySet:
    """The leads a valid filter form selects among the user's: what /leads/ lists and exports."""
    leads = _visible_leads(request, partners, form.cleaned_data["partner"]).filter_by(form.filters())
    failed = form.failed_attempts()
    if failed is not None:
        # The overview's failure reason: its leads, found from the window's attempts.
        leads = leads.filter(pk__in=stats.lead_ids_with_failed_attempts(**failed))
    bulk = form.bulk_leads()
    if bulk is not None:
        # The bulk retry page's counts: the job's leads, by what became of their deliveries.
        leads = leads.filter(pk__in=bulk)
    return leads


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
        rows, older, newer = _page(leads_matching(request, partners, form), request.GET)
    # An empty failed_error is a filter (attempts without a message), so pages keep it.
    keep = {k: v for k, v in request.GET.items() if k not in ("after", "before") and (v or k == "failed_error")}
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
    """One page of leads and the cursors of the pages around it (None where there is none).
    `?after=` and `?before=` follow the list's order, newest first: after is older."""
    # The order the lead indexes end in, whatever the filters: (-created, -id).
    page = keyset_page(
        leads,
        ("created", "id"),
        PAGE_SIZE,
        older_than=cursor_parse(params.get("after", "")),
        newer_than=cursor_parse(params.get("before", "")),
    )
    older = cursor_for(page.older) if page.older else None
    return page.rows, older, cursor_for(page.newer) if page.newer else None


def _number_parse(text: str) -> Optional[int]:
    """A cursor of the lead and delivery pages: a delivery's sequence or an attempt's number."""
    return whole_number(text, _NUMBER_DIGITS)


def _numbered_page(
    rows: QuerySet[Row], key: str, params: Any, size: int
) -> tuple[list[Row], Optional[int], Optional[int]]:
    """One page of `rows`, highest `key` first: `?before=` walks to lower keys, `?after=` back to
    higher ones. Returns the rows and the cursors of the pages around them (None where there is
    none); a broken cursor shows the first page.

    Here `before` and `after` compare key values (`?before=21`: deliveries below #21, the older
    ones) where the lead list's follow its newest-first order; both are in links people keep."""
    before = _number_parse(params.get("before", ""))
    after = _number_parse(params.get("after", ""))
    page = keyset_page(
        rows,
        (key,),
        size,
        older_than=None if before is None else (before,),
        newer_than=None if after is None else (after,),
    )
    lower = getattr(page.older, key) if page.older else None
    higher = getattr(page.newer, key) if page.newer else None
    return page.rows, lower, higher


def _pager(path: str, lower: Optional[int], higher: Optional[int]) -> dict[str, Optional[str]]:
    return {
        "older_url": None if lower is None else f"{path}?before={lower}",
        "newer_url": None if higher is None else f"{path}?after={higher}",
        "newest_url": None if higher is None else path,
    }


@require_GET
@staff_required
def lead_detail(request: HttpRequest, slug: str, lead_id: uuid.UUID) -> HttpResponse:
    """The lead's current data and a timeline of its deliveries, newest first, LEAD_PAGE_DELIVERIES
    at a time, each with its latest LEAD_PAGE_ATTEMPTS attempts (the delivery's page has the rest).
    The same few queries however long the lead's history."""
    lead = lead_or_404(request, slug, lead_id)
    deliveries = lead.deliveries.select_related("actor", "retry_requested_by")
    page, lower, higher = _numbered_page(deliveries, "sequence", request.GET, settings.LEAD_PAGE_DELIVERIES)
    prefetch_related_objects(page, latest_attempts())
    audit = (
        AuditEntry.objects.filter(partner=lead.partner)
        .filter(
            Q(object_type="lead", object_id=str(lead.lead_id))
            | Q(object_type="delivery", object_id__in=[str(d.public_id) for d in page])
        )
        .select_related("actor", "partner")
    )
    # Newest first by the (partner, lead_id, -received_at) partial index; no body, no headers.
    callbacks = list(
        WebhookEvent.objects.filter(partner=lead.partner, lead_id=lead.lead_id)
        .order_by("-received_at", "-id")
        .only("public_id", "action", "state", "received_at", "timestamp")[: LEAD_CALLBACKS + 1]
    )
    callbacks_query = urlencode({"partner": lead.partner.slug, "lead": lead.lead_id})
    context = {
        "lead": lead,
        "partner": lead.partner,
        "callbacks": callbacks[:LEAD_CALLBACKS],
        # Counted only when the page cannot show them all (the count reads the same index).
        "callbacks_total": (
            WebhookEvent.objects.filter(partner=lead.partner, lead_id=lead.lead_id).count()
            if len(callbacks) > LEAD_CALLBACKS
            else len(callbacks)
        ),
        "callbacks_url": f"{reverse('portal:callback_list')}?{callbacks_query}",
        "timeline": [
            _timeline_item(delivery, attempts_of(delivery), _older_attempts_url(lead, delivery)) for delivery in page
        ],
        "deliveries_total": lead.deliveries.count(),
        "shown_from": page[-1].sequence if page else None,
        "shown_to": page[0].sequence if page else None,
        **_pager(request.path, lower, higher),
        "entries": audit[:AUDIT_ENTRIES],
        "data_json": json.dumps(lead.data, indent=2, sort_keys=True, ensure_ascii=False),
        "site_circuit": circuit_state(lead.site),
        "cancellable": CANCELLABLE_STATUSES,
        "retryable": RETRYABLE_STATUSES,
        "section": "leads",
    }
    return render(request, "portal/lead_detail.html", context)


@require_GET
@staff_required
def delivery_detail(request: HttpRequest, slug: str, lead_id: uuid.UUID, delivery_id: uuid.UUID) -> HttpResponse:
    """One delivery of a lead and its attempts, newest first, LEAD_PAGE_ATTEMPTS at a time."""
    lead = lead_or_404(request, slug, lead_id)
    delivery = get_object_or_404(lead.deliveries.select_related("actor", "retry_requested_by"), public_id=delivery_id)
    attempts = attempts_newest_first().filter(delivery=delivery)
    page, lower, higher = _numbered_page(attempts, "number", request.GET, settings.LEAD_PAGE_ATTEMPTS)
    item = _timeline_item(delivery, page)
    for row, engineer in zip(item["attempts"], _engineer_views(delivery, page), strict=True):
        row["engineer"] = engineer
    compare = _number_parse(request.GET.get("compare", ""))
    context = {
        "lead": lead,
        "partner": lead.partner,
        "item": item,
        "shown_from": page[-1].number if page else None,
        "shown_to": page[0].number if page else None,
        **_pager(request.path, lower, higher),
        # The form offers the delivery before this one (the one after, for the first).
        "compare": compare if compare is not None else (delivery.sequence - 1 or 2),
        "comparison": None if compare is None else compared_with(delivery, compare),
        "cancellable": CANCELLABLE_STATUSES,
        "retryable": RETRYABLE_STATUSES,
        "section": "leads",
    }
    return render(request, "portal/lead_delivery.html", context)


def _sent_body(delivery: Delivery, attempt: DeliveryAttempt) -> str:
    """The body the attempt sent: its stored copy when whole, else the delivery's payload (what
    every attempt of the delivery sends; the stored copy is cut or pruned)."""
    head = request_body_head(attempt)
    if attempt.bodies_pruned_at is None and len(head) < settings.ATTEMPT_BODY_MAX_CHARS:
        return head
    return json.dumps(delivery.payload)


def _engineer_views(delivery: Delivery, page: list[DeliveryAttempt]) -> list[dict[str, Any]]:
    """For each attempt of the page (newest first): headers, cURL, the body with the field RG's
    error names marked, and the diff from the attempt before it when the page shows that one
    too. No query: the delivery page keeps its fixed few (`compared_with` diffs deliveries)."""
    bodies = [_sent_body(delivery, attempt) for attempt in page]
    before = [
        (f"attempt #{a.number}", body) if a.number == attempt.number - 1 else ("", "")
        for attempt, a, body in zip(page, page[1:], bodies[1:], strict=False)
    ]
    before += [("", "")] * (len(page) - len(before))
    views = []
    for attempt, body, (before_label, before_body) in zip(page, bodies, before, strict=True):
        field = attempt_view.named_field(attempt.response_body, body)
        views.append(
            {
                "headers": attempt_view.request_headers(
                    has_body=bool(body), router_destinations=delivery.router_destinations
                ),
                "response_headers": attempt_view.response_headers(attempt),
                "curl": attempt_view.attempt_curl(
                    method=attempt.request_method,
                    url=attempt.request_url,
                    body=body,
                    router_destinations=delivery.router_destinations,
                ),
                "field": field,
                "body_lines": attempt_view.body_lines(body, field),
                "diff_from": before_label,
                "diff": attempt_view.body_diff(before_body, body) if before_label else [],
            }
        )
    return views


def compared_with(delivery: Delivery, sequence: int) -> dict[str, Any]:
    """What changed in the body from the lead's delivery #`sequence` to this one (the body every
    attempt of a delivery sends), or that there is no such delivery."""
    other = delivery.lead.deliveries.filter(sequence=sequence).first()
    if other is None:
        return {"sequence": sequence, "missing": True, "diff": []}
    return {
        "sequence": sequence,
        "label": f"delivery #{sequence}",
        "operation": other.get_operation_display(),
        "missing": False,
        "diff": attempt_view.body_diff(json.dumps(other.payload), json.dumps(delivery.payload)),
    }


def _timeline_item(
    delivery: Delivery, attempts: list[DeliveryAttempt], older_attempts_url: Optional[str] = None
) -> dict[str, Any]:
    return {
        "delivery": delivery,
        "payload": json.dumps(delivery.payload, indent=2, ensure_ascii=False),
        "attempts": [_attempt_row(attempt) for attempt in attempts],
        "older_attempts_url": older_attempts_url,
    }


def _older_attempts_url(lead: Lead, delivery: Delivery) -> Optional[str]:
    """The delivery's page from the attempt before the oldest on the lead's page; None if that
    was its first (attempts are numbered from 1)."""
    shown = attempts_of(delivery)
    if not shown or shown[-1].number <= 1:
        return None
    url = reverse("portal:delivery_detail", args=[lead.partner.slug, lead.lead_id, delivery.public_id])
    return f"{url}?before={shown[-1].number}"


def _attempt_row(attempt: DeliveryAttempt) -> dict[str, Any]:
    return {
        "attempt": attempt,
        "request_body": pretty_json(request_body_head(attempt)),
        "response_body": pretty_json(attempt.response_body),
    }


def pretty_json(text: str) -> str:
    """A stored request or response body, indented when it is JSON, as it came otherwise."""
    if not text:
        return ""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text
