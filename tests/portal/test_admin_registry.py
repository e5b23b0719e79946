import uuid
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.db.models import Model
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from core.admin import ScopedAdmin, SuperuserOnlyAdmin
from core.models import AuditEntry, WorkerHeartbeat
from grants.models import (
    GrantEmail,
    InboundLead,
    Partner,
    Site,
    SiteAgent,
    SiteStatusChange,
    WebhookEvent,
    WebhookRejection,
)
from grants.services import api_key_issue, partner_create
from leads.models import AttemptHour, BulkRetry, BulkRetryItem, Delivery, DeliveryAttempt, Lead, Operation
from sandbox.models import SandboxAccount, SandboxActivity, SandboxFaults, SandboxLead, SandboxRequest, SandboxUser

OUR_APPS = ("core", "grants", "leads", "sandbox")
LOGS = {"auditentry", "workerheartbeat", "deliveryattempt", "webhookevent", "sandboxrequest", "sitestatuschange"}


def our_models():
    return [m for m in apps.get_models() if m._meta.app_label in OUR_APPS]


def registered() -> list[tuple[type[Model], admin.ModelAdmin]]:
    return list(admin.site._registry.items())


def test_every_model_of_ours_is_in_the_admin():
    missing = [m._meta.label for m in our_models() if not admin.site.is_registered(m)]
    assert not missing


def test_every_admin_registered_is_scoped_to_the_users_partners():
    unscoped = [model._meta.label for model, model_admin in registered() if not isinstance(model_admin, ScopedAdmin)]
    assert not unscoped


@pytest.mark.django_db
def test_every_admin_list_page_opens_and_logs_are_read_only(client, django_user_model, partner):
    boss = django_user_model.objects.create_superuser("boss", password="right-password-123")
    client.force_login(boss)
    for model, _ in registered():
        meta = model._meta
        response = client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        assert response.status_code == 200, meta.label
        if meta.model_name in LOGS:
            model_admin = admin.site._registry[model]
            request = response.wsgi_request
            assert not model_admin.has_add_permission(request), meta.label
            assert not model_admin.has_delete_permission(request), meta.label


# --- Scoping: a staff user given every view permission, on every admin. ---


def partner_rows(partner: Partner, tag: str) -> dict[type[Model], Model]:
    """One row of every partner-owned model, for this partner."""
    site_uuid = uuid.uuid4()
    key, _ = api_key_issue(partner=partner, label=f"{tag} key")
    site = Site.objects.create(partner=partner, site_uuid=site_uuid, name=f"{tag} site", source=Site.Source.MANUAL)
    event = WebhookEvent.objects.create(
        partner=partner, action="created", body=b"{}", body_sha256=tag * 4, site_uuid=site_uuid
    )
    lead = Lead.objects.create(partner=partner, site=site, lead_id=uuid.uuid4(), email=f"{tag}@example.com")
    delivery = Delivery.objects.create(lead=lead, sequence=1, operation=Operation.CREATE_LEAD, payload={})
    job = BulkRetry.objects.create(partner=partner)
    sandbox_lead = SandboxLead.objects.create(site_uuid=site_uuid, lead_id=uuid.uuid4())
    account = SandboxAccount(username=partner.rg_username, site_uuids=[str(site_uuid)])
    account.set_password("pw")
    account.save()
    rows: list[Model] = [
        partner,
        key,
        site,
        SiteStatusChange.objects.create(site=site, to_status=Site.Status.ACTIVE, source=Site.Source.MANUAL),
        event,
        WebhookRejection.objects.create(partner=partner, count=1, last_reason=f"{tag} rejection"),
        InboundLead.objects.create(partner=partner, site_uuid=site_uuid, lead_id=uuid.uuid4()),
        SiteAgent.objects.create(partner=partner, site_uuid=site_uuid, user_id="1", name=f"{tag} agent"),
        GrantEmail.objects.create(
            partner=partner,
            source=GrantEmail.Source.PASTE,
            dedupe_key=f"{tag}-grant",
            subject=f"{tag} grant",
            status=GrantEmail.Status.NEEDS_REVIEW,
        ),
        lead,
        delivery,
        DeliveryAttempt.objects.create(
            delivery=delivery,
            number=1,
            trigger=DeliveryAttempt.Trigger.AUTOMATIC,
            request_method="POST",
            request_url="https://rg.invalid/",
        ),
        job,
        BulkRetryItem.objects.create(job=job, delivery=delivery),
        AttemptHour.objects.create(
            hour=timezone.now().replace(minute=0, second=0, microsecond=0),
            partner=partner,
            outcome=DeliveryAttempt.Outcome.FAILED,
            error=f"{tag} error",
            attempts=1,
            last_started=timezone.now(),
        ),
        AuditEntry.objects.create(partner=partner, action=f"{tag}.action", object_type="site", object_id=tag),
        account,
        sandbox_lead,
        SandboxActivity.objects.create(lead=sandbox_lead, data={"type": "note"}),
        SandboxUser.objects.create(site_uuid=site_uuid, user_id="1", data={"id": "1"}),
        SandboxRequest.objects.create(
            method="POST", path="/sandbox/rest/", site=str(site_uuid), username=partner.rg_username, status=201
        ),
    ]
    if apps.is_installed("alerts"):
        rows += alert_rows(partner, tag)
    return {type(row): row for row in rows}


def alert_rows(partner: Partner, tag: str) -> list[Model]:
    from alerts.models import Channel, Incident, Notification, NotificationAttempt

    channel = Channel.objects.create(
        partner=partner, kind=Channel.Kind.EMAIL, name=f"{tag} channel", target=f"{tag}@example.com"
    )
    incident = Incident.objects.create(partner=partner, rule=Incident.Rule.values[0], title=f"{tag} incident")
    notification = Notification.objects.create(
        channel=channel, incident=incident, event=Notification.Event.values[0], subject=tag, text=tag, payload={}
    )
    return [channel, incident, notification, NotificationAttempt.objects.create(notification=notification, number=1)]


@pytest.fixture
def viewer(django_user_model, partner):
    """Staff of Acme only, with the view permission of every model there is."""
    user = django_user_model.objects.create_user("viewer", password="viewer-password-123", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    partner.staff.add(user)
    return user


@pytest.fixture
def world(partner, other_partner) -> tuple[dict[type[Model], Model], dict[type[Model], Model]]:
    WorkerHeartbeat.objects.create(hostname="worker-1")
    SandboxFaults.objects.create(pk=1)
    return partner_rows(partner, "mine"), partner_rows(other_partner, "theirs")


def admin_url(model: type[Model], view: str, *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.mark.django_db
def test_staff_with_every_view_permission_see_only_their_partners_rows_in_every_admin(
    client, viewer, world, other_partner
):
    mine, theirs = world
    client.force_login(viewer)
    checked = []
    for model, model_admin in registered():
        label = model._meta.label
        changelist = client.get(admin_url(model, "changelist"))
        if isinstance(model_admin, SuperuserOnlyAdmin):
            assert changelist.status_code == 403, label
            continue
        assert model in theirs, f"{label}: add a row of it to partner_rows()"
        assert changelist.status_code == 200, label
        shown = set(changelist.context["cl"].queryset.values_list("pk", flat=True))
        assert mine[model].pk in shown, label
        assert theirs[model].pk not in shown, label
        # Not in a row, nor in a filter's choices, nor anywhere else on the page.
        assert other_partner.name not in changelist.content.decode(), label
        for view in ("change", "delete", "history"):
            assert client.get(admin_url(model, view, theirs[model].pk)).status_code in (403, 404), (label, view)
        assert client.get(admin_url(model, "change", mine[model].pk)).status_code == 200, label
        checked.append(label)
    assert len(checked) >= 20


@pytest.mark.django_db
def test_a_partner_filter_lists_only_the_users_partners(client, viewer, world, partner, other_partner):
    # With one partner there is nothing to filter by, so the viewer gets a second one.
    third = partner_create(name="Third Kind", rg_username="third", rg_password="pw", webhook_secret="ws")
    third.staff.add(viewer)
    client.force_login(viewer)
    page = client.get(admin_url(Lead, "changelist")).content.decode()
    assert f"?partner__id__exact={partner.pk}" in page
    assert f"?partner__id__exact={third.pk}" in page
    assert f"?partner__id__exact={other_partner.pk}" not in page


@pytest.mark.django_db
def test_a_filter_naming_another_partner_shows_none_of_its_rows(client, viewer, world, other_partner):
    _, theirs = world
    client.force_login(viewer)
    response = client.get(admin_url(Lead, "changelist") + f"?partner__id__exact={other_partner.pk}")
    assert theirs[Lead].pk not in {lead.pk for lead in response.context["cl"].queryset}


@pytest.mark.django_db
def test_choices_of_a_foreign_key_and_of_partner_staff_are_the_users_own(viewer, world, partner, other_partner):
    request = RequestFactory().get("/admin/")
    request.user = viewer
    site_admin = admin.site._registry[Site]
    field = site_admin.formfield_for_foreignkey(Site._meta.get_field("partner"), request)  # type: ignore[arg-type]
    assert field is not None
    assert list(field.queryset or ()) == [partner]
    partner_admin = admin.site._registry[Partner]
    # Who may see a partner is a superuser's decision: staff see the list, they do not edit it.
    assert "staff" in partner_admin.get_readonly_fields(request, partner)


@pytest.mark.django_db
def test_superusers_still_manage_users_in_the_admin(client, superuser, viewer):
    client.force_login(superuser)
    assert client.get(admin_url(type(viewer), "change", viewer.pk)).status_code == 200
    assert client.get(reverse("admin:auth_user_password_change", args=[viewer.pk])).status_code == 200


@pytest.mark.django_db
def test_superusers_still_see_every_partners_rows(client, superuser, world):
    mine, theirs = world
    client.force_login(superuser)
    for model in (AuditEntry, SandboxRequest, Lead):
        shown = set(client.get(admin_url(model, "changelist")).context["cl"].queryset.values_list("pk", flat=True))
        assert {mine[model].pk, theirs[model].pk} <= shown, model
