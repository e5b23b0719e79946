"""Admin for the sandbox's state. Its request log is read-only; accounts are managed with the
`sandbox_account` command (the admin never shows or sets a password). Staff who are not
superusers see their partners' rows only (sandbox.access); the faults are superusers' alone,
since they shape every partner's deliveries."""

from typing import Any, Optional

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from core.admin import ReadOnlyAdmin, ScopedAdmin, SuperuserOnlyAdmin
from sandbox import access
from sandbox.models import SandboxAccount, SandboxActivity, SandboxFaults, SandboxLead, SandboxRequest, SandboxUser


class SentByPartnersAdmin(ScopedAdmin):
    def scope(self, queryset: QuerySet[Any], request: HttpRequest) -> QuerySet[Any]:
        return access.sent_by_partners_of(request.user, queryset)


class OnPartnerSitesAdmin(ScopedAdmin):
    site_path = "site_uuid"

    def scope(self, queryset: QuerySet[Any], request: HttpRequest) -> QuerySet[Any]:
        return access.on_sites_of(request.user, queryset, self.site_path)


@admin.register(SandboxAccount)
class SandboxAccountAdmin(SentByPartnersAdmin):
    list_display = ["username", "created"]
    fields = ["username", "site_uuids", "created"]
    readonly_fields = ["username", "created"]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Optional[SandboxAccount] = None) -> Any:
        # The sites an account may send to are a superuser's to choose, like a partner's staff.
        fields = super().get_readonly_fields(request, obj)
        return fields if request.user.is_superuser else [*fields, "site_uuids"]


@admin.register(SandboxLead)
class SandboxLeadAdmin(ReadOnlyAdmin, OnPartnerSitesAdmin):
    list_display = ["lead_id", "site_uuid", "kind", "updated"]
    search_fields = ["lead_id", "site_uuid"]


@admin.register(SandboxActivity)
class SandboxActivityAdmin(ReadOnlyAdmin, OnPartnerSitesAdmin):
    site_path = "lead__site_uuid"
    list_display = ["lead", "received"]


@admin.register(SandboxUser)
class SandboxUserAdmin(OnPartnerSitesAdmin):
    list_display = ["user_id", "site_uuid"]
    search_fields = ["user_id", "site_uuid"]


@admin.register(SandboxRequest)
class SandboxRequestAdmin(ReadOnlyAdmin, SentByPartnersAdmin):
    list_display = ["created", "method", "path", "status", "fault", "duration_ms"]
    list_filter = ["status", "method"]
    search_fields = ["path", "lead_id", "site"]
    show_full_result_count = False


@admin.register(SandboxFaults)
class SandboxFaultsAdmin(SuperuserOnlyAdmin):
    list_display = ["latency_ms", "error_rate", "outage", "hang_seconds", "html_errors", "remaining"]
