"""Facts and filters on the lead and delivery models: which deliveries are due, and a lead's
summary from its deliveries."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Optional

import pytest
from django.db import connection

from grants.models import Partner, Site
from leads.delivery import _DUE
from leads.models import Delivery, DeliveryFacts, Lead, LeadSummary, Operation, lead_summary_from

NOW = datetime(2026, 11, 3, 18, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture
def deliveries(partner: Partner, site: Site) -> dict[str, Delivery]:
    """One lead's deliveries, by what they are: the first two due at NOW, the rest not."""
    lead = Lead.objects.create(partner=partner, site=site, lead_id=uuid.uuid4(), email="kai@example.com")
    Status = Delivery.Status
    rows: list[tuple[str, str, Optional[datetime]]] = [
        ("due at now", Status.PENDING, NOW),
        ("retry due an hour ago", Status.RETRYING, NOW - HOUR),
        ("due a microsecond later", Status.PENDING, NOW + timedelta(microseconds=1)),
        ("pending, unscheduled", Status.PENDING, None),
        *(
            (f"{status} with a past time", status, NOW - HOUR)
            for status in ("waiting", "held", "claimed", "delivered", "failed", "dead", "cancelled")
        ),
    ]
    return {
        name: Delivery.objects.create(
            lead=lead, sequence=n, operation=Operation.UPDATE_LEAD, payload={}, status=status, next_attempt_at=at
        )
        for n, (name, status, at) in enumerate(rows, start=1)
    }


@pytest.mark.django_db
def test_deliveries_are_due_when_pending_or_retrying_and_their_time_has_come(deliveries):
    due = Delivery.objects.due(NOW)

    assert {deliveries[name] for name in ("due at now", "retry due an hour ago")} == set(due)


@pytest.mark.django_db
def test_the_claims_sql_finds_the_deliveries_due_finds(deliveries):
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM leads_delivery WHERE {_DUE.format(d='')}",
            [connection.ops.adapt_datetimefield_value(NOW)],
        )
        claimable = {row[0] for row in cursor.fetchall()}

    assert claimable == set(Delivery.objects.due(NOW).values_list("pk", flat=True))
    assert len(claimable) == 2


def test_a_leads_summary_is_its_latest_delivery_in_the_most_urgent_state_still_counting():
    facts = [
        DeliveryFacts(Operation.CREATE_LEAD, 1, Delivery.Status.FAILED, 422, "email: invalid"),
        DeliveryFacts(Operation.UPDATE_LEAD, 2, Delivery.Status.RETRYING, 503, "RG answered 503"),
        DeliveryFacts(Operation.UPDATE_LEAD, 3, Delivery.Status.RETRYING, 429, "RG answered 429"),
        # A resent create was delivered: the failed first one no longer counts.
        DeliveryFacts(Operation.CREATE_LEAD, 4, Delivery.Status.DELIVERED, 201, ""),
    ]

    assert lead_summary_from(facts) == LeadSummary(Lead.Status.RETRYING, 429, "RG answered 429")
    assert lead_summary_from(facts[:1]) == LeadSummary(Lead.Status.FAILED, 422, "email: invalid")
    assert lead_summary_from([]) == LeadSummary(Lead.Status.PENDING, None, "")
