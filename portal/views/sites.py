"""Sites per partner: grant status and history, manual grant and revoke, the grant URL, and
each site's delivery circuit with "resume now"."""

import uuid

from django.conf import settings
from django.contrib import messages
from django.db.models import Count, F, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from core.access import acting_user, staff_required
from grants import services
from grants.access import partner_or_404, partners_visible_to
from grants.models import Partner, Site
from leads import site_actions, stats
from leads.circuit import circuit_state
from leads.models import Delivery
from portal.forms.sites import SiteGrantForm, SiteRevokeForm

# Held deliveries listed on a site's page; the count above the list covers them all.
HELD_LIST_LIMIT = 50


def held_deliveries_by_site(partner: Partner) -> dict[int, int]:
    """Held delivery count per site id (sites with none are absent)."""
    return stats.held_counts_by_site(partner=partner)


@staff_required
def site_index(request: HttpRequest) -> HttpResponse:
    partners = (
        partners_visible_to(request.user)
        .annotate(
            **{f"sites_{status}": Count("sites", filter=Q(sites__status=status)) for status in Site.Status.values},
            circuits_open=Count("sites", filter=Q(sites__circuit_opened_at__isnull=False)),
        )
        .order_by("name")
    )  # Meta.ordering does not apply to aggregating queries
    return render(request, "portal/site_index.html", {"partners": partners, "section": "sites"})


def _render_list(request: HttpRequest, partner: Partner, grant_form: SiteGrantForm) -> HttpResponse:
    status = request.GET.get("status", "")
    circuit = request.GET.get("circuit", "")
    sites = partner.sites.prefetch_related("status_changes__actor")
    if status in Site.Status.values:
        sites = sites.filter(status=status)
    if circuit == "open":
        sites = sites.filter(circuit_opened_at__isnull=False)  # open or probing: deliveries wait
    held = held_deliveries_by_site(partner)
    rows = [
        {
            "site": site,
            "last_change": next(iter(site.status_changes.all()), None),
            "held": held.get(site.pk, 0),
            "circuit": circuit_state(site),
        }
        for site in sites
    ]
    context = {
        "partner": partner,
        "rows": rows,
        "status": status,
        "circuit_filter": circuit == "open",
        "circuits_open": partner.sites.filter(circuit_opened_at__isnull=False).count(),
        "statuses": Site.Status.choices,
        "grant_form": grant_form,
        "section": "sites",
    }
    return render(request, "portal/site_list.html", context)


@staff_required
def site_list(request: HttpRequest, slug: str) -> HttpResponse:
    return _render_list(request, partner_or_404(request.user, slug), SiteGrantForm())


@staff_required
def site_detail(request: HttpRequest, slug: str, site_uuid: uuid.UUID) -> HttpResponse:
    partner = partner_or_404(request.user, slug)
    site = get_object_or_404(partner.sites, site_uuid=site_uuid)
    held = held_deliveries_by_site(partner)
    context = {
        "partner": partner,
        "site": site,
        # The evidence's public ids only, for links: the callback body and raw email stay unread.
        "history": site.status_changes.select_related("actor").annotate(
            webhook_event_public_id=F("webhook_event__public_id"), grant_email_public_id=F("grant_email__public_id")
        ),
        "revoke_form": SiteRevokeForm(),
        "circuit": circuit_state(site),
        "circuit_threshold": settings.DELIVERY_CIRCUIT_FAILURES,
        "held_count": held.get(site.pk, 0),
        "held_deliveries": Delivery.objects.filter(lead__site=site, status=Delivery.Status.HELD)
        .select_related("lead")
        .order_by("created", "id")[:HELD_LIST_LIMIT],
        "section": "sites",
    }
    return render(request, "portal/site_detail.html", context)


@staff_required
@require_POST
def site_grant(request: HttpRequest, slug: str) -> HttpResponse:
    partner = partner_or_404(request.user, slug)
    form = SiteGrantForm(request.POST)
    if not form.is_valid():
        return _render_list(request, partner, form)
    site_uuid: uuid.UUID = form.cleaned_data["site_uuid"]
    site, previous, held = site_actions.site_grant(
        partner=partner,
        site_uuid=site_uuid,
        name=form.cleaned_data["name"],
        note=form.cleaned_data["note"],
        actor=acting_user(request),
    )
    if previous == Site.Status.ACTIVE:
        messages.info(request, f"{site} was already active; nothing changed.")
    elif held:
        messages.success(
            request,
            f"{site} is granted and active; its {held} held deliver{pluralize(held, 'y,ies')} "
            f"{pluralize(held, 'is,are')} released and go{pluralize(held, 'es,')} out now.",
        )
    else:
        messages.success(request, f"{site} is granted and active.")
    return redirect("portal:site_detail", slug=partner.slug, site_uuid=site.site_uuid)


@staff_required
@require_POST
def site_revoke(request: HttpRequest, slug: str, site_uuid: uuid.UUID) -> HttpResponse:
    partner = partner_or_404(request.user, slug)
    site = get_object_or_404(partner.sites, site_uuid=site_uuid)
    form = SiteRevokeForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The note is too long (1000 characters at most); the site was not revoked.")
        return redirect("portal:site_detail", slug=partner.slug, site_uuid=site.site_uuid)
    note = form.cleaned_data["note"]
    if site.status == Site.Status.REVOKED:
        messages.info(request, f"{site} was already revoked.")
    else:
        site = services.site_revoke(site=site, source=Site.Source.MANUAL, note=note, actor=acting_user(request))
        messages.success(request, f"{site} is revoked: new deliveries to it are held until it is granted again.")
    return redirect("portal:site_detail", slug=partner.slug, site_uuid=site.site_uuid)


@staff_required
@require_POST
def site_held_release(request: HttpRequest, slug: str, site_uuid: uuid.UUID) -> HttpResponse:
    """Send the site's held deliveries now; only a granted site's, or they would be held again."""
    partner = partner_or_404(request.user, slug)
    site = get_object_or_404(partner.sites, site_uuid=site_uuid)
    if not site.is_sendable:
        messages.error(
            request,
            f"{site} is {site.get_status_display().lower()}: Real Geeks would refuse these deliveries, so they stay "
            "held. Grant the site (its held deliveries then go out by themselves), or cancel them.",
        )
        return redirect(_held_anchor(partner, site))
    released = site_actions.site_held_release(site=site, actor=acting_user(request))
    remaining = held_deliveries_by_site(partner).get(site.pk, 0)
    if not released:
        messages.info(request, f"{site} has no held deliveries.")
    else:
        more = f" {remaining} more are released by the next sweep." if remaining else ""
        messages.success(request, f"Released {released} held deliveries of {site}: they are being sent now.{more}")
    return redirect(_held_anchor(partner, site))


@staff_required
@require_POST
def site_held_cancel(request: HttpRequest, slug: str, site_uuid: uuid.UUID) -> HttpResponse:
    partner = partner_or_404(request.user, slug)
    site = get_object_or_404(partner.sites, site_uuid=site_uuid)
    cancelled = site_actions.site_held_cancel(site=site, actor=acting_user(request))
    remaining = held_deliveries_by_site(partner).get(site.pk, 0)
    if not cancelled:
        messages.info(request, f"{site} has no held deliveries.")
    else:
        more = f" {remaining} are still held: cancel again for the rest." if remaining else ""
        messages.success(
            request, f"Cancelled {cancelled} deliveries of {site} that were held or waiting behind them.{more}"
        )
    return redirect(_held_anchor(partner, site))


@staff_required
@require_POST
def site_circuit_resume(request: HttpRequest, slug: str, site_uuid: uuid.UUID) -> HttpResponse:
    """Close the site's delivery circuit now, so its waiting deliveries go out without the cool-down."""
    partner = partner_or_404(request.user, slug)
    site = get_object_or_404(partner.sites, site_uuid=site_uuid)
    resumed = site_actions.site_circuit_resume(site=site, actor=acting_user(request))
    if resumed:
        messages.success(
            request, f"Resumed deliveries to {site}: its circuit is closed and waiting deliveries go out now."
        )
    else:
        messages.info(request, f"The circuit of {site} was already closed; nothing changed.")
    return redirect(
        _back(request, fallback=reverse("portal:site_detail", args=[partner.slug, site.site_uuid]) + "#circuit")
    )


def _back(request: HttpRequest, *, fallback: str) -> str:
    """The page the form was on (its `next` field), if it is one of ours; else `fallback`."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


def _held_anchor(partner: Partner, site: Site) -> str:
    return reverse("portal:site_detail", args=[partner.slug, site.site_uuid]) + "#held-deliveries"
