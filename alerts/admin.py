"""Django admin for alerts, scoped to the user's partners like every admin here (core.admin):
incidents and operator channels that are no partner's are for superusers only. Incidents,
notifications and attempts are logs, so read-only; channels are edited here or on the dashboard."""

from django.contrib import admin

from alerts.forms import AdminChannelForm
from alerts.models import Channel, Incident, Notification, NotificationAttempt
from core.admin import PartnerScopedAdmin, ReadOnlyAdmin


@admin.register(Channel)
class ChannelAdmin(PartnerScopedAdmin):
    form = AdminChannelForm
    list_display = ["name", "partner", "kind", "target_shown", "is_active", "created"]
    list_filter = ["kind", "is_active", "partner"]
    search_fields = ["name"]
    fields = ["partner", "kind", "name", "target", "new_secret", "is_active"]


@admin.register(Incident)
class IncidentAdmin(ReadOnlyAdmin, PartnerScopedAdmin):
    list_display = ["title", "partner", "rule", "opened_at", "resolved_at", "announced"]
    list_filter = ["rule", "partner"]
    ordering = ["-opened_at"]


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin, PartnerScopedAdmin):
    partner_path = "channel__partner"
    list_display = ["created", "channel", "event", "status", "attempt_count", "last_status_code", "last_error"]
    list_filter = ["status", "event"]


@admin.register(NotificationAttempt)
class NotificationAttemptAdmin(ReadOnlyAdmin, PartnerScopedAdmin):
    partner_path = "notification__channel__partner"
    list_display = ["started", "notification", "number", "outcome", "status_code", "error"]
    list_filter = ["outcome"]
