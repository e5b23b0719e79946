"""The delivery engine in one process: batch claims (head of each lead's queue, the partner cap),
batched recording, the circuit breaker, and a stale keep-alive connection retried at once.

RG is mocked at requests' transport (`rg`); the thread-pool sender makes the calls. The same
engine over real servers and the asyncio sender: tests/integration/test_engine.py."""

import http.client
import uuid
from datetime import timedelta

import pytest
import requests
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from urllib3.exceptions import ProtocolError

from grants.models import Site
from leads import circuit, engine
from leads import delivery as outbox
from leads.models import Delivery, Lead
from leads.services import lead_submit
from tests.leads.conftest import SITE_UUID, run_tasks_inline

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def queued_not_sent():
    """Pushes only queue their deliveries here; each test runs the pump itself."""
    run_tasks_inline(False)
    yield
    run_tasks_inline(True)


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    # The hint a push or a pump publishes is not under test here: no broker to reach.
    monkeypatch.setattr("leads.queue.pump_hint", lambda **kwargs: False)


def create(partner, n: int = 0) -> Delivery:
    return lead_submit(
        partner=partner,
        site_uuid=SITE_UUID,
        operation="create_lead",
        data={"source": "Zillow", "email": f"lead{n}@example.com"},
    )


def update(partner, delivery: Delivery, notes: str) -> Delivery:
    return lead_submit(
        partner=partner,
        site_uuid=SITE_UUID,
        operation="update_lead",
        data={"notes": notes},
        lead_id=delivery.lead.lead_id,
    )


def claim(slots: int = 64) -> list[outbox.Claimed]:
    return outbox.deliveries_claim(slots=slots, token=uuid.uuid4(), credentials_for=engine.Pump().credentials_for)


def statuses(*deliveries: Delivery) -> list[str]:
    return [Delivery.objects.get(pk=d.pk).status for d in deliveries]


def test_a_claim_takes_only_the_head_of_each_leads_queue(partner, site, rg):
    first, second = create(partner, 1), create(partner, 2)
    behind_first = update(partner, first, "a")
    behind_that = update(partner, first, "b")

    claimed = claim()

    assert sorted(c.delivery_id for c in claimed) == sorted([first.pk, second.pk])
    assert statuses(first, second, behind_first, behind_that) == ["claimed", "claimed", "pending", "pending"]
    assert rg.calls == []


def test_a_pump_sends_a_leads_deliveries_in_order_and_each_once(partner, site, rg):
    leads = [create(partner, n) for n in range(5)]
    for n, lead in enumerate(leads):
        update(partner, lead, f"first {n}")
    for n, lead in enumerate(leads):
        update(partner, lead, f"second {n}")

    result = engine.pump_run(budget_seconds=10, idle_seconds=0)

    assert result.recorded == 15 and result.statuses == {"delivered": 15}
    for n, lead in enumerate(leads):
        path = f"/rest/sites/{SITE_UUID}/leads"
        sent = [
            (method, body)
            for method, url, body in rg.calls
            if str(lead.lead.lead_id) in url
            or (method == "POST" and url.endswith(path) and body["id"] == str(lead.lead.lead_id))
        ]
        assert [method for method, _ in sent] == ["POST", "PATCH", "PATCH"]
        assert [body.get("notes") for _, body in sent[1:]] == [f"first {n}", f"second {n}"]
    assert set(Lead.objects.values_list("status", flat=True)) == {"delivered"}


def test_at_most_the_partners_cap_is_in_flight_across_pumps(partner, site, rg, settings):
    settings.DELIVERY_PARTNER_MAX_IN_FLIGHT = 3
    for n in range(5):
        create(partner, n)

    assert len(claim()) == 3
    assert claim() == []  # another pump: the partner's three calls are still in flight


def test_a_batch_costs_a_handful_of_statements_not_a_few_per_delivery(partner, site, rg):
    for n in range(40):
        create(partner, n)

    with CaptureQueriesContext(connection) as queries:
        result = engine.pump_run(budget_seconds=10, idle_seconds=0)

    assert result.recorded == 40
    # A claim is 4 statements and a record 5, for any number of deliveries; how many claims and
    # records a pump makes depends on when calls finish, so the bound is per delivery: the
    # engine this replaced ran about 20 for each one.
    assert len(queries.captured_queries) <= 40, [q["sql"][:60] for q in queries.captured_queries]


def test_a_stale_keep_alive_connection_is_retried_at_once_not_a_minute_later(partner, site, rg):
    stale = requests.ConnectionError(ProtocolError("Connection aborted.", http.client.RemoteDisconnected("closed")))
    rg.answer(stale)
    delivery = create(partner)

    engine.pump_run(budget_seconds=10, idle_seconds=0)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_count, len(rg.calls)) == ("delivered", 1, 2)


def test_a_refused_connection_is_not_mistaken_for_a_stale_one(partner, site, rg):
    rg.answer(requests.ConnectionError(ConnectionRefusedError(111, "refused")))
    delivery = create(partner)

    engine.pump_run(budget_seconds=10, idle_seconds=0)

    delivery.refresh_from_db()
    assert (delivery.status, len(rg.calls)) == ("retrying", 1)


def test_an_outage_opens_the_circuit_and_unsent_deliveries_keep_their_budget(partner, site, rg, settings):
    settings.DELIVERY_CIRCUIT_FAILURES = 3
    settings.DELIVERY_PARTNER_MAX_IN_FLIGHT = 1  # one call at a time, so the order is known
    rg.answer(*[(503, "{}")] * 3)
    failed = [create(partner, n) for n in range(3)]
    never_sent = [create(partner, n) for n in range(3, 6)]

    engine.pump_run(budget_seconds=10, idle_seconds=0)

    site.refresh_from_db()
    assert circuit.circuit_state(site)["state"] == "open"
    assert site.circuit_failures == 3 and "503" in site.circuit_last_error
    assert statuses(*failed) == ["retrying"] * 3
    assert [Delivery.objects.get(pk=d.pk).attempt_count for d in never_sent] == [0, 0, 0]
    assert len(rg.calls) == 3

    # The cool-down ends: one probe goes out, succeeds, and closes the circuit for the rest.
    Site.objects.filter(pk=site.pk).update(circuit_open_until=timezone.now() - timedelta(seconds=1))
    engine.pump_run(budget_seconds=10, idle_seconds=0)

    site.refresh_from_db()
    assert circuit.circuit_state(site)["state"] == "closed" and site.circuit_failures == 0
    assert statuses(*never_sent) == ["delivered"] * 3


def test_a_failed_probe_keeps_the_circuit_open_for_another_cool_down(partner, site, rg, settings):
    settings.DELIVERY_CIRCUIT_FAILURES = 1
    rg.answer((503, "{}"), (502, "{}"))
    create(partner, 1)
    waiting = create(partner, 2)
    settings.DELIVERY_PARTNER_MAX_IN_FLIGHT = 1
    engine.pump_run(budget_seconds=10, idle_seconds=0)
    Site.objects.filter(pk=site.pk).update(circuit_open_until=timezone.now() - timedelta(seconds=1))

    engine.pump_run(budget_seconds=10, idle_seconds=0)

    site.refresh_from_db()
    assert circuit.circuit_state(site)["state"] == "open"
    assert site.circuit_open_until > timezone.now() + timedelta(seconds=30)
    assert len(rg.calls) == 2  # the first failure and one probe, nothing else
    assert Delivery.objects.get(pk=waiting.pk).attempt_count in (0, 1)


def test_a_4xx_answer_does_not_count_toward_the_circuit(partner, site, rg, settings):
    settings.DELIVERY_CIRCUIT_FAILURES = 2
    rg.answer((422, '{"error": "bad"}'), (422, '{"error": "bad"}'), (422, '{"error": "bad"}'))
    for n in range(3):
        create(partner, n)

    engine.pump_run(budget_seconds=10, idle_seconds=0)

    site.refresh_from_db()
    assert (site.circuit_failures, site.circuit_opened_at) == (0, None)


def test_resume_now_closes_an_open_circuit(partner, site):
    Site.objects.filter(pk=site.pk).update(
        circuit_failures=5, circuit_opened_at=timezone.now(), circuit_open_until=timezone.now() + timedelta(minutes=1)
    )
    site.refresh_from_db()

    assert circuit.circuit_resume(site=site) is True
    assert circuit.circuit_state(site)["state"] == "closed"
    assert circuit.circuit_resume(site=site) is False


def test_the_rate_limit_allows_a_burst_of_one_second_then_the_rate():
    limit = engine.RateLimit(per_second=5)
    assert limit.allowance(1) == 5
    limit.spend(1, 5)
    assert limit.allowance(1) == 0
    assert limit.allowance(2) == 5  # per partner


def test_a_surprise_in_one_call_is_that_attempts_failure_not_the_pumps(partner, site, rg):
    rg.answer(ValueError("something nobody expected"))
    deliveries = [create(partner, 1), create(partner, 2)]

    engine.pump_run(budget_seconds=10, idle_seconds=0)

    outcomes = sorted(Delivery.objects.filter(pk__in=[d.pk for d in deliveries]).values_list("status", "last_error"))
    assert outcomes == [("delivered", ""), ("retrying", "Request to Real Geeks failed (ValueError)")]
