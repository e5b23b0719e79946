"""Admin for the sandbox's state. Its request log is read-only; accounts are managed with the
`sandbox_account` command (the admin never shows or sets a password)."""

from django.contrib import admin

from portal.admin import ReadOnlyAdmin
from sandbox.models import SandboxAccount, SandboxActivity, SandboxFaults, SandboxLead, SandboxRequest, SandboxUser


@admin.register(SandboxAccount)
class SandboxAccountAdmin(admin.ModelAdmin):
    list_display = ["username", "created"]
    fields = ["username", "site_uuids", "created"]
    readonly_fields = ["username", "created"]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False


@admin.register(SandboxLead)
class SandboxLeadAdmin(ReadOnlyAdmin):
    list_display = ["lead_id", "site_uuid", "kind", "updated"]
    search_fields = ["lead_id", "site_uuid"]


@admin.register(SandboxActivity)
class SandboxActivityAdmin(ReadOnlyAdmin):
    list_display = ["lead", "received"]


@admin.register(SandboxUser)
class SandboxUserAdmin(admin.ModelAdmin):
    list_display = ["user_id", "site_uuid"]
    search_fields = ["user_id", "site_uuid"]


@admin.register(SandboxRequest)
class SandboxRequestAdmin(ReadOnlyAdmin):
    list_display = ["created", "method", "path", "status", "fault", "duration_ms"]
    list_filter = ["status", "method"]
    search_fields = ["path", "lead_id", "site"]
    show_full_result_count = False


@admin.register(SandboxFaults)
class SandboxFaultsAdmin(admin.ModelAdmin):
    list_display = ["latency_ms", "error_rate", "outage", "hang_seconds", "html_errors", "remaining"]
