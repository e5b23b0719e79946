from django.contrib import admin

from core.admin import ReadOnlyAdmin, SuperuserOnlyAdmin
from operations.models import PruneMark


@admin.register(PruneMark)
class PruneMarkAdmin(ReadOnlyAdmin, SuperuserOnlyAdmin):
    """How far each retention rule has pruned; the prune alone moves it."""

    list_display = ["rule", "reached", "updated"]
