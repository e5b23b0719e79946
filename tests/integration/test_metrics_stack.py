"""/metrics, retention and JSON logs for real: gunicorn and a prefork Celery worker (with beat),
PostgreSQL, Redis and the sandbox as RG. The push counter is kept by the web's processes, the
attempt histogram by the worker's pool processes; one scrape of the web adds up both."""

import json

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.servers import wait_for
from tests.integration.test_pipeline import FAST, SITE, Pipeline, new_lead

pytestmark = pytest.mark.integration

TOKEN = "integration-metrics-token-42"
LEADS = 6


@pytest.fixture(scope="module")
def pipeline(module_portal_stack) -> Pipeline:
    stack = module_portal_stack(beat=True, env={**FAST, "METRICS_TOKEN": TOKEN, "LOG_FORMAT": "json"})
    return Pipeline(stack)


@pytest.fixture(scope="module")
def delivered(pipeline) -> list[str]:
    """Leads pushed through gunicorn and delivered by the worker."""
    leads = [new_lead(first_name=f"Metrics {n}") for n in range(LEADS)]
    for lead in leads:
        assert pipeline.push(f"/rest/sites/{SITE}/leads", lead).status_code == 201
    for lead in leads:
        pipeline.wait_delivered(lead["id"])
    return [lead["id"] for lead in leads]


def scrape(pipeline: Pipeline) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = requests.get(
        f"{pipeline.stack.base_url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    )
    assert response.status_code == 200, response.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def sample(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_one_scrape_adds_up_the_webs_push_counter_and_the_workers_attempt_histogram(pipeline, delivered):
    samples = scrape(pipeline)

    slug = pipeline.slug
    assert sample(samples, "portal_pushes_accepted_total", partner=slug, operation="create_lead") == LEADS
    assert sample(samples, "portal_delivery_attempts_total", partner=slug, outcome="delivered") == LEADS
    assert sample(samples, "portal_delivery_attempt_duration_seconds_count", partner=slug) == LEADS
    assert sample(samples, "portal_delivery_attempt_duration_seconds_bucket", partner=slug, le="+Inf") == LEADS
    assert sample(samples, "portal_delivery_backlog") == 0
    assert sample(samples, "portal_sites", partner=slug, status="active") == 1
    assert sample(samples, "portal_site_circuits", partner=slug, state="closed") == 1
    assert sample(samples, "portal_database_up") == 1
    # Each kind of process counted in a folder of its own.
    metrics_dir = pipeline.stack.var_dir / "metrics"
    assert list((metrics_dir / "web").glob("counter_*.db"))
    assert list((metrics_dir / "worker").glob("histogram_*.db"))


def test_metrics_need_the_bearer_token_through_gunicorn(pipeline):
    url = f"{pipeline.stack.base_url}/metrics"

    wrong = requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=30)
    missing = requests.get(url, timeout=30)

    assert (wrong.status_code, missing.status_code) == (401, 401)
    assert wrong.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert set(wrong.json()) == {"error"}
    # gunicorn's access log is JSON too (gunicorn.conf.py), and never shows the token.
    log = pipeline.stack.processes["web"].log_text()
    access = [json.loads(line) for line in log.splitlines() if line.startswith("{") and '"gunicorn.access"' in line]
    assert any("GET /metrics" in line["message"] and '" 401 ' in line["message"] for line in access)
    assert TOKEN not in log


def test_the_workers_json_log_lines_carry_each_deliverys_lead_delivery_and_partner_ids(pipeline, delivered):
    lines = []
    for text in pipeline.stack.processes["worker1"].log_text().splitlines():
        if text.startswith("{"):
            lines.append(json.loads(text))
    deliveries = [line for line in lines if line.get("logger") == "leads.delivery"]
    partner_id = pipeline.stack.sql("SELECT id FROM grants_partner WHERE slug = %s", (pipeline.slug,))[0][0]

    logged = {line["lead_id"]: line for line in deliveries if line["lead_id"] in delivered}
    assert set(logged) == set(delivered)
    for lead_id, line in logged.items():
        (delivery_id,) = pipeline.stack.sql(
            "SELECT d.id FROM leads_delivery d JOIN leads_lead l ON l.id = d.lead_id WHERE l.lead_id = %s",
            (lead_id,),
        )[0]
        assert (line["delivery_id"], line["partner_id"], line["delivery_status"]) == (
            delivery_id,
            partner_id,
            "delivered",
        )
    # Celery's own lines are JSON too: it kept the portal's logging configuration.
    assert any(line.get("logger", "").startswith("celery") for line in lines)


def test_the_worker_prunes_old_bodies_in_postgresql_and_counts_them(pipeline, delivered):
    stack = pipeline.stack
    stack.sql(
        "UPDATE leads_deliveryattempt a SET started = now() - interval '40 days' FROM leads_delivery d, leads_lead l"
        " WHERE d.id = a.delivery_id AND l.id = d.lead_id AND l.lead_id::text = ANY(%s) RETURNING a.id",
        (delivered,),
    )
    plan = stack.manage("prune_bodies", "--dry-run")
    assert plan.splitlines()[0].startswith(f"attempt request and response bodies: {LEADS} older than 30 days")

    stack.manage("shell", "-c", "from operations.tasks import bodies_prune_task; bodies_prune_task.delay()")

    wait_for(
        lambda: stack.sql("SELECT count(*) FROM leads_deliveryattempt WHERE bodies_pruned_at IS NOT NULL")[0][0]
        == LEADS,
        timeout=60,
        what="the worker to prune the old attempts' bodies",
    )
    bodies = stack.sql(
        "SELECT DISTINCT request_body, response_body, response_status FROM leads_deliveryattempt"
        " WHERE bodies_pruned_at IS NOT NULL"
    )
    assert bodies == [("(pruned after 30 days)", "(pruned after 30 days)", 201)]
    assert sample(scrape(pipeline), "portal_bodies_pruned_total", rule="attempt_bodies") == LEADS
