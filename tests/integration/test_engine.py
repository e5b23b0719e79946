"""The delivery engine for real: two Celery workers (prefork, pumps with the asyncio sender),
beat, PostgreSQL, Redis, and the sandbox as RG over HTTP. What it must keep: nothing lost when a
worker is killed mid-batch, order per lead across concurrent workers, and a circuit that opens
in an outage without spending the retry budgets of deliveries it never sent."""

import concurrent.futures
import signal
import time
from typing import Any

import pytest

from tests.integration.servers import wait_for
from tests.integration.test_pipeline import FAST, SITE, Pipeline, new_lead

pytestmark = pytest.mark.integration

ENGINE = {
    **FAST,
    "DELIVERY_CIRCUIT_FAILURES": "3",
    "DELIVERY_CIRCUIT_COOLDOWN_SECONDS": "2",
    "DELIVERY_IN_FLIGHT": "16",
}


@pytest.fixture(scope="module")
def pipeline(module_portal_stack) -> Pipeline:
    stack = module_portal_stack(beat=True, env=ENGINE, concurrency=2)
    stack.start_worker(concurrency=2)  # a second worker, as on a second machine
    return Pipeline(stack)


@pytest.fixture(autouse=True)
def no_faults(pipeline):
    pipeline.stack.manage("shell", "-c", _CIRCUIT_RESET)
    yield
    pipeline.faults()


_CIRCUIT_RESET = "from grants.models import Site; Site.objects.update(circuit_failures=0, circuit_opened_at=None)"


def statuses(pipeline: Pipeline, lead_ids: list[str]) -> dict[str, int]:
    rows = pipeline.stack.sql(
        "SELECT d.status, count(*) FROM leads_delivery d JOIN leads_lead l ON l.id = d.lead_id"
        " WHERE l.lead_id::text = ANY(%s) GROUP BY d.status",
        (lead_ids,),
    )
    return dict(rows)


def leads_where(pipeline: Pipeline, lead_ids: list[str], condition: str) -> set[str]:
    """Which of the leads have a delivery (d) or attempt (a) meeting the SQL condition."""
    rows = pipeline.stack.sql(
        "SELECT DISTINCT l.lead_id::text FROM leads_lead l JOIN leads_delivery d ON d.lead_id = l.id"
        " LEFT JOIN leads_deliveryattempt a ON a.delivery_id = d.id"
        f" WHERE l.lead_id::text = ANY(%s) AND {condition}",
        (lead_ids,),
    )
    return {row[0] for row in rows}


def attempt_counts(pipeline: Pipeline, lead_ids: list[str]) -> list[int]:
    rows = pipeline.stack.sql(
        "SELECT d.attempt_count FROM leads_delivery d JOIN leads_lead l ON l.id = d.lead_id"
        " WHERE l.lead_id::text = ANY(%s)",
        (lead_ids,),
    )
    return [row[0] for row in rows]


def push_all(pipeline: Pipeline, requests: list[tuple[str, Any, str]], threads: int = 8) -> None:
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        answers = list(pool.map(lambda r: pipeline.push(r[0], r[1], r[2]).status_code, requests))
    assert set(answers) <= {200, 201}, answers


def workers_kill_all(pipeline: Pipeline) -> None:
    for name, process in list(pipeline.stack.processes.items()):
        if name.startswith("worker") and process.alive():
            pipeline.stack.kill_worker(signal.SIGKILL, name=name)


def test_a_worker_killed_mid_batch_loses_nothing(pipeline):
    workers_kill_all(pipeline)
    leads = [new_lead() for _ in range(30)]
    ids = [lead["id"] for lead in leads]
    push_all(pipeline, [(f"/rest/sites/{SITE}/leads", lead, "POST") for lead in leads])
    pipeline.faults("--latency-ms", "3000", "--remaining", "30")
    # One pump of 16 slots (and a ready buffer of 8) takes the first batch; the rest of the
    # backlog is not yet claimed.
    pipeline.stack.start_worker(concurrency=1)
    wait_for(lambda: statuses(pipeline, ids).get("claimed", 0) >= 10, timeout=30, what="a batch in flight")

    workers_kill_all(pipeline)
    in_flight_at_kill = leads_where(pipeline, ids, "d.status = 'claimed'")
    assert 10 <= len(in_flight_at_kill) <= 24
    pipeline.stack.start_worker(concurrency=2)
    pipeline.stack.start_worker(concurrency=2)
    wait_for(lambda: statuses(pipeline, ids) == {"delivered": 30}, timeout=120, what="every lead delivered")

    interrupted = leads_where(pipeline, ids, "a.outcome = 'interrupted'")
    assert interrupted and interrupted <= in_flight_at_kill
    timed_out = leads_where(pipeline, ids, "a.error LIKE 'Real Geeks did not answer%%'")
    for lead_id in ids:
        received = pipeline.sandbox_requests(lead_id)
        assert received, f"{lead_id} never reached RG"
        # Only what was in flight at the kill may have been sent twice (RG merges by id), and
        # what timed out (the sandbox's 3 s latency outlasts the 2 s read timeout): RG may
        # have taken the request it did not answer in time.
        assert len(received) == 1 or lead_id in interrupted | timed_out, (lead_id, received)


def test_order_per_lead_holds_with_200_leads_interleaved_across_workers(pipeline):
    leads = [new_lead() for _ in range(200)]

    def one_lead(lead: dict[str, Any]) -> None:
        base = f"/rest/sites/{SITE}/leads"
        for path, body, method in (
            (base, lead, "POST"),
            (f"{base}/{lead['id']}", {"notes": "first update"}, "PATCH"),
            (f"{base}/{lead['id']}/activities", [{"type": "note", "description": "called"}], "POST"),
            (f"{base}/{lead['id']}", {"notes": "second update"}, "PATCH"),
        ):
            assert pipeline.push(path, body, method).status_code in (200, 201)

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        list(pool.map(one_lead, leads))
    ids = [lead["id"] for lead in leads]
    wait_for(lambda: statuses(pipeline, ids) == {"delivered": 800}, timeout=180, what="800 deliveries delivered")

    # What RG received, in the order it received it: per lead, the order the product sent.
    received: dict[str, list[tuple[str, str]]] = {}
    for lead_id, method, path in pipeline.stack.sql(
        "SELECT lead_id, method, path FROM sandbox_sandboxrequest WHERE lead_id = ANY(%s) ORDER BY id", (ids,)
    ):
        received.setdefault(lead_id, []).append((method, path.rstrip("/").rsplit("/", 1)[-1]))
    expected = {
        lead_id: [("POST", "leads"), ("PATCH", lead_id), ("POST", "activities"), ("PATCH", lead_id)] for lead_id in ids
    }
    assert {lead_id: calls for lead_id, calls in received.items() if calls != expected[lead_id]} == {}
    assert len(received) == 200


def test_an_outage_opens_the_circuit_and_recovery_closes_it_without_spending_budgets(pipeline):
    pipeline.faults("--outage", "--forever")
    leads = [new_lead() for _ in range(20)]
    ids = [lead["id"] for lead in leads]
    for lead in leads:  # one at a time, so the first few failures open the circuit
        assert pipeline.push(f"/rest/sites/{SITE}/leads", lead).status_code == 201

    def circuit() -> tuple[Any, ...]:
        return pipeline.stack.sql(
            "SELECT s.circuit_opened_at, s.circuit_failures FROM grants_site s JOIN grants_partner p"
            " ON p.id = s.partner_id WHERE p.slug = %s AND s.site_uuid = %s",
            (pipeline.slug, SITE),
        )[0]

    wait_for(lambda: circuit()[0] is not None, timeout=30, what="the circuit to open")
    opened = time.monotonic()
    time.sleep(5)  # a few cool-downs pass; each lets one probe through
    # Attempts started before the circuit opened (the failures that opened it, and whatever the
    # two workers' pumps had claimed when the third failure was recorded: at most one each, as
    # the first retry is 1 s away) and after it (the probes), split on the database's own clock.
    before, retried_before, after, open_seconds = pipeline.stack.sql(
        "SELECT count(*) FILTER (WHERE a.started <= s.circuit_opened_at),"
        " count(*) FILTER (WHERE a.started <= s.circuit_opened_at AND a.number > 1),"
        " count(*) FILTER (WHERE a.started > s.circuit_opened_at),"
        " extract(epoch FROM now() - s.circuit_opened_at)"
        " FROM leads_deliveryattempt a JOIN leads_delivery d ON d.id = a.delivery_id"
        " JOIN leads_lead l ON l.id = d.lead_id JOIN grants_site s ON s.id = l.site_id"
        " WHERE l.lead_id::text = ANY(%s) GROUP BY s.circuit_opened_at",
        (ids,),
    )[0]
    # Without the circuit, 20 deliveries retrying at 1 s, 2 s and 4 s would make about 60
    # attempts by now. With it: no delivery was retried before it opened, and after it only one
    # probe per 2 s cool-down (and one claim that raced the opening).
    assert retried_before == 0, (before, retried_before, after)
    assert after <= float(open_seconds) / 2 + 2, (before, after, open_seconds)

    pipeline.faults()  # RG recovers
    recovered = time.monotonic()
    wait_for(lambda: statuses(pipeline, ids) == {"delivered": 20}, timeout=90, what="every lead delivered")
    assert circuit() == (None, 0)
    # Without the circuit each delivery would have retried all through the outage (1 s, 2 s,
    # 4 s, ...). With it: one success each, the opening failures, and one probe per cool-down.
    probes = (recovered - opened) / 2 + 2
    assert sum(attempt_counts(pipeline, ids)) <= 20 + before + probes
