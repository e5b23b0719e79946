"""Alerts for staff: incidents (open first, then recent) with their notices and attempts, and the
alert channels with "send a test".

Scoping is by partner, as everywhere: staff see their partners' incidents and channels, and
superusers also those that are no partner's (the worker heartbeat, operator channels). Anything
else is a 404, whether linked or guessed.
"""

import uuid
from typing import Any

from django.contrib import messages
from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from alerts import services
from alerts.forms import ChannelForm
from alerts.models import Channel, Incident, Notification, NotificationAttempt
from alerts.tasks import notifications_send_soon
from core.access import acting_user, staff_required
from grants.access import partners_visible_to

RECENT_INCIDENTS = 50
CHANNEL_HISTORY = 50
# Attempts shown per notification; a notice has at most ALERTS_NOTIFY_MAX_ATTEMPTS of them.
ATTEMPTS_SHOWN = 20


def _visible_incidents(user: User | AnonymousUser) -> QuerySet[Incident]:
    if user.is_superuser:
        return Incident.objects.all()
    return Incident.objects.filter(partner__in=partners_visible_to(user))


def _visible_channels(user: User | AnonymousUser) -> QuerySet[Channel]:
    if user.is_superuser:
        return Channel.objects.all()
    return Channel.objects.filter(partner__in=partners_visible_to(user))


def _with_attempts(notifications: QuerySet[Notification]) -> QuerySet[Notification]:
    return notifications.select_related("channel", "incident").prefetch_related(
        Prefetch("attempts", queryset=NotificationAttempt.objects.order_by("-number"))
    )


def _channel_form(request: HttpRequest, data: Any = None) -> ChannelForm:
    form = ChannelForm(data, initial={"is_active": True})
    partners = partners_visible_to(request.user).order_by("name")
    field = form.fields["partner"]
    field.queryset = partners  # type: ignore[attr-defined]
    # Operator channels (no partner) are superusers' to make; other staff must pick a partner.
    field.required = not request.user.is_superuser
    if request.user.is_superuser:
        field.empty_label = "Operators (incidents that are no partner's)"  # type: ignore[attr-defined]
    else:
        field.empty_label = "Choose a partner"  # type: ignore[attr-defined]
        if len(partners) == 1:
            field.initial = partners[0].pk
    # A new channel is active; the page says what the secret is, once, above the form.
    del form.fields["is_active"]
    form.fields["new_secret"].help_text = ""
    return form


@staff_required
def alert_list(request: HttpRequest, form: ChannelForm | None = None) -> HttpResponse:
    incidents = _visible_incidents(request.user).select_related("partner")
    open_incidents = list(incidents.filter(resolved_at__isnull=True).order_by("-opened_at", "-id"))
    recent = list(incidents.filter(resolved_at__isnull=False).order_by("-opened_at", "-id")[:RECENT_INCIDENTS])
    shown = open_incidents + recent
    notified: dict[int, list[Notification]] = {}
    for notification in Notification.objects.filter(incident__in=shown).select_related("channel"):
        notified.setdefault(notification.incident_id or 0, []).append(notification)
    context = {
        "rows": [{"incident": incident, "notifications": notified.get(incident.pk, [])} for incident in shown],
        "open_count": len(open_incidents),
        "channels": _visible_channels(request.user).select_related("partner"),
        "form": form or _channel_form(request),
        "show_partner": request.user.is_superuser or partners_visible_to(request.user).count() > 1,
        "section": "alerts",
    }
    return render(request, "portal/alert_list.html", context, status=400 if form is not None else 200)


@staff_required
def alert_incident(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    incident = get_object_or_404(_visible_incidents(request.user).select_related("partner"), public_id=public_id)
    context = {
        "incident": incident,
        "notifications": _with_attempts(incident.notifications.order_by("created", "id")),
        "attempts_shown": ATTEMPTS_SHOWN,
        "section": "alerts",
    }
    return render(request, "portal/alert_incident.html", context)


@staff_required
def alert_channel(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    channel = get_object_or_404(_visible_channels(request.user).select_related("partner"), public_id=public_id)
    context = {
        "channel": channel,
        "notifications": _with_attempts(channel.notifications.order_by("-created", "-id")[:CHANNEL_HISTORY]),
        "attempts_shown": ATTEMPTS_SHOWN,
        "section": "alerts",
    }
    return render(request, "portal/alert_channel.html", context)


@staff_required
@require_POST
def alert_channel_create(request: HttpRequest) -> HttpResponse:
    """Create a channel. A signed webhook's new secret is shown in this response only (like an
    API key's): keeping it for a page after a redirect would mean storing it in the session."""
    form = _channel_form(request, request.POST)
    if not form.is_valid():
        return alert_list(request, form=form)
    data = form.cleaned_data
    channel, secret = services.channel_create(
        partner=data["partner"],
        kind=data["kind"],
        name=data["name"],
        target=data["target"],
        secret=data["new_secret"],
        actor=acting_user(request),
    )
    if channel.kind != Channel.Kind.WEBHOOK or data["new_secret"]:
        messages.success(request, f"Channel {channel.name} added. Send it a test to see that notices reach it.")
        return redirect("portal:alert_channel", public_id=channel.public_id)
    context = {"channel": channel, "secret": secret, "section": "alerts"}
    return render(request, "portal/alert_channel_created.html", context)


@staff_required
@require_POST
def alert_channel_test(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    channel = get_object_or_404(_visible_channels(request.user), public_id=public_id)
    services.channel_test(channel=channel, actor=acting_user(request))
    transaction.on_commit(notifications_send_soon)
    messages.success(request, "Test notice queued: its attempts appear below within moments.")
    return redirect("portal:alert_channel", public_id=channel.public_id)


@staff_required
@require_POST
def alert_channel_delete(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    channel = get_object_or_404(_visible_channels(request.user), public_id=public_id)
    services.channel_delete(channel=channel, actor=acting_user(request))
    messages.success(request, f"Channel {channel.name} deleted.")
    return redirect("portal:alert_list")
