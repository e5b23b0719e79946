"""Destination callbacks for staff: every stored request, the rejected-signature count, reprocess.

Callbacks are always a partner's (the webhook URL names it), so scoping is by partner alone: an
event of a partner the user cannot see is a 404, whether linked or guessed.
"""

import json
import uuid
from typing import Any, Optional

from django import forms
from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from core.access import acting_user, staff_required
from core.models import AuditEntry
from core.paging import received_page, row_by_public_id
from grants import destination
from grants.access import partners_visible_to
from grants.callbacks import webhook_event_reprocess
from grants.destination import CallbackProblem
from grants.models import Partner, Site, WebhookEvent, WebhookRejection
from portal.forms.grants import UUID_EXAMPLE, CallbackFilterForm

PAGE_SIZE = 50
# The body is shown whole up to this size; RG's callbacks are a few kB, the webhook accepts 1 MiB.
BODY_SHOWN_MAX_CHARS = 200_000
# Enough of a stored signature to match it against RG's logs, too little to send again.
SIGNATURE_SHOWN_CHARS = 8


class CallbackListForm(CallbackFilterForm):
    """The list's filters plus one lead: a lead's page links here for all its callbacks."""

    lead = forms.UUIDField(
        label="Lead id",
        required=False,
        error_messages={"invalid": f"That is not a lead id. It looks like {UUID_EXAMPLE} (32 hexadecimal digits)."},
        widget=forms.TextInput(attrs={"placeholder": UUID_EXAMPLE, "spellcheck": "false"}),
    )


def _visible_events(request: HttpRequest) -> QuerySet[WebhookEvent]:
    return WebhookEvent.objects.filter(partner__in=partners_visible_to(request.user))


def _rejections(partners: QuerySet[Partner]) -> list[dict[str, Any]]:
    """Per partner, refused callbacks (wrong or missing signature): a number staff must see."""
    found = {r.partner_id: r for r in WebhookRejection.objects.filter(partner__in=partners)}
    return [{"partner": partner, "rejection": found.get(partner.pk)} for partner in partners]


def _known_sites(events: list[WebhookEvent]) -> dict[tuple[int, Optional[uuid.UUID]], Site]:
    """The sites the page's events name, so rows link to sites that exist (one query)."""
    site_uuids = {e.site_uuid for e in events if e.site_uuid}
    if not site_uuids:
        return {}
    sites = Site.objects.filter(partner_id__in={e.partner_id for e in events}, site_uuid__in=site_uuids)
    return {(s.partner_id, s.site_uuid): s for s in sites}


@staff_required
def callback_list(request: HttpRequest) -> HttpResponse:
    partners = partners_visible_to(request.user).order_by("name")
    actions = sorted(destination.KNOWN_ACTIONS)
    form = CallbackListForm(request.GET or None, partners=partners, actions=actions)
    # The body and headers stay in the database: a list of fifty never needs them.
    events = _visible_events(request).select_related("partner").defer("body", "headers")
    shown_partners = partners
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        if data["partner"]:
            events = events.filter(partner__slug=data["partner"])
            shown_partners = partners.filter(slug=data["partner"])
        if data["action"]:
            events = events.filter(action=data["action"])
        if data["state"]:
            events = events.filter(state=data["state"])
        if data["site"]:
            events = events.filter(site_uuid=data["site"])
        if data["lead"]:
            events = events.filter(lead_id=data["lead"])
    elif form.is_bound:
        # A bad filter (a mistyped site UUID) shows its message and no rows rather than all of them.
        events = events.none()
    older_than = row_by_public_id(_visible_events(request), request.GET.get("older_than", ""))
    page, last = received_page(events, older_than, PAGE_SIZE)
    sites = _known_sites(page)
    query = request.GET.copy()
    query.pop("older_than", None)
    context = {
        "form": form,
        "rows": [{"event": e, "site": sites.get((e.partner_id, e.site_uuid))} for e in page],
        "rejections": _rejections(shown_partners),
        "next_cursor": last.public_id if last else None,
        "filter_query": query.urlencode(),
        "paged": older_than is not None,
        "show_partner": partners.count() > 1,
        "section": "callbacks",
    }
    return render(request, "portal/callback_list.html", context)


def _pretty_body(event: WebhookEvent) -> tuple[str, bool]:
    """The body as staff read it: indented JSON when it decodes, else the text as received."""
    text = event.body_text
    if event.is_valid:
        try:
            return json.dumps(json.loads(text), indent=2, ensure_ascii=False), True
        except (ValueError, RecursionError):
            pass
    return text, False


def _history(event: WebhookEvent) -> list[dict[str, Any]]:
    """What happened to a callback, oldest first: stored, reprocess requests, site changes, last run.

    There is no history table: the event keeps its latest run, the audit trail who asked for
    another, and the site history what the callback changed.
    """
    steps: list[dict[str, Any]] = [{"at": event.received_at, "what": "Received and stored", "who": "Real Geeks"}]
    requests = AuditEntry.objects.filter(object_type="webhookevent", object_id=str(event.public_id))
    for entry in requests.select_related("actor"):
        before = entry.before or {}
        steps.append(
            {
                "at": entry.created,
                "what": f"Reprocess requested (was {before.get('state', '?')})",
                "who": entry.actor or "system",
                "detail": before.get("error", ""),
            }
        )
    for change in event.status_changes.select_related("site", "actor"):
        steps.append(
            {
                "at": change.created,
                "what": f"Site {change.site}: {change.get_from_status_display() or 'new'} → "
                f"{change.get_to_status_display()}",
                "who": change.actor or "system",
                "detail": change.note,
                "site": change.site,
            }
        )
    if event.processed_at:
        steps.append(
            {
                "at": event.processed_at,
                "what": f"Last processed: {event.get_state_display().lower()}",
                "who": "worker",
                "detail": event.error,
            }
        )
    elif event.state == WebhookEvent.State.FAILED and event.claimed_at:
        steps.append({"at": event.claimed_at, "what": "Last attempt failed", "who": "worker", "detail": event.error})
    return sorted(steps, key=lambda step: step["at"])


def _shown_headers(event: WebhookEvent) -> list[tuple[str, str]]:
    """The stored headers for the page, the signature cut to its start: every stored callback's
    was verified on arrival, and a whole one next to its body is a ready-made replay (harmless
    now, as a body is stored once, but nobody needs it whole to read the page)."""
    signature_header = destination.SIGNATURE_HEADER.lower()
    shown = []
    for name, value in sorted(event.headers.items(), key=lambda item: item[0].lower()):
        if name.lower() == signature_header:
            value = f"{value[:SIGNATURE_SHOWN_CHARS]}… (verified on arrival)" if value else "(none)"
        shown.append((name, value))
    return shown


@staff_required
def callback_detail(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    event = get_object_or_404(_visible_events(request).select_related("partner"), public_id=public_id)
    body, is_json = _pretty_body(event)
    site = Site.objects.filter(partner=event.partner, site_uuid=event.site_uuid).first() if event.site_uuid else None
    context = {
        "event": event,
        "partner": event.partner,
        "body": body[:BODY_SHOWN_MAX_CHARS],
        "body_cut": len(body) > BODY_SHOWN_MAX_CHARS,
        "body_is_json": is_json,
        "body_size": len(event.body),
        "headers": _shown_headers(event),
        "timestamp_readable": destination.parse_timestamp(event.timestamp_raw) is not None,
        "site": site,
        "history": _history(event),
        "can_reprocess": event.is_valid and event.state != WebhookEvent.State.PROCESSING,
        "section": "callbacks",
    }
    return render(request, "portal/callback_detail.html", context)


@staff_required
@require_POST
def callback_reprocess(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    event = get_object_or_404(_visible_events(request).select_related("partner"), public_id=public_id)
    try:
        event = webhook_event_reprocess(event=event, actor=acting_user(request))
        queued = event.state == WebhookEvent.State.RECEIVED
    except CallbackProblem as exc:
        messages.error(request, str(exc))
        return redirect("portal:callback_detail", public_id=event.public_id)
    # Processing runs in a worker after this transaction commits (inline when tasks run eagerly),
    # so the event is read again to tell staff where it stands now.
    event.refresh_from_db()
    if not queued:
        messages.info(request, "A worker is processing this callback right now; look again in a moment.")
    elif event.state == WebhookEvent.State.RECEIVED:
        messages.success(request, "Queued: a worker will process this callback again shortly.")
    else:
        messages.success(request, f"Processed again: {event.get_state_display().lower()}.")
    return redirect("portal:callback_detail", public_id=event.public_id)
