"""A day of literal delivery history for the overview's screenshots: a working day's traffic, a
noon outage at Real Geeks, a few refusals, leads held for a site not yet granted, and callbacks."""

import uuid
from datetime import timedelta

from django.utils import timezone

from grants.models import Partner, Site, WebhookEvent
from leads.models import Delivery, Lead
from tests.leads.test_stats import E401, E422, E503, Seed

# Delivered attempts per hour, oldest hour first: quiet at night, busy in the afternoon.
DELIVERED_PER_HOUR = [14, 12, 9, 6, 4, 3, 3, 5, 9, 16, 24, 31, 35, 33, 30, 28, 27, 29, 33, 30, 26, 22, 18, 8]


def a_day_of_history(partner: Partner, site_uuid: uuid.UUID) -> None:
    """The last 24 hours of `partner`'s site `site_uuid` (granted here), ending this hour."""
    seed = Seed(partner, site_uuid)
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    for n, count in enumerate(DELIVERED_PER_HOUR):
        hour = now - timedelta(hours=23 - n)
        for k in range(count):
            seed.attempt(hour + timedelta(minutes=k), "delivered", duration_ms=180 + (k * 37) % 400, status=201)
        if n in (11, 12, 13):  # a noon outage at RG
            for k in range(6 + n - 11):
                seed.attempt(hour + timedelta(minutes=40 + k), "retry", duration_ms=20_000, status=503, error=E503)
        if n % 5 == 2:
            seed.attempt(hour + timedelta(minutes=50), "failed", duration_ms=240, status=422, error=E422)
    seed.attempt(now - timedelta(hours=3), "failed", duration_ms=210, status=401, error=E401)
    seed.attempt(now - timedelta(hours=1), "dead", duration_ms=20_000, status=503, error=E503)
    pending = Site.objects.create(partner=partner, site_uuid=uuid.uuid4(), name="Harbor Homes", source="api")
    for n in range(4):
        lead = Lead.objects.create(partner=partner, site=pending, lead_id=uuid.uuid4(), email=f"h{n}@example.com")
        Delivery.objects.create(lead=lead, sequence=1, operation="create_lead", payload={}, status="held")
    for n, action in enumerate(["integration_enabled", "lead_updated", "user_updated"]):
        body = f'{{"action": "{action}"}}'.encode()
        WebhookEvent.objects.create(
            partner=partner,
            action=action,
            body=body,
            body_sha256=f"{n:064d}",
            site_uuid=site_uuid,
            state="processed",
            received_at=now - timedelta(minutes=20 * n),
        )
