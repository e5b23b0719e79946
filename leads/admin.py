"""Admin for leads: read-only. Leads change only through the outbox (the dashboard and the APIs
write a delivery and its audit entry); attempts and bulk jobs are logs."""

from django.contrib import admin

from core.admin import PartnerScopedAdmin, ReadOnlyAdmin
from leads.models import AttemptHour, BulkRetry, BulkRetryItem, Delivery, DeliveryAttempt, Lead

DELIVERY_FIELDS = ("sequence", "operation", "status", "attempt_count", "last_status_code", "last_error")
ATTEMPT_FIELDS = ("number", "trigger", "started", "duration_ms", "response_status", "outcome", "error")


class DeliveryInline(admin.TabularInline):
    model = Delivery
    fields = readonly_fields = DELIVERY_FIELDS
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Lead)
class LeadAdmin(ReadOnlyAdmin, PartnerScopedAdmin):
    list_display = ["lead_id", "partner", "site", "email", "name", "status", "created"]
    list_filter = ["status", "partner"]
    search_fields = ["lead_id", "email", "name", "phone"]
    list_select_related = ["partner", "site"]
    show_full_result_count = False  # no COUNT(*) over millions of rows per page
    inlines = [DeliveryInline]


class AttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = readonly_fields = ATTEMPT_FIELDS
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin, PartnerScopedAdmin):
    partner_path = "lead__partner"
    list_display = ["public_id", "lead", "operation", "status", "attempt_count", "last_status_code", "updated"]
    list_filter = ["status", "operation"]
    search_fields = ["public_id", "lead__lead_id"]
    list_select_related = ["lead"]
    show_full_result_count = False
    inlines = [AttemptInline]


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(ReadOnlyAdmin, PartnerScopedAdmin):
    partner_path = "delivery__lead__partner"
    list_display = ["public_id", "delivery", "number", "trigger", "started", "duration_ms", "response_status"]
    list_filter = ["outcome", "trigger"]
    search_fields = ["public_id", "delivery__public_id"]
    list_select_related = ["delivery"]
    show_full_result_count = False


@admin.register(BulkRetry)
class BulkRetryAdmin(ReadOnlyAdmin, PartnerScopedAdmin):
    list_display = ["public_id", "partner", "created_by", "state", "total", "done", "retried", "skipped", "created"]
    list_filter = ["state", "partner"]


@admin.register(BulkRetryItem)
class BulkRetryItemAdmin(ReadOnlyAdmin, PartnerScopedAdmin):
    partner_path = "job__partner"
    list_display = ["job", "delivery", "result", "note"]
    list_filter = ["result"]


@admin.register(AttemptHour)
class AttemptHourAdmin(ReadOnlyAdmin, PartnerScopedAdmin):
    """The overview's hourly rollup, to check a figure against: `rollup_rebuild` recomputes it."""

    list_display = ["hour", "partner", "outcome", "response_status", "error", "attempts", "duration_ms_max"]
    list_filter = ["outcome", "partner"]
    date_hierarchy = "hour"
    show_full_result_count = False
