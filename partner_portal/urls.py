from django.conf import settings
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    # The hot paths first (push API, then callbacks): Django tries the patterns in order, and
    # none of these three apps' patterns overlap, so the order changes only the time to match.
    path("", include("leads.urls")),
    path("", include("grants.urls")),
    path("", include("portal.urls")),
    path("admin/", admin.site.urls),
]

if settings.SANDBOX_ENABLED:
    urlpatterns.append(path("sandbox/", include("sandbox.urls")))
