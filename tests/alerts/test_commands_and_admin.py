"""add_alert_channel, and the admin: registered, scoped to the user's partners, secrets write-only."""

import io

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.urls import reverse

from alerts.models import Channel, Incident, Notification, NotificationAttempt
from core.admin import ScopedAdmin
from tests.alerts.conftest import channel

pytestmark = pytest.mark.django_db


def run(*args: str) -> list[str]:
    out = io.StringIO()
    call_command("add_alert_channel", *args, stdout=out)
    return out.getvalue().split()


def test_add_alert_channel_makes_a_signed_webhook_and_prints_its_secret_last(partner):
    channel_id, secret = run("acme-leads", "--kind", "webhook", "--name", "Ops", "--target", "https://a.example/h")
    made = Channel.objects.get(public_id=channel_id)
    assert (made.partner, made.secret) == (partner, secret)
    assert secret.startswith("whsec_")


def test_add_alert_channel_makes_operator_channels_and_refuses_what_the_page_would(partner):
    (channel_id,) = run("--operators", "--kind", "email", "--name", "Ops", "--target", "ops@portal.example")
    assert Channel.objects.get(public_id=channel_id).is_operator_channel
    with pytest.raises(CommandError, match="not an email address"):
        run("acme-leads", "--kind", "email", "--name", "Bad", "--target", "nobody")
    with pytest.raises(CommandError, match="No partner"):
        run("nope", "--kind", "email", "--name", "Bad", "--target", "ops@portal.example")


def test_every_alerts_admin_is_scoped_to_the_users_partners():
    for model in (Channel, Incident, Notification, NotificationAttempt):
        assert isinstance(admin.site._registry[model], ScopedAdmin)


def test_staff_see_only_their_partners_rows_in_the_admin(client, django_user_model, partner, other_partner):
    staff = django_user_model.objects.create_user("kim", password="kim-password-123", is_staff=True)
    partner.staff.add(staff)
    staff.user_permissions.set(Permission.objects.filter(content_type__app_label="alerts"))
    channel(partner, Channel.Kind.EMAIL, "ops@acme.example")
    theirs = channel(other_partner, Channel.Kind.EMAIL, "ops@other.example")
    operators = channel(None, Channel.Kind.EMAIL, "operators@portal.example")
    Incident.objects.create(partner=None, rule=Incident.Rule.WORKERS_SILENT, title="Silent workers incident")
    client.force_login(staff)
    content = client.get(reverse("admin:alerts_channel_changelist")).content.decode()
    assert "Acme Leads" in content and "Other Co" not in content
    for hidden in (theirs, operators):
        assert client.get(reverse("admin:alerts_channel_change", args=[hidden.pk])).status_code == 404
    assert "Silent workers incident" not in client.get(reverse("admin:alerts_incident_changelist")).content.decode()


def test_the_admin_never_shows_a_signing_secret(client, superuser, partner):
    made = channel(partner, Channel.Kind.WEBHOOK, "https://alerts.acme.example/portal")
    client.force_login(superuser)
    content = client.get(reverse("admin:alerts_channel_change", args=[made.pk])).content.decode()
    assert made.secret not in content
