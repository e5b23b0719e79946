from django.urls import URLPattern, URLResolver, path, re_path
from django.views.generic import RedirectView

from sandbox import api, views

app_name = "sandbox"

# RG's Incoming API paths, v1 without a trailing slash and v2 with one; both forms are accepted.
SITE = r"sites/(?P<site>[^/]+)"
LEAD = SITE + r"/leads/(?P<lead_id>[^/]+)"

urlpatterns: list[URLPattern | URLResolver] = [
    re_path(rf"^rest/{SITE}/leads/?$", api.lead_create, name="lead-create"),
    re_path(rf"^rest/{LEAD}/?$", api.lead_update, name="lead-update"),
    re_path(rf"^rest/{LEAD}/activities/?$", api.activities_add, name="activities-add"),
    re_path(rf"^rest/{SITE}/potential-seller-leads/?$", api.potential_seller_create, name="potential-seller-create"),
    re_path(rf"^rest/{SITE}/users/?$", api.users_list, name="users-list"),
    re_path(rf"^v2/rest/{LEAD}/?$", api.lead_update_v2, name="lead-update-v2"),
    re_path(r"^(?:v2/)?rest/(?P<rest>.*)$", api.not_found),
    path("", RedirectView.as_view(pattern_name="sandbox:requests"), name="index"),
    path("requests/", views.requests_page, name="requests"),
    path("requests.json", views.requests_json, name="requests-json"),
    path("leads.json", views.leads_json, name="leads-json"),
    path("faults/", views.faults_page, name="faults"),
    path("control/faults", views.faults_control, name="faults-control"),
]
