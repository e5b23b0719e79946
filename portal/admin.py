"""Admin for the portal's own records: the audit trail and worker heartbeats are logs, so read-only."""

from typing import Any, Optional

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from portal.access import partners_visible_to
from portal.models import AuditEntry, WorkerHeartbeat


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewable, never added, edited or deleted by hand: a log that can be rewritten proves nothing."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Optional[Any] = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Optional[Any] = None) -> bool:
        return False


class PartnerScopedAdmin(admin.ModelAdmin):
    """Non-superuser staff given admin permissions still see only their own partners' rows."""

    partner_path = "partner"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{f"{self.partner_path}__in": partners_visible_to(request.user)})


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["created", "actor", "partner", "action", "object_type", "object_id"]
    list_filter = ["action", "partner"]
    search_fields = ["object_id", "actor__username", "reason"]
    date_hierarchy = "created"
    list_select_related = ["actor", "partner"]


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnlyAdmin):
    list_display = ["hostname", "last_seen"]
    ordering = ["-last_seen"]
