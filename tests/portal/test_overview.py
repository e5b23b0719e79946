"""The overview page: its numbers for the partners the user may see, and its SVG chart."""

import html
import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from core.models import WorkerHeartbeat
from grants.models import Site
from leads.models import Delivery, Lead
from portal.views import overview
from tests.leads.test_stats import E401, E422, E503, Seed

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

    assert tile(content, "success-rate") == "Attempt success 75.0% 3 of 4 attempts delivered (each retry counts)"
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

    assert tile(everything, "success-rate") == "Attempt success 50.0% 3 of 6 attempts delivered (each retry counts)"
    assert tile(everything, "held-total").startswith("Held deliveries 7 ")
    assert "Other Realty" in everything and "may not send to this site" in everything
    assert tile(acme_only, "success-rate") == "Attempt success 75.0% 3 of 4 attempts delivered (each retry counts)"
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

    assert tile(content, "success-rate") == "Attempt success — 0 of 0 attempts delivered (each retry counts)"
    assert (
        tile(content, "delivery-rate") == "Leads delivered (eventual) — 0 of 0 leads accepted in the window reached RG"
    )
    assert "No failed attempts in this window." in content
    assert "Nothing is held." in content


E422_PHONE = "Real Geeks answered 422: Field 'phone' is not valid."
TIMEOUT = "Real Geeks did not answer within 20 s"


def lead_of(
    partner, site_uuid, name: str, attempts: list[tuple[str, int | None, str]], *, now: tuple[str, str]
) -> Seed:
    """A named lead whose delivery made these (outcome, HTTP status, error) attempts two hours
    ago, and whose delivery and lead statuses are now `now`."""
    seed = Seed(partner, site_uuid)
    for minute, (outcome, status, error) in enumerate(attempts, start=1):
        seed.attempt(two_hours_ago() + timedelta(minutes=minute), outcome, status=status, error=error)
    code, message = attempts[-1][1], attempts[-1][2]
    Delivery.objects.filter(pk=seed.delivery.pk).update(status=now[0], last_status_code=code, last_error=message)
    Lead.objects.filter(pk=seed.delivery.lead_id).update(
        name=name, status=now[1], last_status_code=code, last_error=message
    )
    return seed


def blip(partner, site_uuid=ACME_SITE, name: str = "Di Blip") -> Seed:
    """A lead whose create met a 503, was retried by the engine and delivered."""
    return lead_of(
        partner, site_uuid, name, [("retry", 503, E503), ("delivered", 201, "")], now=("delivered", "delivered")
    )


def reasons(content: str) -> dict[str, dict[str, Any]]:
    """The failure reasons table: error text -> its leads link, retry links and note."""
    section = re.search(r'<section class="card flush" id="failure-reasons">(.*?)</section>', content, re.DOTALL)
    assert section
    found = {}
    for row in re.findall(r"<tr>(.*?)</tr>", section.group(1), re.DOTALL)[1:]:
        leads = re.search(r'<a href="([^"]+)" title="The leads behind these attempts">([^<]*)</a>', row)
        if not leads:
            continue
        actions = re.search(r'<td [^>]*class="actions reason-actions"[^>]*>(.*?)</td>', row, re.DOTALL)
        assert actions
        found[html.unescape(leads.group(2))] = {
            "leads": html.unescape(leads.group(1)),
            "retry": [
                (html.unescape(text), html.unescape(href))
                for href, text in re.findall(r'<a href="([^"]+)">([^<]*)</a>', actions.group(1))
            ],
            "note": " ".join(re.sub(r"<[^>]+>", " ", re.sub(r"<a .*?</a>", "", actions.group(1))).split()),
        }
    return found


def names_listed(client, url: str) -> set[str]:
    """The names of the leads the leads list shows at this URL."""
    response = client.get(url)
    assert response.status_code == 200
    return {lead.name for lead in response.context["leads"]}


def test_a_recovered_503_blip_reads_all_delivered_first_with_attempt_success_beside_it(acme_client, partner):
    blip(partner)

    content = acme_client.get(reverse("home")).content.decode()

    assert tile(content, "delivery-rate") == (
        "Leads delivered (eventual) 100.0% 1 of 1 leads accepted in the window reached RG"
    )
    assert tile(content, "success-rate") == "Attempt success 50.0% 1 of 2 attempts delivered (each retry counts)"
    assert content.index('id="delivery-rate"') < content.index('id="success-rate"')
    assert reasons(content)[E503]["note"] == "Nothing to retry: the engine retried these automatically."
    assert reasons(content)[E503]["retry"] == []


def test_failure_reasons_link_to_exactly_the_leads_behind_them(root_client, partner, other_partner):
    lead_of(partner, ACME_SITE, "Ana Email", [("failed", 422, E422)], now=("failed", "failed"))
    lead_of(partner, ACME_SITE, "Cy Phone", [("failed", 422, E422_PHONE)], now=("failed", "failed"))
    lead_of(other_partner, OTHER_SITE, "Bo Credentials", [("failed", 401, E401)], now=("failed", "failed"))
    blip(partner)

    found = reasons(root_client.get(reverse("home")).content.decode())

    assert names_listed(root_client, str(found[E422]["leads"])) == {"Ana Email"}
    assert names_listed(root_client, str(found[E422_PHONE]["leads"])) == {"Cy Phone"}
    assert names_listed(root_client, str(found[E401]["leads"])) == {"Bo Credentials"}
    assert names_listed(root_client, str(found[E503]["leads"])) == {"Di Blip"}
    listed = root_client.get(str(found[E422]["leads"])).content.decode()
    assert "Only leads with a failed attempt between" in listed and "that got HTTP 422" in listed
    # The list's export carries the same filter: the same leads, not every lead of the window.
    query = str(found[E422]["leads"]).split("?", 1)[1]
    exported = b"".join(root_client.get(f"{reverse('portal:lead_export')}?{query}").streaming_content).decode()
    assert "Ana Email" in exported and "Cy Phone" not in exported and "Di Blip" not in exported


def test_the_leads_lists_failed_attempt_filter_must_be_bounded(acme_client):
    response = acme_client.get(reverse("portal:lead_list"), {"failed_status": "422"})

    assert response.status_code == 200
    assert "needs a window of at most 7 days" in response.content.decode()


def test_retry_links_work_from_all_partners_one_per_partner(root_client, partner, other_partner):
    lead_of(partner, ACME_SITE, "Ana Email", [("failed", 422, E422)], now=("failed", "failed"))
    lead_of(other_partner, OTHER_SITE, "Bo", [("failed", 422, E422)], now=("failed", "failed"))
    lead_of(other_partner, OTHER_SITE, "Bea", [("failed", 422, E422)], now=("failed", "failed"))

    found = reasons(root_client.get(reverse("home")).content.decode())

    links = found[E422]["retry"]
    assert links == [
        ("Retry 1 of Acme Leads…", f"/bulk/?partner={partner.slug}&http_status=422"),
        ("Retry 2 of Other Co…", f"/bulk/?partner={other_partner.slug}&http_status=422"),
    ]
    assert found[E422]["note"].startswith("Needs a human: RG refuses these as sent")
    for (_, url), matched in zip(links, (1, 2), strict=True):
        assert root_client.get(url).context["matched"] == matched


def test_one_partners_staff_get_a_plain_retry_link(acme_client, partner):
    lead_of(partner, ACME_SITE, "Ana Email", [("failed", 422, E422)], now=("failed", "failed"))

    found = reasons(acme_client.get(reverse("home")).content.decode())

    assert found[E422]["retry"] == [("Retry…", f"/bulk/?partner={partner.slug}&http_status=422")]


def test_the_bulk_page_opened_for_all_partners_asks_for_one_without_an_error(root_client, partner, other_partner):
    response = root_client.get(reverse("portal:bulk_retry"), {"http_status": "422"})

    assert response.status_code == 200
    assert not response.context["form"].is_bound
    assert response.context["form"].initial == {"http_status": "422"}
    assert "Choose the partner" not in response.content.decode()


def test_reasons_with_nothing_to_retry_say_why(acme_client, partner):
    blip(partner)
    lead_of(partner, ACME_SITE, "Fixed", [("failed", 422, E422)], now=("delivered", "delivered"))  # resent since
    lead_of(partner, ACME_SITE, "Silent", [("dead", None, TIMEOUT)], now=("dead", "failed"))

    found = reasons(acme_client.get(reverse("home")).content.decode())

    assert found[E503]["note"] == "Nothing to retry: the engine retried these automatically."
    assert found[E422]["note"] == "Nothing to retry: these deliveries were retried or resent since."
    assert found[TIMEOUT]["note"] == "Needs a human: no HTTP status to bulk-retry by; retry them from their leads."
    assert found[E422]["retry"] == found[TIMEOUT]["retry"] == []


def test_the_backlog_and_the_workers_heartbeat(acme_client, partner, other_partner):
    now = timezone.now()
    mine = Seed(partner, ACME_SITE)
    Delivery.objects.filter(pk=mine.delivery.pk).update(status="retrying", next_attempt_at=now - timedelta(minutes=10))
    theirs = Seed(other_partner, OTHER_SITE)
    Delivery.objects.filter(pk=theirs.delivery.pk).update(next_attempt_at=now - timedelta(hours=3))
    WorkerHeartbeat.objects.create(hostname="worker-1", last_seen=now - timedelta(seconds=12))

    content = acme_client.get(reverse("home")).content.decode()

    assert tile(content, "backlog") == "Backlog: due now 1 oldest due for 10 min"
    # 12 s before the request, or a little more on a slow machine.
    assert re.fullmatch(
        r"Workers' heartbeat (1[2-9]) s ago \1 s since the last beat; workers beat every 30 s",
        tile(content, "heartbeat"),
    )
    assert 'class="value bad">never' not in content


def test_no_heartbeat_and_no_backlog_read_as_such(acme_client):
    content = acme_client.get(reverse("home")).content.decode()

    assert tile(content, "backlog") == "Backlog: due now 0 no delivery is waiting for a worker"
    assert tile(content, "heartbeat") == "Workers' heartbeat never no worker has reported yet"
    assert '<span class="value bad">never</span>' in content


def site_rows(content: str) -> list[str]:
    section = re.search(r'<section class="card flush" id="site-health">(.*?)</section>', content, re.DOTALL)
    assert section
    rows = re.findall(r"<tr>(.*?)</tr>", section.group(1), re.DOTALL)[1:]
    return [html.unescape(" ".join(re.sub(r"<[^>]+>", " ", row).split())) for row in rows]


def test_site_health_lists_the_worst_sites_first_with_their_circuit(acme_client, partner, other_partner):
    healthy, flaky, down = (
        uuid.UUID("11111111-2222-4333-8444-555555555555"),
        uuid.UUID("22222222-3333-4444-8555-666666666666"),
        uuid.UUID("33333333-4444-4555-8666-777777777777"),
    )
    blip(partner, healthy, "Ok One")
    lead_of(partner, flaky, "Ana", [("failed", 422, E422)], now=("failed", "failed"))
    blip(partner, flaky, "Ok Two")
    blip(partner, down, "Ok Three")
    now = timezone.now()
    for site_uuid, name in ((healthy, "Healthy Homes"), (flaky, "Flaky Realty"), (down, "Down Estates")):
        Site.objects.filter(site_uuid=site_uuid).update(name=name)
    Site.objects.filter(site_uuid=down).update(
        circuit_failures=5,
        circuit_opened_at=now,
        circuit_open_until=now + timedelta(minutes=5),
        circuit_last_error=E503,
    )
    blip(other_partner, OTHER_SITE, "Theirs")

    content = acme_client.get(reverse("home")).content.decode()

    rows = site_rows(content)
    assert [row.split(" ")[0] for row in rows] == ["Down", "Flaky", "Healthy"]
    assert rows[0].startswith("Down Estates 1 100.0% 1 of 1 Real Geeks answered 503: Service Unavailable Circuit open")
    assert rows[1] == "Flaky Realty 2 50.0% 1 of 2 Real Geeks answered 422: Field 'email' is not valid. Closed"
    assert rows[2] == "Healthy Homes 1 100.0% 1 of 1 — Closed"
    assert "Other Realty" not in content and "Theirs" not in content


def test_site_health_is_bounded_with_a_link_to_every_site(acme_client, partner, monkeypatch):
    monkeypatch.setattr(overview, "SITE_HEALTH_ROWS", 2)
    for n in range(3):
        blip(partner, uuid.UUID(f"{n + 1}" * 8 + "-2222-4333-8444-555555555555"), f"Lead {n}")

    content = acme_client.get(reverse("home")).content.decode()

    assert len(site_rows(content)) == 2
    assert "the 2 worst of 3 sites" in content
    assert f'<a href="{reverse("portal:site_index")}">all sites</a>' in content
