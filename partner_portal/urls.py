from django.conf import settings
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    # The hot paths first (callbacks: two patterns; the push API), since Django tries patterns in
    # order and a miss costs; these three apps' patterns never overlap.
    path("", include("grants.urls")),
    path("", include("leads.urls")),
    path("", include("portal.urls")),
    path("", include("operations.urls")),
    path("admin/", admin.site.urls),
]

if settings.SANDBOX_ENABLED:
    urlpatterns.append(path("sandbox/", include("sandbox.urls")))
