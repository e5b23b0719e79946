from django.contrib import admin

from operations.models import PruneMark
from portal.admin import ReadOnlyAdmin, SuperuserOnlyAdmin


@admin.register(PruneMark)
class PruneMarkAdmin(ReadOnlyAdmin, SuperuserOnlyAdmin):
    """How far each retention rule has pruned; the prune alone moves it."""

    list_display = ["rule", "reached", "updated"]
