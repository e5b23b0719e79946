"""Incidents notify once when they open and once when they recover, to the right channels, and a
new incident of the same key within the rate limit is recorded but sends nothing."""

import pytest
from django.db import IntegrityError, transaction

from alerts.incidents import incidents_evaluate
from alerts.models import Channel, Incident, Notification
from core.models import WorkerHeartbeat
from grants.models import Site
from tests.alerts.conftest import SITE_UUID, channel, later

pytestmark = pytest.mark.django_db

CIRCUIT = Incident.Rule.CIRCUIT_OPEN


def circuit(site: Site, *, is_open: bool) -> None:
    Site.objects.filter(pk=site.pk).update(circuit_opened_at=later(0) if is_open else None)


def evaluate(minutes: float, rule: str = CIRCUIT) -> list[Notification]:
    return incidents_evaluate(rules=[rule], now=later(minutes))


def events() -> list[tuple[str, str]]:
    """(channel kind, event) of every notification queued, oldest first."""
    return list(Notification.objects.order_by("created", "id").values_list("channel__kind", "event"))


def test_an_incident_notifies_each_active_channel_once_when_it_opens_and_once_when_it_recovers(
    site, email_channel, slack_channel, webhook_channel
):
    Channel.objects.create(partner=site.partner, kind="email", name="paused", target="x@acme.example", is_active=False)
    circuit(site, is_open=True)
    assert len(evaluate(0)) == 3
    evaluate(1)
    evaluate(2)  # still open: nothing more
    circuit(site, is_open=False)
    assert len(evaluate(3)) == 3
    evaluate(4)
    assert sorted(events()) == sorted(
        [(kind, event) for kind in ("email", "slack", "webhook") for event in ("opened", "recovered")]
    )
    incident = Incident.objects.get()
    assert incident.announced and incident.last_notified_at == later(3) and incident.resolved_at == later(3)


def test_the_notice_names_the_incident_and_links_to_its_page(site, email_channel):
    circuit(site, is_open=True)
    (opened,) = evaluate(0)
    incident = Incident.objects.get()
    assert opened.subject == "[Partner Portal] Deliveries to site Example Realty paused: its circuit is open"
    assert opened.text.splitlines()[0] == f"Incident (Acme Leads): {incident.title}"
    assert f"https://portal.example.com/alerts/incidents/{incident.public_id}/" in opened.text
    assert opened.payload["type"] == "incident.opened"
    assert opened.payload["data"]["subject"] == str(SITE_UUID) and opened.payload["data"]["partner"] == "acme-leads"

    circuit(site, is_open=False)
    (recovered,) = evaluate(5)
    assert recovered.subject.startswith("[Partner Portal] Resolved: ")
    assert recovered.text.startswith("Resolved after 5 min (Acme Leads): ")
    assert recovered.payload["data"]["resolved_at"] == later(5).isoformat()


def test_a_second_incident_within_the_rate_limit_is_recorded_but_sends_nothing(site, email_channel):
    circuit(site, is_open=True)
    evaluate(0)
    circuit(site, is_open=False)
    evaluate(1)
    circuit(site, is_open=True)  # a second outage, 9 minutes after the recovery notice
    assert evaluate(10) == []
    circuit(site, is_open=False)
    assert evaluate(20) == []
    assert events() == [("email", "opened"), ("email", "recovered")]
    _, second = Incident.objects.order_by("opened_at")
    assert second.opened_at == later(10) and second.resolved_at == later(20)
    assert not second.announced and second.last_notified_at is None


def test_a_quiet_incident_still_open_when_the_limit_has_passed_is_notified_then_and_so_is_its_recovery(
    site, email_channel
):
    circuit(site, is_open=True)
    evaluate(0)
    circuit(site, is_open=False)
    evaluate(1)
    circuit(site, is_open=True)
    evaluate(10)
    evaluate(60)  # 59 minutes after the last notice: still quiet
    assert len(events()) == 2
    evaluate(62)  # the hour since the recovery notice has passed; the outage goes on
    assert events()[-1] == ("email", "opened")
    circuit(site, is_open=False)
    evaluate(63)
    assert events() == [("email", "opened"), ("email", "recovered")] * 2


def test_an_incident_after_the_rate_limit_notifies_again(site, email_channel):
    circuit(site, is_open=True)
    evaluate(0)
    circuit(site, is_open=False)
    evaluate(1)
    circuit(site, is_open=True)
    assert len(evaluate(62)) == 1


def test_the_rate_limit_is_per_subject_and_rule(site, partner, email_channel):
    other = Site.objects.create(partner=partner, site_uuid="9a8b7c6d-5e4f-4a3b-9c2d-1e0f2a3b4c5d", source="manual")
    circuit(site, is_open=True)
    evaluate(0)
    Site.objects.filter(pk=other.pk).update(circuit_opened_at=later(1), status=Site.Status.DOUBTFUL)
    evaluate(1)
    evaluate(1, rule=Incident.Rule.SITE_ACCESS)
    assert Incident.objects.filter(announced=True).count() == 3
    assert len(events()) == 3


def test_an_incident_goes_to_its_partners_channels_only(site, other_partner, email_channel, operator_channel):
    theirs = channel(other_partner, Channel.Kind.EMAIL, "ops@other.example")
    circuit(site, is_open=True)
    evaluate(0)
    assert list(Notification.objects.values_list("channel", flat=True)) == [email_channel.pk]
    assert not Notification.objects.filter(channel__in=[theirs, operator_channel]).exists()


def test_an_incident_that_is_no_partners_goes_to_the_operator_channels_only(email_channel, operator_channel):
    WorkerHeartbeat.objects.create(hostname="worker1@host", last_seen=later(-10))
    evaluate(0, rule=Incident.Rule.WORKERS_SILENT)
    assert list(Notification.objects.values_list("channel", flat=True)) == [operator_channel.pk]
    assert Notification.objects.get().text.startswith("Incident (Operators): No worker heartbeat for 5 min")


def test_an_incident_with_no_channel_is_still_recorded(site):
    circuit(site, is_open=True)
    assert evaluate(0) == []
    assert Incident.objects.get().is_open


@pytest.mark.parametrize("partner_of", [lambda site: site.partner, lambda site: None])
def test_only_one_incident_per_key_can_be_open_also_for_incidents_that_are_no_partners(site, partner_of):
    Incident.objects.create(partner=partner_of(site), rule=CIRCUIT, subject="s", title="first")
    with pytest.raises(IntegrityError), transaction.atomic():
        Incident.objects.create(partner=partner_of(site), rule=CIRCUIT, subject="s", title="second")
    Incident.objects.update(resolved_at=later(1))
    Incident.objects.create(partner=partner_of(site), rule=CIRCUIT, subject="s", title="after it resolved")
