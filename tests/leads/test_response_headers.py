"""RG's response headers on each attempt: kept redacted and bounded (leads.headers), written by
the engine's one batch UPDATE, shown beside the request headers, emptied by the retention prune.
Real Geeks is mocked at requests' transport with the headers each test needs."""

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from html import unescape
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from leads import engine
from leads.headers import MAX_HEADERS, MAX_VALUE_CHARS, REDACTED, response_headers_kept
from leads.models import Delivery, DeliveryAttempt
from leads.services import lead_submit
from operations import retention
from tests.integration.conftest import postgres  # noqa: F401 (the fixture, used by name)
from tests.leads.conftest import SITE_UUID, run_tasks_inline

pytestmark = pytest.mark.django_db

COOKIE = "rg_session=cookie-secret-4f2a; HttpOnly; Secure"
TOKEN = "tok-secret-9c1e"
RG_HEADERS = [
    ("Content-Type", "application/json"),
    ("X-Request-Id", "req-7d3b"),
    ("Set-Cookie", COOKIE),
    ("X-Auth-Token", TOKEN),
    ("WWW-Authenticate", 'Basic realm="secret-realm"'),
]
SECRETS = ["cookie-secret-4f2a", TOKEN, "secret-realm", "rg-password-acme"]


@pytest.fixture(autouse=True)
def queued_not_sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Pushes only queue their deliveries; each test runs the pump itself (as test_engine.py)."""
    monkeypatch.setattr("leads.queue.pump_hint", lambda **kwargs: False)
    run_tasks_inline(False)
    yield
    run_tasks_inline(True)


@pytest.fixture
def rg_answers() -> Iterator[list[tuple[int, Any]]]:
    """Real Geeks at the HTTP edge: each call gets the next (status, headers) of the list, a
    `{}` body, or raises it when it is an exception."""
    answers: list[tuple[int, Any]] = []

    def handle(request: Any) -> tuple[int, Any, str]:
        status, headers = answers.pop(0)
        if isinstance(headers, Exception):
            raise headers
        return status, headers, "{}"

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        base = re.escape(settings.REALGEEKS_API_URL.rsplit("/rest", 1)[0])
        mock.add_callback("POST", re.compile(base + r"/.*"), callback=handle)
        yield answers


def create(partner: Any, n: int = 0) -> Delivery:
    return lead_submit(
        partner=partner,
        site_uuid=SITE_UUID,
        operation="create_lead",
        data={"source": "Zillow", "email": f"kai{n}@example.com"},
    )


def pump() -> None:
    engine.pump_run(budget_seconds=10, idle_seconds=0)


def raw_headers(attempt: DeliveryAttempt) -> str:
    """The column as the database holds it, not as the ORM decodes it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT response_headers FROM leads_deliveryattempt WHERE id = %s", [attempt.pk])
        (value,) = cursor.fetchone()
    return value if isinstance(value, str) else json.dumps(value)


# The pure function.


def test_secret_headers_keep_their_name_and_lose_their_value():
    kept = response_headers_kept(
        [
            *RG_HEADERS,
            ("Authorization", "Bearer abc"),
            ("Proxy-Authenticate", "Basic"),
            ("X-Api-Key", "k"),
            ("X-Signature", "s"),
            ("X-Client-Secret", "c"),
        ]
    )
    assert kept == {
        "Content-Type": "application/json",
        "X-Request-Id": "req-7d3b",
        "Set-Cookie": REDACTED,
        "X-Auth-Token": REDACTED,
        "WWW-Authenticate": REDACTED,
        "Authorization": REDACTED,
        "Proxy-Authenticate": REDACTED,
        "X-Api-Key": REDACTED,
        "X-Signature": REDACTED,
        "X-Client-Secret": REDACTED,
    }


def test_repeated_names_are_joined_and_a_repeated_secret_stays_redacted():
    kept = response_headers_kept([("Via", "1.1 a"), ("via", "1.1 b"), ("Set-Cookie", "a=1"), ("set-cookie", "b=2")])
    assert kept == {"Via": "1.1 a, 1.1 b", "Set-Cookie": REDACTED}


def test_control_characters_are_dropped_so_postgresql_can_store_the_value():
    assert response_headers_kept([("X-Odd\x00", "a\x00b\r\nc\td")]) == {"X-Odd": "abc\td"}


def test_ten_thousand_headers_or_one_repeated_ten_thousand_times_stay_within_the_cap():
    many = response_headers_kept((f"X-Junk-{n}", "v" * 2000) for n in range(10_000))
    assert len(many) == MAX_HEADERS and set(map(len, many.values())) == {MAX_VALUE_CHARS}
    assert list(many)[:2] == ["X-Junk-0", "X-Junk-1"]  # the first ones, in the server's order
    one = response_headers_kept([("Via", "1.1 proxy")] * 10_000)
    assert len(one["Via"]) == MAX_VALUE_CHARS


# The engine stores them.


def test_the_engine_stores_rgs_headers_redacted_and_the_secrets_never_reach_the_database(partner, site, rg_answers):
    rg_answers.append((201, RG_HEADERS))
    delivery = create(partner)

    pump()

    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert attempt.outcome == "delivered"
    assert attempt.response_headers["X-Request-Id"] == "req-7d3b"
    assert attempt.response_headers["Set-Cookie"] == REDACTED
    assert attempt.response_headers["X-Auth-Token"] == REDACTED
    raw = raw_headers(attempt)
    assert "req-7d3b" in raw and not any(secret in raw for secret in SECRETS)


def test_an_error_answers_headers_are_stored_and_a_timeout_stores_none(partner, site, rg_answers):
    rg_answers.extend([(503, [("Retry-After", "1"), ("X-Request-Id", "req-503")]), (0, requests.ReadTimeout())])
    first, second = create(partner, 1), create(partner, 2)

    pump()

    by_delivery = {a.delivery_id: a for a in DeliveryAttempt.objects.all()}
    answered = [a for a in by_delivery.values() if a.response_status == 503]
    timed_out = [a for a in by_delivery.values() if a.response_status is None]
    assert set(by_delivery) == {first.pk, second.pk}
    assert len(answered) == 1
    assert answered[0].response_headers.items() >= {"Retry-After": "1", "X-Request-Id": "req-503"}.items()
    assert [a.response_headers for a in timed_out] == [{}]


def test_ten_thousand_headers_from_rg_store_only_the_capped_few(partner, site, rg_answers):
    rg_answers.append((201, {f"X-Junk-{n}": "v" * 1000 for n in range(10_000)}))
    delivery = create(partner)

    pump()

    stored = DeliveryAttempt.objects.get(delivery=delivery).response_headers
    assert len(stored) == MAX_HEADERS and max(map(len, stored.values())) == MAX_VALUE_CHARS


def test_recording_a_batch_writes_the_headers_in_its_one_attempt_update(partner, site, rg_answers):
    rg_answers.extend([(201, RG_HEADERS)] * 5)
    for n in range(5):
        create(partner, n)

    with CaptureQueriesContext(connection) as queries:
        pump()

    updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE leads_deliveryattempt")]
    recorded = [sql for sql in updates if "response_headers" in sql]
    # One statement per recorded batch, as before: the headers ride along with the status and body.
    assert recorded and len(recorded) == len(updates)
    assert DeliveryAttempt.objects.filter(response_headers__has_key="X-Request-Id").count() == 5


# The page.


@pytest.fixture
def staff_client(client: Any, partner: Any, django_user_model: Any, settings: Any) -> Any:
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    user = django_user_model.objects.create_user("kim", password="kim-password-123", is_staff=True)
    partner.staff.add(user)
    client.force_login(user)
    return client


def delivery_page(client: Any, delivery: Delivery) -> str:
    lead = delivery.lead
    url = reverse("portal:delivery_detail", args=[lead.partner.slug, lead.lead_id, delivery.public_id])
    response = client.get(url)
    assert response.status_code == 200
    return unescape(response.content.decode())


def response_section(page: str, number: int) -> str:
    found = re.search(rf'<section aria-label="Response headers of attempt {number}">(.*?)</section>', page, re.S)
    assert found is not None
    return found[1]


def test_the_page_shows_the_response_headers_beside_the_request_headers_and_no_secret(
    staff_client, partner, site, rg_answers
):
    rg_answers.append((201, RG_HEADERS))
    delivery = create(partner)
    pump()

    page = delivery_page(staff_client, delivery)

    shown = response_section(page, 1)
    assert "<dt>X-Request-Id</dt><dd><code>req-7d3b</code></dd>" in shown
    assert f"<dt>Set-Cookie</dt><dd><code>{REDACTED}</code></dd>" in shown
    request = page.index('<section aria-label="Request headers of attempt 1">')
    assert page.index('<section aria-label="Response headers of attempt 1">') > request  # the next cell
    assert "Basic [redacted]" in page
    assert not any(secret in page for secret in SECRETS)


def test_a_secret_written_into_the_row_some_other_way_is_still_not_shown(staff_client, partner, site, rg_answers):
    rg_answers.append((201, RG_HEADERS))
    delivery = create(partner)
    pump()
    DeliveryAttempt.objects.filter(delivery=delivery).update(response_headers={"X-Session-Id": "sess-secret-1"})

    page = delivery_page(staff_client, delivery)

    assert f"<dt>X-Session-Id</dt><dd><code>{REDACTED}</code></dd>" in response_section(page, 1)
    assert "sess-secret-1" not in page


def test_an_attempt_from_before_headers_were_stored_says_they_were_not_recorded(
    staff_client, partner, site, rg_answers
):
    rg_answers.append((201, RG_HEADERS))
    delivery = create(partner)
    pump()
    DeliveryAttempt.objects.filter(delivery=delivery).update(response_headers={})  # as the migration left them

    assert "(not recorded)" in response_section(delivery_page(staff_client, delivery), 1)


def test_the_prune_empties_the_headers_and_the_page_says_when(staff_client, partner, site, rg_answers, settings):
    settings.RETENTION_ATTEMPT_BODY_DAYS = 30
    rg_answers.extend([(201, RG_HEADERS), (201, RG_HEADERS)])
    old, recent = create(partner, 1), create(partner, 2)
    pump()
    now = timezone.now()
    DeliveryAttempt.objects.filter(delivery=old).update(started=now - timedelta(days=31))

    retention.bodies_prune(now=now)

    pruned, kept = DeliveryAttempt.objects.get(delivery=old), DeliveryAttempt.objects.get(delivery=recent)
    assert (pruned.response_headers, pruned.response_status) == ({}, 201)
    assert kept.response_headers["X-Request-Id"] == "req-7d3b"
    assert "(pruned after 30 days)" in response_section(delivery_page(staff_client, old), 1)


# PostgreSQL: the column's DEFAULT, the jsonb[] array of the batch UPDATE, the prune.

PG_RUN = """
import json, re, responses
from datetime import timedelta
from django.conf import settings
from django.db import connection
from django.utils import timezone
from grants.models import Site
from grants.services import partner_create, site_grant
from leads import engine, queue
from leads.models import DeliveryAttempt
from leads.services import lead_submit
from operations import retention
from tests.leads.test_response_headers import RG_HEADERS, SITE_UUID

settings.DELIVERY_SENDER = "threads"
queue.pump_hint = lambda **kwargs: False
partner = partner_create(name="PG", rg_username="pg", rg_password="rg-password-acme", webhook_secret="ws")
site_grant(partner=partner, site_uuid=SITE_UUID, source=Site.Source.MANUAL, name="PG")
for n in range(3):
    data = {"source": "Web", "email": f"{n}@x.com"}
    lead_submit(partner=partner, site_uuid=SITE_UUID, operation="create_lead", data=data)
with responses.RequestsMock() as mock:
    mock.add(responses.POST, re.compile(".*"), status=201, body="{}", headers=RG_HEADERS)
    engine.pump_run(budget_seconds=10, idle_seconds=0)
with connection.cursor() as cursor:
    cursor.execute("SELECT response_headers::text FROM leads_deliveryattempt ORDER BY id")
    raw = [row[0] for row in cursor.fetchall()]
    cursor.execute("SELECT column_default FROM information_schema.columns"
                   " WHERE table_name = 'leads_deliveryattempt' AND column_name = 'response_headers'")
    default = cursor.fetchone()[0]
first = DeliveryAttempt.objects.order_by("id").first()
DeliveryAttempt.objects.filter(pk=first.pk).update(started=timezone.now() - timedelta(days=400))
retention.bodies_prune()
print(json.dumps({"raw": raw, "default": default, "pruned": DeliveryAttempt.objects.get(pk=first.pk).response_headers}))
"""


@pytest.mark.integration
def test_postgresql_stores_the_redacted_headers_and_keeps_a_constant_default(postgres, tmp_path):  # noqa: F811
    repo = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "DATABASE_URL": postgres.create_database("response_headers"),
        "PORTAL_VAR_DIR": str(tmp_path),
        "LOG_LEVEL": "WARNING",
        "RETENTION_ATTEMPT_BODY_DAYS": "30",
    }

    def manage(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, str(repo / "manage.py"), *args], env=env, cwd=repo, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    manage("migrate", "--no-input", "-v0")
    result = json.loads(manage("shell", "-c", PG_RUN).strip().splitlines()[-1])

    assert len(result["raw"]) == 3
    for raw in result["raw"]:
        stored = json.loads(raw)
        assert stored["X-Request-Id"] == "req-7d3b" and stored["Set-Cookie"] == REDACTED
        assert not any(secret in raw for secret in SECRETS)
    assert result["default"].startswith("'{}'::jsonb")
    assert result["pruned"] == {}
