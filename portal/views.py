from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from portal import health
from portal.access import partners_visible_to


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database and the broker answer; 503 naming what does not (for load balancers)."""
    problems = {
        name: problem
        for name, problem in (("database", health.database_problem()), ("broker", health.broker_problem()))
        if problem
    }
    if problems:
        return JsonResponse({"status": "unavailable", "problems": problems}, status=503)
    return JsonResponse({"status": "ok"})


@login_required
def home(request: HttpRequest) -> HttpResponse:
    partners = partners_visible_to(request.user).prefetch_related("sites")
    return render(request, "portal/home.html", {"partners": partners})
