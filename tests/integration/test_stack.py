"""The production shape, for real: PostgreSQL, Redis, gunicorn, a Celery worker and beat."""

import json
import os
import re
import time

import pytest
from django.conf import settings

from tests.integration.servers import http_get_json, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(module_portal_stack):
    return module_portal_stack(beat=True, heartbeat_seconds=1.0)


def test_every_migration_applies_on_postgresql(stack):
    plan = stack.manage("showmigrations", "--plan")

    assert re.search(r"\[X\]\s+portal\.0001_initial", plan)
    assert "[ ]" not in plan
    assert stack.sql("SELECT count(*) FROM django_migrations")[0][0] > 10


def test_healthz_answers_200_through_gunicorn(stack):
    status, headers, body = stack.get("/healthz")

    assert status == 200
    assert headers["server"].startswith("gunicorn")
    assert json.loads(body)["status"] == "ok"


def test_a_real_worker_and_beat_record_heartbeats_that_healthz_reports(stack):
    started = time.time()

    rows = wait_for(
        lambda: stack.sql("SELECT hostname FROM portal_workerheartbeat WHERE last_seen > to_timestamp(%s)", (started,)),
        timeout=60,
        what="a heartbeat recorded by the worker after the test started",
    )

    assert rows[0][0].startswith("worker1@")
    _, body = http_get_json(f"{stack.base_url}/healthz")
    assert body["workers_last_seen"] is not None
    assert 0 <= body["workers_last_seen"] < 30


def test_the_worker_yields_the_cpu_to_the_web_by_worker_niceness(stack):
    web, worker = stack.processes["web"], stack.workers()[0]
    # worker_init lowers it, early in the worker's start; the heartbeat test above saw it up.
    niceness = wait_for(
        lambda: os.getpriority(os.PRIO_PROCESS, worker.pid) - os.getpriority(os.PRIO_PROCESS, web.pid) or None,
        timeout=30,
        what="the worker's lower CPU priority",
    )

    assert niceness == settings.WORKER_NICENESS == 10


def test_healthz_names_the_broker_while_redis_is_down_and_recovers_when_it_returns(stack, redis):
    redis.stop()
    try:
        status, body = http_get_json(f"{stack.base_url}/healthz")
    finally:
        redis.start()

    assert status == 503
    assert body["status"] == "unavailable"
    assert set(body["problems"]) == {"broker"}
    wait_for(
        lambda: http_get_json(f"{stack.base_url}/healthz")[0] == 200,
        timeout=30,
        what="/healthz to answer 200 once Redis is back",
    )


def test_the_login_page_is_served_with_its_static_css(stack):
    status, _, page = stack.get("/login/")
    stylesheets = re.findall(rb'<link rel="stylesheet" href="([^"]+)"', page)

    assert status == 200
    assert stylesheets, "the login page links no stylesheet"
    for href in stylesheets:
        # WhiteNoise serves the hashed name collectstatic wrote, with a far-future cache header.
        css_status, headers, css = stack.get(href.decode())
        assert css_status == 200, href
        assert headers["content-type"].startswith("text/css")
        assert "immutable" in headers.get("cache-control", "")
        assert css.strip()


def test_demo_setup_prints_its_secrets_once_and_changes_nothing_when_run_again(stack):
    tables = ["auth_user", "grants_partner", "grants_apikey", "grants_site", "sandbox_sandboxaccount"]

    def counts():
        return {table: stack.sql(f"SELECT count(*) FROM {table}")[0][0] for table in tables}

    before = counts()
    again = stack.manage("demo_setup")

    password = re.search(r"Staff user created: admin / (\S{8,})", stack.demo_output)
    api_key = re.search(r"API key for partner 'demo' .*: (\S+):(\S{16,})", stack.demo_output)
    assert password and api_key
    assert "Staff user created" not in again
    assert password.group(1) not in again
    assert api_key.group(2) not in again
    assert counts() == before
    assert all(count >= 1 for count in before.values())
