"""The alerts pages: incidents (open first) with their notices and attempts, channels with "send a
test" (POST with CSRF, then a redirect), and scoping to the user's partners."""

import re
from html import unescape

import pytest
import responses
from django.core import mail
from django.test import Client
from django.urls import reverse

from alerts.incidents import incidents_evaluate
from alerts.models import Channel, Incident, Notification
from alerts.sending import notifications_send
from core.models import AuditEntry, WorkerHeartbeat
from grants.models import Site
from tests.alerts.conftest import channel, later

pytestmark = pytest.mark.django_db

LIST = reverse("portal:alert_list")


@pytest.fixture(autouse=True)
def inline_tasks(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True


def page(client: Client, url: str = LIST) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return unescape(response.content.decode())


def send_test_url(item: Channel) -> str:
    return reverse("portal:alert_channel_test", args=[item.public_id])


def open_circuit(site: Site, minutes: float = 0) -> None:
    Site.objects.filter(pk=site.pk).update(circuit_opened_at=later(minutes))
    incidents_evaluate(rules=[Incident.Rule.CIRCUIT_OPEN], now=later(minutes))


def test_the_list_shows_open_incidents_first_with_their_notices(acme_client, site, email_channel, partner):
    open_circuit(site)
    Site.objects.filter(pk=site.pk).update(circuit_opened_at=None)
    incidents_evaluate(rules=[Incident.Rule.CIRCUIT_OPEN], now=later(1))
    Site.objects.filter(pk=site.pk).update(status=Site.Status.DOUBTFUL)
    incidents_evaluate(rules=[Incident.Rule.SITE_ACCESS], now=later(2))
    notifications_send(now=later(2))
    content = page(acme_client)
    doubtful = content.index("Site Example Realty is doubtful: RG answered 401")
    resolved = content.index("Deliveries to site Example Realty paused")
    assert doubtful < resolved
    assert "1 open incident" in content
    assert "email channel · opened" in content and "email channel · recovered" in content


def test_the_incident_page_shows_each_notice_with_its_attempts(acme_client, site, webhook_channel):
    open_circuit(site)
    with responses.RequestsMock() as receiver:
        receiver.post("https://alerts.acme.example/portal", status=503, body="try later")
        notifications_send(now=later(0))
    incident = Incident.objects.get()
    content = page(acme_client, reverse("portal:alert_incident", args=[incident.public_id]))
    assert "Retrying" in content and "HTTP 503" in content and "try later" in content
    assert "webhook channel" in content


def test_staff_see_only_their_partners_incidents_and_channels(acme_client, site, other_site, email_channel):
    theirs = channel(other_site.partner, Channel.Kind.EMAIL, "ops@other.example")
    open_circuit(site)
    open_circuit(other_site)
    content = page(acme_client)
    assert "Example Realty" in content and "Other Realty" not in content
    assert "ops@acme.example" in content and "ops@other.example" not in content
    other_incident = Incident.objects.get(partner=other_site.partner)
    assert acme_client.get(reverse("portal:alert_incident", args=[other_incident.public_id])).status_code == 404
    assert acme_client.get(reverse("portal:alert_channel", args=[theirs.public_id])).status_code == 404
    assert acme_client.post(send_test_url(theirs)).status_code == 404
    assert not Notification.objects.filter(channel=theirs, event=Notification.Event.TEST).exists()


def test_incidents_and_channels_that_are_no_partners_are_for_superusers_only(acme_staff, superuser, operator_channel):
    acme_client, root_client = Client(), Client()
    acme_client.force_login(acme_staff)
    root_client.force_login(superuser)
    WorkerHeartbeat.objects.create(hostname="worker1@host", last_seen=later(-10))
    incidents_evaluate(rules=[Incident.Rule.WORKERS_SILENT], now=later(0))
    incident = Incident.objects.get()
    title = "No worker heartbeat for 5 min"
    assert title in page(root_client) and "operators@portal.example" in page(root_client)
    assert title not in page(acme_client) and "operators@portal.example" not in page(acme_client)
    assert acme_client.get(reverse("portal:alert_incident", args=[incident.public_id])).status_code == 404
    assert acme_client.post(send_test_url(operator_channel)).status_code == 404


def test_send_a_test_queues_a_notice_sends_it_and_redirects_to_the_channel(
    acme_client, email_channel, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = acme_client.post(send_test_url(email_channel))
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:alert_channel", args=[email_channel.public_id])
    (message,) = mail.outbox
    assert message.subject == "[Partner Portal] Test notice"
    notification = Notification.objects.get()
    assert (notification.event, notification.status) == ("test", "sent")
    content = page(acme_client, response["Location"])
    assert "Test notice queued" in content and "Sent" in content
    assert AuditEntry.objects.filter(action="alert_channel.test", object_id=str(email_channel.public_id)).exists()


def test_send_a_test_is_a_post_with_csrf(acme_staff, email_channel):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(acme_staff)
    assert browser.get(send_test_url(email_channel)).status_code == 405
    assert browser.post(send_test_url(email_channel)).status_code == 403
    assert not Notification.objects.exists()


def test_adding_a_signed_webhook_shows_its_new_secret_once(acme_client, partner):
    response = acme_client.post(
        reverse("portal:alert_channel_create"),
        {"partner": partner.pk, "kind": "webhook", "name": "Ops hook", "target": "https://alerts.acme.example/hook"},
    )
    assert response.status_code == 200
    made = Channel.objects.get()
    assert made.secret.startswith("whsec_") and made.secret in response.content.decode()
    assert made.is_active and made.partner == partner
    assert made.secret not in page(acme_client, reverse("portal:alert_channel", args=[made.public_id]))
    entry = AuditEntry.objects.get(action="alert_channel.create")
    assert made.secret not in str(entry.after)


def test_adding_an_email_channel_redirects_to_it(acme_client, partner):
    response = acme_client.post(
        reverse("portal:alert_channel_create"),
        {"partner": partner.pk, "kind": "email", "name": "Ops", "target": "ops@acme.example"},
    )
    made = Channel.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/alerts/channels/{made.public_id}/")


@pytest.mark.parametrize(
    "fields, error",
    [
        ({"kind": "email", "target": "not an address"}, "not an address is not an email address."),
        ({"kind": "slack", "target": "https://10.1.2.3/hook"}, "10.1.2.3 is not a public address"),
        ({"kind": "webhook", "target": "http://alerts.acme.example/hook"}, "Use https"),
        ({"kind": "webhook", "target": "https://a.example/h", "new_secret": "plain"}, "starts with whsec_"),
        ({"kind": "slack", "target": "https://a.example/h", "new_secret": "whsec_QUJD"}, "Only signed webhooks"),
    ],
)
def test_a_channel_that_cannot_work_is_refused_with_the_reason(acme_client, partner, settings, fields, error):
    settings.ALERTS_ALLOW_LOCAL_URLS = False
    response = acme_client.post(reverse("portal:alert_channel_create"), {"partner": partner.pk, "name": "x", **fields})
    assert response.status_code == 400
    assert error in unescape(response.content.decode())
    assert not Channel.objects.exists()


def test_staff_cannot_add_operator_channels_or_channels_of_other_partners(acme_client, other_partner):
    create = reverse("portal:alert_channel_create")
    fields = {"kind": "email", "name": "x", "target": "ops@acme.example"}
    assert acme_client.post(create, {**fields, "partner": ""}).status_code == 400
    assert acme_client.post(create, {**fields, "partner": other_partner.pk}).status_code == 400
    assert not Channel.objects.exists()


def test_a_superuser_can_add_an_operator_channel(root_client):
    fields = {"partner": "", "kind": "email", "name": "Ops", "target": "operators@portal.example"}
    assert root_client.post(reverse("portal:alert_channel_create"), fields).status_code == 302
    assert Channel.objects.get().is_operator_channel


def test_deleting_a_channel_asks_first_and_is_audited(acme_client, email_channel):
    content = page(acme_client, reverse("portal:alert_channel", args=[email_channel.public_id]))
    assert 'data-confirm="Delete the channel email channel' in content
    response = acme_client.post(reverse("portal:alert_channel_delete", args=[email_channel.public_id]))
    assert response.status_code == 302 and not Channel.objects.exists()
    assert AuditEntry.objects.filter(action="alert_channel.delete").exists()


def test_slack_urls_are_not_shown_in_full(acme_client, slack_channel):
    assert "XXXX" not in page(acme_client)
    assert "https://hooks.slack.example/…" in page(acme_client)


def test_the_pages_keep_to_the_content_security_policy(root_client, site, webhook_channel, operator_channel):
    open_circuit(site)
    incident = Incident.objects.get()
    for url in (
        LIST,
        reverse("portal:alert_incident", args=[incident.public_id]),
        reverse("portal:alert_channel", args=[webhook_channel.public_id]),
    ):
        content = page(root_client, url)
        assert not re.search(r"<style|\sstyle=|\son[a-z]+=|<script(?![^>]*\ssrc=)", content), url
    assert 'href="/alerts/"' in page(root_client)  # the nav link
