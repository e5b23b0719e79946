"""The baseline URLconf (bench.settings with BENCH_BASELINE=1): the push API's create path and
the Destination webhook path answer `201 {}` from a bare view; every other path is the portal's."""

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, include, path, re_path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def bare(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    """What any Django view costs at least: routing, the middleware, a response."""
    return HttpResponse(b"{}", status=201, content_type="application/json")


urlpatterns: list[URLPattern | URLResolver] = [
    re_path(r"^rest/sites/(?P<site_uuid>[^/]+)/leads/?$", bare),
    path("webhooks/realgeeks/<slug:partner_slug>/", bare),
    path("", include("partner_portal.urls")),
]
