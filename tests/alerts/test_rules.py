"""Each rule opens an incident when its condition holds past its threshold, for the right partner
and subject, and resolves it when the condition is gone."""

import uuid
from datetime import timedelta

import pytest

from alerts.incidents import incidents_evaluate
from alerts.models import Incident
from core.models import WorkerHeartbeat
from grants.models import GrantEmail, Site
from leads.models import Delivery
from tests.alerts.conftest import NOW, SITE_UUID, delivery, later

pytestmark = pytest.mark.django_db


def evaluate(rule: str, minutes: float = 0) -> None:
    incidents_evaluate(rules=[rule], now=later(minutes))


def open_incidents(rule: str) -> list[tuple[object, str]]:
    return list(Incident.objects.filter(rule=rule, resolved_at__isnull=True).values_list("partner__slug", "subject"))


# --- Deliveries needing a human


def test_a_dead_delivery_opens_an_incident_for_its_partner_and_a_retry_resolves_it(site, other_site):
    dead = delivery(site, status=Delivery.Status.DEAD)
    delivery(other_site, status=Delivery.Status.DELIVERED)
    evaluate(Incident.Rule.NEEDS_HUMAN)
    assert open_incidents(Incident.Rule.NEEDS_HUMAN) == [("acme-leads", "")]
    incident = Incident.objects.get()
    assert incident.title == "1 delivery failed or dead: a person must look"
    assert incident.details["count"] == 1

    Delivery.objects.filter(pk=dead.pk).update(status=Delivery.Status.PENDING)  # staff retried it
    evaluate(Incident.Rule.NEEDS_HUMAN, minutes=1)
    incident.refresh_from_db()
    assert incident.resolved_at == later(1)


def test_failed_deliveries_below_the_count_or_older_than_the_window_open_nothing(site, settings):
    settings.ALERTS_NEEDS_HUMAN_COUNT = 2
    delivery(site, status=Delivery.Status.FAILED)
    delivery(site, status=Delivery.Status.FAILED, at=NOW - timedelta(hours=25))
    evaluate(Incident.Rule.NEEDS_HUMAN)
    assert open_incidents(Incident.Rule.NEEDS_HUMAN) == []

    delivery(site, status=Delivery.Status.DEAD)
    evaluate(Incident.Rule.NEEDS_HUMAN)
    assert Incident.objects.get().details["count"] == 2


def test_the_open_incidents_count_follows_new_failures_without_a_second_incident(site):
    delivery(site, status=Delivery.Status.FAILED)
    evaluate(Incident.Rule.NEEDS_HUMAN)
    delivery(site, status=Delivery.Status.FAILED, at=later(1))
    evaluate(Incident.Rule.NEEDS_HUMAN, minutes=2)
    incident = Incident.objects.get()
    assert incident.is_open and incident.details["count"] == 2
    assert incident.title.startswith("2 deliveries failed or dead")


# --- Circuits


def test_an_open_circuit_opens_an_incident_for_its_site_and_closing_it_resolves_it(site):
    Site.objects.filter(pk=site.pk).update(
        circuit_opened_at=NOW, circuit_failures=5, circuit_last_error="Real Geeks answered 503"
    )
    evaluate(Incident.Rule.CIRCUIT_OPEN)
    incident = Incident.objects.get()
    assert (incident.partner, incident.subject) == (site.partner, str(SITE_UUID))
    assert incident.title == "Deliveries to site Example Realty paused: its circuit is open"
    assert "Real Geeks answered 503" in incident.details["summary"]

    Site.objects.filter(pk=site.pk).update(circuit_opened_at=None, circuit_failures=0)
    evaluate(Incident.Rule.CIRCUIT_OPEN, minutes=1)
    incident.refresh_from_db()
    assert not incident.is_open


def test_a_circuit_open_for_less_than_the_threshold_opens_nothing_yet(site, settings):
    settings.ALERTS_CIRCUIT_OPEN_MINUTES = 10
    Site.objects.filter(pk=site.pk).update(circuit_opened_at=NOW)
    evaluate(Incident.Rule.CIRCUIT_OPEN, minutes=9)
    assert open_incidents(Incident.Rule.CIRCUIT_OPEN) == []
    evaluate(Incident.Rule.CIRCUIT_OPEN, minutes=10)
    assert open_incidents(Incident.Rule.CIRCUIT_OPEN) == [("acme-leads", str(SITE_UUID))]


# --- Sites doubtful or revoked


def test_a_doubtful_site_opens_an_incident_until_it_is_active_again(site):
    Site.objects.filter(pk=site.pk).update(status=Site.Status.DOUBTFUL, status_changed_at=NOW - timedelta(days=3))
    evaluate(Incident.Rule.SITE_ACCESS)
    incident = Incident.objects.get()
    assert incident.title == "Site Example Realty is doubtful: RG answered 401"
    assert incident.subject == str(SITE_UUID)

    Site.objects.filter(pk=site.pk).update(status=Site.Status.ACTIVE)
    evaluate(Incident.Rule.SITE_ACCESS, minutes=1)
    incident.refresh_from_db()
    assert not incident.is_open


def test_a_revoked_site_alerts_until_the_revocation_is_older_than_the_window(site):
    Site.objects.filter(pk=site.pk).update(status=Site.Status.REVOKED, status_changed_at=NOW)
    evaluate(Incident.Rule.SITE_ACCESS)
    assert Incident.objects.get().title == "Site Example Realty was revoked"
    evaluate(Incident.Rule.SITE_ACCESS, minutes=23 * 60)
    assert Incident.objects.get().is_open
    evaluate(Incident.Rule.SITE_ACCESS, minutes=24 * 60 + 1)
    assert not Incident.objects.get().is_open


def test_a_doubtful_site_that_is_then_revoked_stays_one_incident_with_the_new_title(site):
    Site.objects.filter(pk=site.pk).update(status=Site.Status.DOUBTFUL, status_changed_at=NOW)
    evaluate(Incident.Rule.SITE_ACCESS)
    Site.objects.filter(pk=site.pk).update(status=Site.Status.REVOKED, status_changed_at=later(1))
    evaluate(Incident.Rule.SITE_ACCESS, minutes=2)
    incident = Incident.objects.get()
    assert incident.is_open and incident.title == "Site Example Realty was revoked"


# --- The oldest due delivery


def test_a_delivery_due_for_longer_than_the_threshold_opens_a_backlog_incident(site):
    delivery(site, status=Delivery.Status.PENDING, at=NOW)
    evaluate(Incident.Rule.BACKLOG_LATE, minutes=14)
    assert open_incidents(Incident.Rule.BACKLOG_LATE) == []
    evaluate(Incident.Rule.BACKLOG_LATE, minutes=16)
    incident = Incident.objects.get()
    assert incident.title == "Deliveries are late: the oldest has been due for 16 min"
    assert incident.details["count"] == 1

    Delivery.objects.update(status=Delivery.Status.DELIVERED)
    evaluate(Incident.Rule.BACKLOG_LATE, minutes=17)
    assert not Incident.objects.get().is_open


def test_deliveries_behind_an_open_circuit_or_an_earlier_delivery_of_their_lead_are_not_backlog(site, other_site):
    # An update waits behind its lead's create, which retries later: not claimable, not late.
    create = delivery(site, status=Delivery.Status.RETRYING, at=later(60))
    delivery(site, status=Delivery.Status.PENDING, at=NOW, sequence=2, lead=create.lead)
    # Deliveries to a site whose circuit is open wait on purpose (the circuit has its own rule).
    delivery(other_site, status=Delivery.Status.RETRYING, at=NOW)
    Site.objects.filter(pk=other_site.pk).update(circuit_opened_at=NOW)
    evaluate(Incident.Rule.BACKLOG_LATE, minutes=30)
    assert open_incidents(Incident.Rule.BACKLOG_LATE) == []


# --- Worker heartbeat (no partner's)


def test_no_worker_heartbeat_for_the_threshold_opens_an_incident_that_is_no_partners(site):
    WorkerHeartbeat.objects.create(hostname="worker1@host", last_seen=NOW)
    evaluate(Incident.Rule.WORKERS_SILENT, minutes=4)
    assert open_incidents(Incident.Rule.WORKERS_SILENT) == []
    evaluate(Incident.Rule.WORKERS_SILENT, minutes=6)
    assert open_incidents(Incident.Rule.WORKERS_SILENT) == [(None, "")]

    WorkerHeartbeat.objects.update(last_seen=later(7))
    evaluate(Incident.Rule.WORKERS_SILENT, minutes=7)
    assert open_incidents(Incident.Rule.WORKERS_SILENT) == []


def test_no_heartbeat_ever_counts_as_silent():
    evaluate(Incident.Rule.WORKERS_SILENT)
    assert "No worker has ever recorded one" in Incident.objects.get().details["summary"]


# --- Grant emails waiting for review


def grant_email(partner, *, at=NOW) -> GrantEmail:
    return GrantEmail.objects.create(
        partner=partner,
        source=GrantEmail.Source.IMPORT,
        dedupe_key=str(uuid.uuid4()),
        status=GrantEmail.Status.NEEDS_REVIEW,
        received_at=at,
    )


def test_a_grant_email_waiting_for_review_opens_an_incident_for_its_partner_or_for_operators(partner, settings):
    settings.ALERTS_GRANT_EMAIL_REVIEW_MINUTES = 30
    mine = grant_email(partner)
    grant_email(None)
    evaluate(Incident.Rule.GRANT_EMAIL_REVIEW, minutes=29)
    assert open_incidents(Incident.Rule.GRANT_EMAIL_REVIEW) == []
    evaluate(Incident.Rule.GRANT_EMAIL_REVIEW, minutes=31)
    assert sorted(open_incidents(Incident.Rule.GRANT_EMAIL_REVIEW), key=str) == [("acme-leads", ""), (None, "")]
    assert Incident.objects.get(partner=None).title == "1 grant email waiting for review (no partner claims them)"

    GrantEmail.objects.filter(pk=mine.pk).update(status=GrantEmail.Status.RESOLVED)
    evaluate(Incident.Rule.GRANT_EMAIL_REVIEW, minutes=32)
    assert open_incidents(Incident.Rule.GRANT_EMAIL_REVIEW) == [(None, "")]
