"""The header's search box: one page that finds partners, sites and leads by what staff typed,
or goes straight to the one thing a pasted id names."""

import uuid
from typing import Any, Optional
from urllib.parse import urlencode

from django import forms
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from core.access import staff_required
from grants.access import partners_visible_to
from grants.models import Partner, Site, WebhookEvent
from leads.models import BulkRetry, Lead
from portal.forms.leads import LeadFilterForm
from portal.views.leads import leads_matching

# Enough for any email, phone, name or id; the leads list's search has the same bound.
QUERY_MAX_CHARS = 200
# Rows of each kind shown; the leads list has the rest of the leads.
SHOWN = 20


class SearchForm(forms.Form):
    # Django's CharField also refuses NUL characters, which PostgreSQL cannot store or compare.
    q = forms.CharField(
        max_length=QUERY_MAX_CHARS,
        label="Search",
        error_messages={
            "required": "Type an email, phone number, name, partner, site or id to search for.",
            "max_length": f"Search for at most {QUERY_MAX_CHARS} characters.",
        },
    )


@require_GET
@staff_required
def search(request: HttpRequest) -> HttpResponse:
    """Redirect when the text is an id naming exactly one thing the user may see; otherwise list
    the matching partners, sites and newest leads. Never a 404: what the user may not see is
    simply not found."""
    form = SearchForm(request.GET)
    typed = request.GET.get("q", "")[:QUERY_MAX_CHARS].replace("\x00", "")
    context: dict[str, Any] = {"form": form, "search_text": typed}
    if not form.is_valid():
        return render(request, "portal/search.html", context)
    text = form.cleaned_data["q"]
    partners = list(partners_visible_to(request.user).order_by("name"))
    target = _only_target(partners, text)
    if target is not None:
        return HttpResponseRedirect(target)
    leads, more = _leads(request, partners, text)
    context.update(
        {
            "text": text,
            "partners": _partners(partners, text),
            "sites": _sites(partners, text),
            "leads": leads,
            "more_leads": more,
            "leads_url": f"{reverse('portal:lead_list')}?{urlencode({'q': text})}",
            "show_partner": len(partners) > 1,
        }
    )
    return render(request, "portal/search.html", context)


def _only_target(partners: list[Partner], text: str) -> Optional[str]:
    """The page of the one lead, site, callback or bulk job whose public id is `text` (with or
    without dashes), among the user's partners; None if it is not an id or names no such one
    thing (a lead id two partners share lists both instead)."""
    try:
        value = uuid.UUID(text)
    except ValueError:
        return None
    targets = [
        reverse("portal:lead_detail", args=[lead.partner.slug, lead.lead_id])
        for lead in Lead.objects.filter(partner__in=partners, lead_id=value).select_related("partner")[:2]
    ]
    targets += [
        reverse("portal:site_detail", args=[site.partner.slug, site.site_uuid])
        for site in Site.objects.filter(partner__in=partners, site_uuid=value).select_related("partner")[:2]
    ]
    if WebhookEvent.objects.filter(partner__in=partners, public_id=value).exists():
        targets.append(reverse("portal:callback_detail", args=[value]))
    if BulkRetry.objects.filter(partner__in=partners, public_id=value).exists():
        targets.append(reverse("portal:bulk_retry_detail", args=[value]))
    return targets[0] if len(targets) == 1 else None


def _partners(partners: list[Partner], text: str) -> list[Partner]:
    folded = text.casefold()
    return [p for p in partners if folded in p.name.casefold() or folded in p.slug.casefold()][:SHOWN]


def _sites(partners: list[Partner], text: str) -> list[Site]:
    # A few sites per partner: a scan of them is cheap, unlike one of the leads.
    match = Q(name__icontains=text) | Q(domain__icontains=text)
    try:
        match |= Q(site_uuid=uuid.UUID(text))
    except ValueError:
        pass
    sites = Site.objects.filter(partner__in=partners).filter(match).select_related("partner")
    return list(sites.order_by("partner__name", "name", "site_uuid")[:SHOWN])


def _leads(request: HttpRequest, partners: list[Partner], text: str) -> tuple[list[Lead], bool]:
    """The newest matching leads, with the leads list's own query, and whether there are more."""
    if not partners:
        return [], False
    form = LeadFilterForm({"q": text}, partners=partners)
    if not form.is_valid():
        return [], False
    found = list(leads_matching(request, partners, form).order_by("-created", "-id")[: SHOWN + 1])
    return found[:SHOWN], len(found) > SHOWN
