"""The admin's base classes, which scope every page to the user's partners, and the admin for
core's own records (the audit trail and worker heartbeats are logs, so read-only).

Every admin registered derives from `ScopedAdmin` (tests/portal/test_admin_registry.py checks
it): a staff user who is not a superuser sees only their partners' rows, whatever model
permissions they were given. That covers the list, its filters, the choices of a form's related
fields, autocomplete (which lists the related admin's queryset) and the object pages, where
another partner's object is a 404, as in the dashboard. Rows that are no partner's are for
superusers only.
"""

from typing import Any, Optional

from django.apps import apps
from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Model, QuerySet
from django.db.models.fields.related import RelatedField
from django.forms import ModelForm
from django.http import Http404, HttpRequest

from core.models import AuditEntry, WorkerHeartbeat


class ScopedAdmin(admin.ModelAdmin):
    """Superusers see every row; other staff only the rows `scope` keeps (none unless overridden)."""

    def scope(self, queryset: QuerySet[Any], request: HttpRequest) -> QuerySet[Any]:
        return queryset.none()

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        return queryset if request.user.is_superuser else self.scope(queryset, request)

    def get_object(self, request: HttpRequest, object_id: str, from_field: Optional[str] = None) -> Any:
        # Django redirects to the admin index for an object it cannot find; a 404 says the same
        # for another partner's object and one that does not exist.
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404("No such object.")
        return obj

    def visible_rows(self, request: HttpRequest, model: type[Model]) -> QuerySet[Any]:
        """The rows of a related model the user may pick or filter by: those its admin lists."""
        if self.admin_site.is_registered(model):
            related_admin = self.admin_site.get_model_admin(model)
            if isinstance(related_admin, ScopedAdmin):
                return related_admin.get_queryset(request)
        return model._default_manager.all() if request.user.is_superuser else model._default_manager.none()

    def get_field_queryset(
        self, db: Optional[str], db_field: "RelatedField[Any, Any]", request: HttpRequest
    ) -> Optional[QuerySet[Any]]:
        # The choices of every foreign key and many-to-many field in a change form.
        if request.user.is_superuser:
            return super().get_field_queryset(db, db_field, request)
        return self.visible_rows(request, db_field.remote_field.model)

    def get_list_filter(self, request: HttpRequest) -> Any:
        # Django's filter on a relation offers every row of the related table: every partner's name.
        return [self._scoped_filter(entry) for entry in super().get_list_filter(request)]

    def _scoped_filter(self, entry: Any) -> Any:
        if isinstance(entry, str) and get_fields_from_path(self.model, entry)[-1].is_relation:
            return (entry, ScopedRelatedFieldListFilter)
        return entry

    def save_model(self, request: HttpRequest, obj: Any, form: ModelForm, change: bool) -> None:
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            self.scope_keep(request, obj)

    def scope_keep(self, request: HttpRequest, obj: Any) -> None:
        """Refuse a save that moved a row out of the user's partners, or added one outside them.

        Call it inside the save's transaction: the PermissionDenied it raises rolls the save back."""
        if not request.user.is_superuser and not self.get_queryset(request).filter(pk=obj.pk).exists():
            raise PermissionDenied("That would put the object outside your partners.")


class ScopedRelatedFieldListFilter(admin.RelatedFieldListFilter):
    """A filter on a relation that offers only the related rows the user may see."""

    def field_choices(self, field: Any, request: HttpRequest, model_admin: admin.ModelAdmin) -> Any:
        assert isinstance(model_admin, ScopedAdmin)
        visible = model_admin.visible_rows(request, field.remote_field.model)
        ordering = self.field_admin_ordering(field, request, model_admin)
        return field.get_choices(include_blank=False, ordering=ordering, limit_choices_to={"pk__in": visible})


class PartnerScopedAdmin(ScopedAdmin):
    """Rows that belong to a partner through `partner_path` (a lookup ending at a Partner; empty
    for the Partner admin itself)."""

    partner_path = "partner"

    def scope(self, queryset: QuerySet[Any], request: HttpRequest) -> QuerySet[Any]:
        # A staff user sees the partners whose staff they are (grants.access.partners_visible_to,
        # for a user the admin already knows is staff and not a superuser), spelled as a lookup
        # through Partner.staff so that core imports nothing of grants.
        staff = f"{self.partner_path}__staff" if self.partner_path else "staff"
        return queryset.filter(**{staff: request.user})


class SuperuserOnlyAdmin(ScopedAdmin):
    """Rows that are no partner's (accounts, login attempts, heartbeats, the sandbox's faults):
    superusers only, whatever permissions a staff user was given."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser and super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Optional[Any] = None) -> bool:
        return request.user.is_superuser and super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser and super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Optional[Any] = None) -> bool:
        return request.user.is_superuser and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Optional[Any] = None) -> bool:
        return request.user.is_superuser and super().has_delete_permission(request, obj)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewable, never added, edited or deleted by hand: a log that can be rewritten proves nothing."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Optional[Any] = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Optional[Any] = None) -> bool:
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin, PartnerScopedAdmin):
    list_display = ["created", "actor", "partner", "action", "object_type", "object_id"]
    list_filter = ["action", "partner"]
    search_fields = ["object_id", "actor__username", "reason"]
    date_hierarchy = "created"
    list_select_related = ["actor", "partner"]


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnlyAdmin, SuperuserOnlyAdmin):
    list_display = ["hostname", "last_seen"]
    ordering = ["-last_seen"]


def superusers_only_for_other_apps() -> None:
    """Re-register the admins of apps that are not ours (Django's users and groups, django-axes'
    login attempts) as superuser-only: they hold no partner's rows, and a staff user allowed to
    edit users could make themselves a superuser."""
    # Imported so that their admins are registered before they are wrapped, whatever the order
    # of INSTALLED_APPS.
    import axes.admin  # noqa: F401
    import django.contrib.auth.admin  # noqa: F401

    for model in apps.get_models():
        if admin.site.is_registered(model):
            model_admin = type(admin.site.get_model_admin(model))
            if not issubclass(model_admin, ScopedAdmin):
                admin.site.unregister(model)
                admin.site.register(model, type(model_admin.__name__, (SuperuserOnlyAdmin, model_admin), {}))


superusers_only_for_other_apps()
