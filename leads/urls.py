"""The push API under RG's own paths, the read and act API under /api/, and its schema and docs."""

from csp.decorators import csp_update
from django.urls import URLPattern, URLResolver, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from leads.api import push, read, rg_only
from leads.rg_operations import OPERATIONS, RealGeeksOperation

app_name = "leads"

_SWAGGER_STYLES = csp_update({"style-src": ["'unsafe-inline'"]})

# RG's paths exactly (the v1 ones have no trailing slash, v2's has one); a trailing slash is
# tolerated both ways because some HTTP clients add or drop it.
SITE = r"^rest/sites/(?P<site_uuid>[^/]+)"
V2_SITE = r"^v2/rest/sites/(?P<site_uuid>[^/]+)"


def push_path(op: RealGeeksOperation) -> URLPattern:
    """The operation's path at RG (leads.rg_operations), served by its push view."""
    path_at_rg = op.path.strip("/").format(lead_id=r"(?P<lead_id>[^/]+)")
    return re_path(
        rf"{V2_SITE if op.v2 else SITE}/{path_at_rg}/?$",
        push.PUSH_VIEWS[op.name].as_view(),
        name="push-" + op.name.replace("_", "-"),
    )


urlpatterns: list[URLPattern | URLResolver] = [
    *(push_path(op) for op in OPERATIONS.values()),
    re_path(rf"{SITE}/users/?$", push.UsersView.as_view(), name="push-users"),
    re_path(rf"{SITE}/users/(?P<user_id>[^/]+)/?$", rg_only.UserChangeView.as_view(), name="push-user-change"),
    path("api/leads/", read.LeadListView.as_view(), name="api-leads"),
    path("api/leads/<str:lead_id>/", read.LeadDetailView.as_view(), name="api-lead"),
    path("api/leads/<str:lead_id>/deliveries/", read.LeadDeliveriesView.as_view(), name="api-lead-deliveries"),
    path("api/leads/<str:lead_id>/resend", read.LeadResendView.as_view(), name="api-lead-resend"),
    path("api/deliveries/<str:delivery_id>/retry", read.DeliveryRetryView.as_view(), name="api-delivery-retry"),
    path(
        "api/deliveries/<str:delivery_id>/attempts/",
        read.DeliveryAttemptsView.as_view(),
        name="api-delivery-attempts",
    ),
    path("api/sites/", read.SiteListView.as_view(), name="api-sites"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file, so no inline script is needed;
    # Swagger UI still sets inline styles, the one thing this page's policy adds.
    path(
        "api/docs/",
        _SWAGGER_STYLES(SpectacularSwaggerSplitView.as_view(url_name="leads:api-schema")),
        name="api-docs",
    ),
]
