"""The overview page: its numbers for the partners the user may see, and its SVG chart."""

import re
import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from grants.models import Site
from leads.models import Delivery, Lead
from tests.leads.test_stats import E401, E422, Seed

pytestmark = pytest.mark.django_db

ACME_SITE = uuid.UUID("6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b")
OTHER_SITE = uuid.UUID("0b9a8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d")


def two_hours_ago():
    return timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)


def hold(partner, site_uuid, name: str, count: int) -> Site:
    """`count` deliveries held for a site the partner was never granted."""
    site = Site.objects.create(partner=partner, site_uuid=site_uuid, name=name, source=Site.Source.API)
    for n in range(count):
        lead = Lead.objects.create(partner=partner, site=site, lead_id=uuid.uuid4(), email=f"held{n}@example.com")
        Delivery.objects.create(lead=lead, sequence=1, operation="create_lead", payload={}, status="held")
    return site


@pytest.fixture
def seeded(partner, other_partner):
    hour = two_hours_ago()
    acme = Seed(partner, ACME_SITE)
    for minute, duration in ((1, 100), (2, 200), (3, 300)):
        acme.attempt(hour + timedelta(minutes=minute), "delivered", duration_ms=duration, status=201)
    acme.attempt(hour + timedelta(minutes=4), "failed", duration_ms=400, status=422, error=E422)
    hold(partner, uuid.UUID("9a3c1e7b-2d4f-4b6a-8c0e-1f2a3b4c5d6e"), "Aloha Homes", 2)

    other = Seed(other_partner, OTHER_SITE)
    for minute in (5, 6):
        other.attempt(hour + timedelta(minutes=minute), "failed", duration_ms=9000, status=401, error=E401)
    hold(other_partner, uuid.UUID("c9f0f895-fb98-4b91-9f2e-6a1d3e7c5b40"), "Other Realty", 5)
    return hour


def tile(content: str, tile_id: str) -> str:
    """The text of one stat tile, tags removed and whitespace collapsed."""
    match = re.search(rf'<div class="tile" id="{tile_id}">(.*?)</div>', content, re.DOTALL)
    assert match, tile_id
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


def test_staff_see_their_partners_rate_latency_reasons_and_held_sites(acme_client, seeded):
    content = acme_client.get(reverse("home")).content.decode()

    assert tile(content, "success-rate") == "Success rate 75.0% 3 of 4 attempts delivered"
    assert tile(content, "latency-median").startswith("Latency, median 200 ms over 4 timed attempts")
    assert tile(content, "latency-p95").startswith("Latency, 95th percentile 400 ms")
    assert tile(content, "held-total").startswith("Held deliveries 2 ")
    assert tile(content, "needing-a-human").startswith("Failed or dead deliveries 0 ")
    assert "Field &#x27;email&#x27; is not valid." in content
    assert "Aloha Homes" in content
    assert "Acme Leads" in content


def test_staff_of_one_partner_never_see_anothers_numbers(acme_client, other_partner, seeded):
    content = acme_client.get(reverse("home")).content.decode()

    assert "Other Co" not in content
    assert "Other Realty" not in content
    assert "may not send to this site" not in content
    assert "9000 ms" not in content
    assert acme_client.get(reverse("home"), {"partner": other_partner.slug}).status_code == 404


def test_superusers_see_every_partner_and_can_narrow_to_one(root_client, partner, seeded):
    everything = root_client.get(reverse("home")).content.decode()
    acme_only = root_client.get(reverse("home"), {"partner": partner.slug}).content.decode()

    assert tile(everything, "success-rate") == "Success rate 50.0% 3 of 6 attempts delivered"
    assert tile(everything, "held-total").startswith("Held deliveries 7 ")
    assert "Other Realty" in everything and "may not send to this site" in everything
    assert tile(acme_only, "success-rate") == "Success rate 75.0% 3 of 4 attempts delivered"
    assert "Other Realty" not in acme_only


def test_the_chart_is_inline_svg_with_titles_and_one_column_per_hour(acme_client, seeded):
    day = acme_client.get(reverse("home")).content.decode()
    week = acme_client.get(reverse("home"), {"window": "7d"}).content.decode()

    assert day.count('<g class="column">') == 24
    assert week.count('<g class="column">') == 168
    assert '<title id="attempts-chart-title">Delivery attempts per hour by outcome, last 24 hours</title>' in day
    assert f"<title>{seeded:%Y-%m-%d %H:00} UTC: 3 delivered, 1 failed</title>" in day
    assert re.search(r'<svg viewBox="0 0 960 240" role="img" aria-labelledby="attempts-chart-title', day)


def test_the_chart_numbers_are_also_a_table(acme_client, seeded):
    content = acme_client.get(reverse("home")).content.decode()

    row = re.search(rf"<tr><td class=\"nowrap\">{seeded:%Y-%m-%d %H:%M}</td>(.*?)</tr>", content)
    assert row
    assert re.findall(r"<td>(\d+)</td>", row.group(1)) == ["3", "0", "1", "0", "0", "4"]


def test_the_page_loads_nothing_from_another_host(acme_client, seeded):
    content = acme_client.get(reverse("home")).content.decode()

    assert not re.search(r'(src|href)="(https?:)?//', content)
    # Its only scripts are the portal's own static files (the confirmations).
    scripts = re.findall(r'<script src="([^"]+)"', content)
    assert scripts and all(src.startswith("/static/portal/") for src in scripts), scripts


def test_an_unknown_window_shows_the_default_one(acme_client, seeded):
    response = acme_client.get(reverse("home"), {"window": "<script>"})

    assert response.status_code == 200
    assert "last 24 hours" in response.content.decode()


def test_a_partner_without_data_gets_dashes_not_errors(acme_client):
    content = acme_client.get(reverse("home")).content.decode()

    assert tile(content, "success-rate") == "Success rate — 0 of 0 attempts delivered"
    assert "No failed attempts in this window." in content
    assert "Nothing is held." in content
