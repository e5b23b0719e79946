"""Looking at and steering the sandbox: its request log, the leads it holds, and fault injection.

Staff pages, behind the portal's login like the dashboard: the log holds the lead bodies partners
sent, so staff see their own partners' (sandbox.access). The faults shape every partner's
deliveries, so only superusers change them, with a CSRF token like any form; scripts and tests
in other processes use `manage.py sandbox_faults`. The Incoming API the worker delivers to
(sandbox.api) stays open to HTTP Basic callers, as RG's is.
"""

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from core.access import staff_required, superuser_required
from leads.validation import PayloadError, parse_json
from sandbox import access, faults, log, store
from sandbox.auth import site_key
from sandbox.models import SandboxLead, SandboxRequest


def _visible_requests(request: HttpRequest, default_limit: int = 100) -> list[SandboxRequest]:
    rows = access.sent_by_partners_of(request.user, SandboxRequest.objects.all())
    return log.requests_matching(request.GET, requests=rows, default_limit=default_limit)


@require_GET
@never_cache
@staff_required
def requests_page(request: HttpRequest) -> HttpResponse:
    records = _visible_requests(request, default_limit=200)
    return render(request, "sandbox/requests.html", {"records": records, "site": request.GET.get("site", "")})


@require_GET
@never_cache
@staff_required
def requests_json(request: HttpRequest) -> JsonResponse:
    """The request log, newest first; see `log.requests_matching` for the filters."""
    return JsonResponse([log.request_as_dict(r) for r in _visible_requests(request)], safe=False)


@require_GET
@never_cache
@staff_required
def leads_json(request: HttpRequest) -> JsonResponse:
    """The leads the sandbox holds for `?site=` (required), oldest first, each with its activities in order."""
    site = site_key(request.GET.get("site", ""))
    if site is None:
        return JsonResponse({"error": "Give ?site=<site UUID>."}, status=400)
    leads = access.on_sites_of(request.user, SandboxLead.objects.filter(site_uuid=site))
    leads = leads.order_by("pk").prefetch_related("activities")
    return JsonResponse([store.lead_as_dict(lead) for lead in leads], safe=False)


@require_http_methods(["GET", "POST"])
@never_cache
@superuser_required
def faults_page(request: HttpRequest) -> HttpResponse:
    current = faults.faults_current()
    if request.method == "POST" and "reset" in request.POST:
        faults.faults_reset()
        messages.success(request, "Faults cleared.")
        return redirect("sandbox:faults")
    form = faults.FaultsForm(request.POST if request.method == "POST" else None, instance=current)
    if form.is_valid():
        faults.faults_update(changes=form.cleaned_data)
        messages.success(request, "Faults saved.")
        return redirect("sandbox:faults")
    return render(request, "sandbox/faults.html", {"form": form, "faults": current})


@require_http_methods(["GET", "PUT", "PATCH", "DELETE"])
@never_cache
@superuser_required
def faults_control(request: HttpRequest) -> JsonResponse:
    """GET the faults; PUT or PATCH a JSON object of the settings to change (others keep); DELETE clears them.

    A signed-in superuser's session, and for a change its CSRF token in an X-CSRFToken header.
    """
    if request.method == "DELETE":
        return JsonResponse(faults.faults_as_dict(faults.faults_reset()))
    if request.method in ("PUT", "PATCH"):
        try:
            changes: Any = parse_json(request.body)
        except PayloadError as e:
            return JsonResponse({"error": e.message}, status=400)
        if not isinstance(changes, dict):
            return JsonResponse({"error": "Send a JSON object of fault settings."}, status=400)
        try:
            faults.faults_update(changes=changes)
        except ValidationError as e:
            return JsonResponse({"error": faults.problems_text(e)}, status=400)
    return JsonResponse(faults.faults_as_dict(faults.faults_current()))
