"""/metrics: Prometheus's text format, read back with prometheus-client's own parser, with every
series the issue names; and the bearer token that guards it.

Counters are kept in files shared by every process of the host (other test runs too), so each
test counts under a partner of its own, named afresh."""

import json
import uuid
from datetime import timedelta

import pytest
from django.db import DatabaseError
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from grants.models import Partner, WebhookRejection
from grants.services import partner_create
from grants.signing import sign
from leads.models import Delivery
from tests.leads.conftest import OTHER_SITE_UUID, SITE_UUID, run_tasks_inline

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-0123456789"
SERIES = {
    # counters and histograms the processes keep
    "portal_pushes_accepted": "counter",
    "portal_callbacks_received": "counter",
    "portal_delivery_attempts": "counter",
    "portal_delivery_attempt_duration_seconds": "histogram",
    # read from the database at scrape time
    "portal_callbacks_rejected": "counter",
    "portal_delivery_backlog": "gauge",
    "portal_delivery_oldest_due_age_seconds": "gauge",
    "portal_deliveries_in_flight": "gauge",
    "portal_deliveries_held": "gauge",
    "portal_site_circuits": "gauge",
    "portal_sites": "gauge",
    "portal_retention_days": "gauge",
    "portal_database_up": "gauge",
}


@pytest.fixture
def partner(db) -> Partner:
    """A partner no other test (or test run) counts under."""
    return partner_create(
        name=f"Metrics {uuid.uuid4().hex[:10]}",
        rg_username="metrics",
        rg_password="rg-password-metrics",
        webhook_secret="whsec-metrics",
    )


@pytest.fixture(autouse=True)
def token(settings) -> None:
    settings.METRICS_TOKENS = [TOKEN]


def scrape(client: Client, token: str = TOKEN):
    response = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return {family.name: family for family in text_string_to_metric_families(response.content.decode())}


def value(families, name: str, **labels: str) -> float:
    """The value of the sample `name` (a family's sample, e.g. `..._total` or `..._count`) with
    these labels; 0 when there is none."""
    family_name = name.removesuffix("_total").removesuffix("_count").removesuffix("_sum").removesuffix("_bucket")
    family = families.get(family_name)
    samples = [] if family is None else [s for s in family.samples if s.name == name]
    matching = [s.value for s in samples if all(s.labels.get(k) == v for k, v in labels.items())]
    return sum(matching)


def callback(client: Client, partner: Partner, signed_with: str = "whsec-metrics") -> int:
    body = json.dumps({"action": "lead_created", "id": str(uuid.uuid4()), "site_uuid": str(SITE_UUID)}).encode()
    headers = {"X-Lead-Router-Signature": sign(body, signed_with)}
    return client.post(
        f"/webhooks/realgeeks/{partner.slug}/", body, content_type="application/json", headers=headers
    ).status_code


def lead(n: int = 0) -> dict[str, str]:
    return {"source": "Zillow", "email": f"jack{n}@example.com"}


def test_metrics_carry_every_series_from_pushes_deliveries_and_callbacks(
    client, push, partner, site, rg, django_capture_on_commit_callbacks
):
    rg.answer((503, '{"error": "Service Unavailable"}'))
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(3):
            pushed = push.post(f"/rest/sites/{SITE_UUID}/leads", lead(n), content_type="application/json")
            assert pushed.status_code == 201
        held = push.post(f"/rest/sites/{OTHER_SITE_UUID}/leads", lead(9), content_type="application/json")
    assert held.status_code == 201
    assert [callback(client, partner) for _ in range(2)] == [200, 200]
    assert callback(client, partner, signed_with="whsec-wrong") == 401

    families = scrape(client)

    for name, kind in SERIES.items():
        assert name in families, f"{name} is missing from /metrics"
        assert families[name].type == kind, name
    slug = partner.slug
    assert value(families, "portal_pushes_accepted_total", partner=slug, operation="create_lead") == 4
    assert value(families, "portal_callbacks_received_total", partner=slug) == 2
    assert value(families, "portal_callbacks_rejected_total", partner=slug) == 1
    # The first call met a 503 (retrying), the other two were delivered; the held one never went.
    assert value(families, "portal_delivery_attempts_total", partner=slug, outcome="delivered") == 2
    assert value(families, "portal_delivery_attempts_total", partner=slug, outcome="retry") == 1
    assert value(families, "portal_delivery_attempt_duration_seconds_count", partner=slug) == 3
    assert value(families, "portal_delivery_attempt_duration_seconds_bucket", partner=slug, le="+Inf") == 3
    assert value(families, "portal_deliveries_held") == Delivery.objects.filter(status="held").count() == 1
    assert value(families, "portal_sites", partner=slug, status="active") == 1
    assert value(families, "portal_sites", partner=slug, status="pending") == 1  # the held lead's site
    assert value(families, "portal_site_circuits", partner=slug, state="closed") == 2
    assert value(families, "portal_retention_days", rule="attempt_bodies") == 30
    assert value(families, "portal_database_up") == 1


def test_the_backlog_its_oldest_due_age_and_open_circuits_are_read_from_the_database(client, push, partner, site):
    run_tasks_inline(False)  # accepted, never sent: the backlog
    for n in range(2):
        push.post(f"/rest/sites/{SITE_UUID}/leads", lead(n), content_type="application/json")
    now = timezone.now()
    Delivery.objects.update(next_attempt_at=now - timedelta(seconds=120))
    site.circuit_opened_at, site.circuit_open_until = now, now + timedelta(minutes=1)
    site.save()

    families = scrape(client)

    assert value(families, "portal_delivery_backlog") == 2
    assert 119 <= value(families, "portal_delivery_oldest_due_age_seconds") < 180
    assert value(families, "portal_deliveries_in_flight") == 0
    assert value(families, "portal_site_circuits", partner=partner.slug, state="open") == 1
    assert value(families, "portal_site_circuits", partner=partner.slug, state="closed") == 0


def test_without_a_due_delivery_the_oldest_due_age_is_zero(client):
    assert value(scrape(client), "portal_delivery_oldest_due_age_seconds") == 0


def test_rejections_counted_before_metrics_existed_are_reported_too(client, partner):
    WebhookRejection.objects.create(partner=partner, count=41)

    assert value(scrape(client), "portal_callbacks_rejected_total", partner=partner.slug) == 41


def test_with_the_database_unreachable_metrics_still_answer_with_the_process_counters(client, monkeypatch):
    def unreachable(now):
        raise DatabaseError("connection refused")

    monkeypatch.setattr("operations.metrics._database_read", unreachable)

    families = scrape(client)

    assert value(families, "portal_database_up") == 0
    assert "portal_delivery_backlog" not in families
    assert "portal_retention_days" in families


def test_without_a_token_configured_metrics_are_not_found(client, settings):
    settings.METRICS_TOKENS = []

    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})

    assert response.status_code == 404


@pytest.mark.parametrize(
    "authorization",
    [None, "", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", "Bearer ", TOKEN],
    ids=["none", "empty", "longer", "shorter", "basic", "bearer-only", "no-scheme"],
)
def test_a_missing_or_wrong_token_is_a_401_with_an_error_and_a_challenge(client, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}

    response = client.get("/metrics", headers=headers)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert set(response.json()) == {"error"}
    assert TOKEN not in response.content.decode()


def test_any_of_several_tokens_is_accepted_so_a_token_can_rotate(client, settings):
    settings.METRICS_TOKENS = ["new-token-abcdefghijkl", TOKEN]

    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert client.get("/metrics", headers={"Authorization": "bearer new-token-abcdefghijkl"}).status_code == 200


def test_only_get_is_answered(client):
    response = client.post("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})

    assert response.status_code == 405
