"""Django admin for grants.

Partner, ApiKey, Site and SiteStatusChange (the dashboard engineer's part) come first. Secrets
are write-only here as everywhere: a form field that is blank keeps the stored value, and no
page renders rg_password or a webhook secret. Staff actions taken here are audited like the
dashboard's. Models added later by the grants app are registered below this part.
"""

from typing import Any, Optional

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import F, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.views.decorators.debug import sensitive_post_parameters

from core.access import acting_user
from core.admin import PartnerScopedAdmin, ReadOnlyAdmin
from grants import rg_url, services
from grants.audit import PARTNER_AUDITED_FIELDS
from grants.models import ApiKey, Partner, Site, SiteStatusChange


class _HttpsURLField(forms.URLField):
    """A URL field that takes a bare host to mean https (Django 6's default, chosen now)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("assume_scheme", "https")
        super().__init__(**kwargs)


class PartnerAdminForm(forms.ModelForm):
    rg_api_url = forms.URLField(
        label="RG API URL",
        required=False,
        assume_scheme="https",
        validators=[rg_url.validate],
        help_text="Incoming API base URL; blank means the REALGEEKS_API_URL setting. The RG password is sent "
        "here, so only a host in REALGEEKS_ALLOWED_HOSTS is accepted, and changing it needs the RG password again.",
    )
    new_rg_password = forms.CharField(
        label="RG password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Write-only. Leave blank to keep the current password (required for a new partner).",
    )
    new_webhook_secret = forms.CharField(
        label="Add a webhook secret",
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Write-only. Added in front of the existing ones; remove old ones in the dashboard.",
    )

    class Meta:
        model = Partner
        # When the URL is read-only (a partner's staff), the admin rebuilds this form without the
        # field declared above, from the model field: it must assume https there too.
        field_classes = {"rg_api_url": _HttpsURLField}
        # Every field but the encrypted secrets, which only the write-only fields above set: the
        # plain fields grants.services saves and audits, and the staff.
        fields = [*PARTNER_AUDITED_FIELDS, "staff"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.instance.pk is None and not cleaned.get("new_rg_password"):
            self.add_error("new_rg_password", "A new partner needs its RG password.")
        elif "rg_api_url" in self.changed_data and not cleaned.get("new_rg_password"):
            self.add_error("new_rg_password", rg_url.URL_CHANGE_REFUSED)
        if self.instance.pk is None and not cleaned.get("new_webhook_secret"):
            self.add_error("new_webhook_secret", "A new partner needs a webhook secret, or no callback verifies.")
        return cleaned


@admin.register(Partner)
class PartnerAdmin(PartnerScopedAdmin):
    partner_path = ""
    form = PartnerAdminForm
    list_display = ["name", "slug", "rg_username", "is_active", "created"]
    list_filter = ["is_active"]
    search_fields = ["name", "slug", "rg_username", "rg_partner_id"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["public_id", "created"]
    filter_horizontal = ["staff"]

    def get_readonly_fields(self, request: HttpRequest, obj: Optional[Partner] = None) -> Any:
        # Who may see a partner's data is a superuser's decision, as in the dashboard; so is the
        # RG API URL, which decides who receives the partner's RG password. A read-only field is
        # left out of the form, so a crafted POST cannot set it either.
        fields = super().get_readonly_fields(request, obj)
        return fields if request.user.is_superuser else [*fields, "staff", "rg_api_url"]

    @method_decorator(sensitive_post_parameters("new_rg_password", "new_webhook_secret"))
    def changeform_view(
        self,
        request: HttpRequest,
        object_id: Optional[str] = None,
        form_url: str = "",
        extra_context: Optional[dict[str, Any]] = None,
    ) -> HttpResponse:
        return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request: HttpRequest, obj: Partner, form: forms.ModelForm, change: bool) -> None:
        # The services save and audit, as for the dashboard; the admin goes on with the row stored.
        with transaction.atomic():
            saved = self._save_through_services(request, obj, form, change)
            self.scope_keep(request, saved)
        obj.pk = saved.pk
        obj.refresh_from_db()

    def _save_through_services(
        self, request: HttpRequest, obj: Partner, form: forms.ModelForm, change: bool
    ) -> Partner:
        data = form.cleaned_data
        plain = {name: data[name] for name in PARTNER_AUDITED_FIELDS if name in form.fields}
        staff = data["staff"] if "staff" in form.fields else None
        if change:
            # The form leaves the stored secrets alone: it has no field of theirs.
            secret, secrets = data.get("new_webhook_secret"), obj.webhook_secrets
            saved, _ = services.partner_edit(
                obj,
                plain,
                rg_password=data.get("new_rg_password") or "",
                webhook_secrets=[secret, *secrets] if secret and secret not in secrets else None,
                staff=staff,
                actor=acting_user(request),
                reason="Django admin",
            )
            return saved
        return services.partner_create(
            **plain,
            rg_password=data["new_rg_password"],
            webhook_secret=data["new_webhook_secret"],
            staff=staff,
            actor=acting_user(request),
            reason="Django admin",
        )

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        # Staff were set, and audited, by the service in save_model; the form must not set them again.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)


def revoke_api_keys(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
    revoked = 0
    for key in queryset.filter(revoked_at__isnull=True).select_related("partner"):
        services.api_key_revoke(key=key, actor=acting_user(request), reason="Django admin")
        revoked += 1
    modeladmin.message_user(request, f"{revoked} key(s) revoked.", messages.SUCCESS)


@admin.register(ApiKey)
class ApiKeyAdmin(PartnerScopedAdmin):
    """Keys are issued in the dashboard, the one place that shows a new secret once."""

    list_display = ["key_id", "partner", "label", "created", "last_used_at", "revoked_at"]
    list_filter = ["partner", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["key_id", "label"]
    fields = ["key_id", "partner", "label", "created", "last_used_at", "revoked_at"]
    readonly_fields = ["key_id", "partner", "created", "last_used_at", "revoked_at"]
    actions = [revoke_api_keys]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class SiteStatusChangeInline(admin.TabularInline):
    model = SiteStatusChange
    fields = ["created", "from_status", "to_status", "source", "actor", "note", "evidence"]
    readonly_fields = ["created", "from_status", "to_status", "source", "actor", "note", "evidence"]
    extra = 0
    can_delete = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[SiteStatusChange]:
        # Only the evidence's public ids are needed for the links, not the body or raw message.
        return (
            super()
            .get_queryset(request)
            .select_related("actor")
            .annotate(
                webhook_event_public_id=F("webhook_event__public_id"),
                grant_email_public_id=F("grant_email__public_id"),
            )
        )

    def has_add_permission(self, request: HttpRequest, obj: Optional[Any] = None) -> bool:
        return False

    @admin.display(description="Evidence")
    def evidence(self, obj: SiteStatusChange) -> str:
        """A link to the dashboard page of the callback or grant email that caused the change."""
        if public_id := getattr(obj, "webhook_event_public_id", None):
            return format_html('<a href="{}">callback</a>', reverse("portal:callback_detail", args=[public_id]))
        if public_id := getattr(obj, "grant_email_public_id", None):
            return format_html('<a href="{}">grant email</a>', reverse("portal:grant_email_detail", args=[public_id]))
        return "—"


@admin.register(Site)
class SiteAdmin(PartnerScopedAdmin):
    """Names are editable; status only moves through grant and revoke, which keep the history."""

    list_display = ["__str__", "site_uuid", "partner", "status", "source", "granted_at"]
    list_filter = ["status", "source", "partner"]
    search_fields = ["site_uuid", "name", "domain"]
    fields = [
        "partner",
        "site_uuid",
        "name",
        "domain",
        "rg_partner_id",
        "status",
        "source",
        "granted_at",
        "status_changed_at",
        "created",
    ]
    readonly_fields = ["partner", "site_uuid", "status", "source", "granted_at", "status_changed_at", "created"]
    inlines = [SiteStatusChangeInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(SiteStatusChange)
class SiteStatusChangeAdmin(ReadOnlyAdmin, PartnerScopedAdmin):
    partner_path = "site__partner"
    list_display = ["created", "site", "from_status", "to_status", "source", "actor"]
    list_filter = ["to_status", "source"]
    list_select_related = ["site", "actor"]


# --- Models added by the grants app (callbacks, grant emails) are registered below. ---

from grants import callbacks, emails  # noqa: E402  (grouped with the models they administer)
from grants.destination import CallbackProblem  # noqa: E402
from grants.models import GrantEmail, InboundLead, SiteAgent, WebhookEvent, WebhookRejection  # noqa: E402


@admin.action(description="Process the selected callbacks again")
def reprocess_webhook_events(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[WebhookEvent]
) -> None:
    queued = 0
    for event in queryset.select_related("partner"):
        try:
            callbacks.webhook_event_reprocess(event=event, actor=acting_user(request))
        except CallbackProblem as exc:
            modeladmin.message_user(request, f"{event}: {exc}", messages.WARNING)
            continue
        queued += 1
    modeladmin.message_user(request, f"{queued} callback(s) queued for processing.", messages.SUCCESS)


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin, PartnerScopedAdmin):
    list_display = ["received_at", "partner", "action", "site_uuid", "state", "attempts"]
    list_filter = ["state", "action", "partner"]
    search_fields = ["public_id", "site_uuid", "lead_id", "body_sha256"]
    list_select_related = ["partner"]
    readonly_fields = [
        "public_id",
        "partner",
        "received_at",
        "remote_addr",
        "action",
        "timestamp_raw",
        "timestamp",
        "site_uuid",
        "lead_id",
        "is_valid",
        "state",
        "error",
        "attempts",
        "claimed_at",
        "processed_at",
        "headers",
        "body_text",
        "body_sha256",
    ]
    actions = [reprocess_webhook_events]

    def has_change_permission(self, request: HttpRequest, obj: Optional[Any] = None) -> bool:
        # Read-only pages, but the reprocess action needs the change permission to be offered.
        return obj is None and super(ReadOnlyAdmin, self).has_change_permission(request, obj)


@admin.register(WebhookRejection)
class WebhookRejectionAdmin(ReadOnlyAdmin, PartnerScopedAdmin):
    list_display = ["partner", "count", "last_reason", "last_remote_addr", "last_at"]
    list_select_related = ["partner"]


@admin.register(InboundLead)
class InboundLeadAdmin(ReadOnlyAdmin, PartnerScopedAdmin):
    list_display = ["__str__", "partner", "site_uuid", "lead_id", "is_potential_seller", "first_seen_at"]
    list_filter = ["is_potential_seller", "partner"]
    search_fields = ["lead_id", "site_uuid"]
    list_select_related = ["partner"]


@admin.register(SiteAgent)
class SiteAgentAdmin(ReadOnlyAdmin, PartnerScopedAdmin):
    list_display = ["__str__", "partner", "site_uuid", "user_id", "role", "email", "is_deleted", "updated_at"]
    list_filter = ["is_deleted", "role", "partner"]
    search_fields = ["user_id", "name", "email", "site_uuid"]
    list_select_related = ["partner"]


@admin.action(description="Read the selected grant emails again")
def reparse_grant_emails(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[GrantEmail]) -> None:
    for grant_email in queryset.filter(status=GrantEmail.Status.NEEDS_REVIEW):
        emails.grant_email_reparse(grant_email=grant_email, actor=acting_user(request))
    modeladmin.message_user(request, "Messages waiting for review were read again.", messages.SUCCESS)


@admin.register(GrantEmail)
class GrantEmailAdmin(ReadOnlyAdmin, PartnerScopedAdmin):
    """Staff see what was read; resolving by hand is the dashboard's grant-email page."""

    list_display = ["received_at", "partner", "subject", "sender", "source", "status"]
    list_filter = ["status", "source", "partner"]
    search_fields = ["public_id", "message_id", "subject", "sender"]
    list_select_related = ["partner"]
    readonly_fields = [
        "public_id",
        "partner",
        "source",
        "status",
        "review_reason",
        "received_at",
        "message_id",
        "subject",
        "sender",
        "recipients",
        "sites",
        "raw_size",
        "raw_text",
        "created_by",
        "resolved_by",
        "resolved_at",
    ]
    actions = [reparse_grant_emails]

    def has_change_permission(self, request: HttpRequest, obj: Optional[Any] = None) -> bool:
        return obj is None and super(ReadOnlyAdmin, self).has_change_permission(request, obj)
