"""The hourly attempt rollup (leads.rollup): after real engine runs it equals a direct count of
the attempts, a rebuild gives the same rows, the migration's backfill fills history, the overview
reads it, and recording a batch costs one statement more for it, whatever the batch's size.

RG is mocked at the HTTP edge (tests/leads/conftest.py's `rg`); the engine runs in process."""

import importlib
import json
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from leads import delivery as outbox
from leads import engine, rollup, stats
from leads.models import DURATION_BUCKETS_MS, AttemptHour, Delivery, DeliveryAttempt
from leads.services import lead_submit
from tests.integration.conftest import postgres  # noqa: F401
from tests.leads.conftest import SITE_UUID, run_tasks_inline
from tests.leads.test_stats import E422, E503, Seed

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def queued_not_sent():
    """Pushes only queue their deliveries here; each test runs the pump itself."""
    run_tasks_inline(False)
    yield
    run_tasks_inline(True)


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    monkeypatch.setattr("leads.queue.pump_hint", lambda **kwargs: False)


def create(partner, n: int) -> Delivery:
    return lead_submit(
        partner=partner,
        site_uuid=SITE_UUID,
        operation="create_lead",
        data={"source": "Zillow", "email": f"lead{n}@example.com"},
    )


def pump() -> engine.PumpResult:
    return engine.pump_run(budget_seconds=10, idle_seconds=0)


def all_due() -> None:
    Delivery.objects.filter(status="retrying").update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def counted() -> dict[tuple[Any, ...], int]:
    """The rollup: (hour, partner, outcome, status, error) -> attempts, empty rows left out."""
    return {
        (row.hour, row.partner_id, row.outcome, row.response_status, row.error): row.attempts
        for row in AttemptHour.objects.all()
        if row.attempts
    }


def direct() -> dict[tuple[Any, ...], int]:
    """The same, counted from the attempts themselves."""
    found: Counter[tuple[Any, ...]] = Counter()
    for attempt in DeliveryAttempt.objects.exclude(outcome="started").select_related("delivery__lead"):
        key = (
            rollup.hour_of(attempt.started),
            attempt.delivery.lead.partner_id,
            attempt.outcome,
            attempt.response_status or 0,
            attempt.error,
        )
        found[key] += 1
    return dict(found)


def rows() -> list[tuple[Any, ...]]:
    """Every rollup column of every row (ids aside), in key order. A row whose one attempt was
    taken back (an interrupted attempt answered after all) reads as no row: a rebuild has none."""
    columns = [field.attname for field in AttemptHour._meta.concrete_fields if field.name != "id"]
    return sorted(AttemptHour.objects.exclude(attempts=0).values_list(*columns))


def test_the_rollup_equals_a_direct_count_after_deliveries_retries_and_failures(partner, site, rg):
    rg.answer((503, "{}"), (503, "{}"), (422, '{"error": "Field \'email\' is not valid."}'))
    for n in range(6):
        create(partner, n)

    pump()
    all_due()
    pump()

    outcomes = Counter(DeliveryAttempt.objects.values_list("outcome", flat=True))
    assert outcomes == {"delivered": 5, "retry": 2, "failed": 1}
    assert counted() == direct()
    window = stats.window_ending("24h", timezone.now())
    attempts = stats.attempts_in(window, partners=None)
    assert stats.attempts_by_hour_from_rollup(window, partners=None) == stats.attempts_by_hour(attempts, window)
    assert stats.failure_reasons_from_rollup(window, partners=None) == stats.failure_reasons(attempts)
    assert stats.latency_from_rollup(window, partners=None).count == stats.latency(attempts).count == 8


def test_a_dead_workers_attempt_is_counted_interrupted_then_its_retry_delivered(partner, site, rg):
    delivery = create(partner, 1)
    token = uuid.uuid4()
    outbox.deliveries_claim(slots=1, token=token, credentials_for=engine.Pump().credentials_for)  # then killed
    assert counted() == {}  # in flight: not counted yet
    Delivery.objects.filter(pk=delivery.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))

    pump()  # another pump takes the delivery over and delivers it

    assert sorted(DeliveryAttempt.objects.values_list("outcome", flat=True)) == ["delivered", "interrupted"]
    assert counted() == direct()
    assert sorted(outcome for _, _, outcome, _, _ in counted()) == ["delivered", "interrupted"]


def test_an_interrupted_attempt_whose_answer_arrives_after_all_is_counted_once(partner, site, rg):
    delivery = create(partner, 1)
    slow = engine.Pump()
    [claimed] = outbox.deliveries_claim(slots=1, token=slow.token, credentials_for=slow.credentials_for)
    answered = slow.sender.submit(claimed.call).result()
    Delivery.objects.filter(pk=delivery.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    other = engine.Pump()
    outbox.deliveries_claim(  # the lease ran out mid-call: another pump takes it over
        slots=1, token=other.token, credentials_for=other.credentials_for, lease_expired_too=True
    )
    assert DeliveryAttempt.objects.get(pk=claimed.attempt_id).outcome == "interrupted"

    outbox.deliveries_record([(claimed, answered)], token=slow.token)  # the slow pump's answer lands

    assert DeliveryAttempt.objects.get(pk=claimed.attempt_id).outcome == "delivered"
    assert counted() == direct()
    assert [outcome for _, _, outcome, _, _ in counted()] == ["delivered"]


def test_a_rebuild_gives_the_same_rows_as_the_upkeep(partner, other_partner, site, rg):
    rg.answer((503, "{}"), (422, "{}"))
    for n in range(4):
        create(partner, n)
    pump()
    all_due()
    pump()
    old = Seed(other_partner, uuid.uuid4())
    old.attempt(datetime(2025, 3, 4, 10, 15, 30, tzinfo=UTC), "failed", duration_ms=480, status=422, error=E422)
    old.attempt(datetime(2025, 3, 4, 10, 59, 59, tzinfo=UTC), "dead", duration_ms=None, status=None, error=E503)
    kept = rows()

    written = rollup.hours_rebuild()

    assert rows() == kept
    assert written == len(kept)


def test_a_rebuild_since_a_time_recomputes_only_the_hours_from_then(partner):
    seed = Seed(partner, uuid.uuid4())
    seed.attempt(datetime(2025, 3, 4, 9, 5, tzinfo=UTC), "delivered", duration_ms=90, status=201)
    seed.attempt(datetime(2025, 3, 4, 11, 5, tzinfo=UTC), "delivered", duration_ms=90, status=201)
    AttemptHour.objects.update(attempts=99)  # both hours wrong

    call_command("rollup_rebuild", "--since", "2025-03-04T10:30:00Z")

    assert dict(AttemptHour.objects.values_list("hour__hour", "attempts")) == {9: 99, 11: 1}


def test_the_migrations_backfill_fills_the_rollup_from_history(partner):
    seed = Seed(partner, uuid.uuid4())
    attempts = [
        DeliveryAttempt(
            delivery=seed.delivery,
            number=n,
            trigger="automatic",
            started=datetime(2025, 1, 2, 3, n, tzinfo=UTC),
            duration_ms=100 * n,
            request_method="POST",
            request_url="http://127.0.0.1/x",
            response_status=201,
            outcome="delivered",
        )
        for n in range(1, 4)
    ]
    DeliveryAttempt.objects.bulk_create(attempts)  # no signals: history from before the rollup
    assert not AttemptHour.objects.exists()
    migration = importlib.import_module("leads.migrations.0007_hourly_rollup")

    migration.backfill(None, SimpleNamespace(connection=connection))

    row = AttemptHour.objects.get()
    assert (row.hour, row.partner_id, row.outcome, row.response_status) == (
        datetime(2025, 1, 2, 3, tzinfo=UTC),
        partner.pk,
        "delivered",
        201,
    )
    assert (row.attempts, row.timed, row.duration_ms_sum, row.duration_ms_max) == (3, 3, 600, 300)
    assert (row.le_100, row.le_200, row.le_250, row.le_300) == (1, 2, 2, 3)
    assert row.last_started == datetime(2025, 1, 2, 3, 3, tzinfo=UTC)


def test_the_overview_reads_the_rollup_and_says_the_latency_is_estimated(admin_client, partner):
    seed = Seed(partner, uuid.uuid4())
    hour = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    written = [
        DeliveryAttempt(
            delivery=seed.delivery,
            number=n,
            trigger="automatic",
            started=hour + timedelta(minutes=n),
            duration_ms=duration,
            request_method="POST",
            request_url="http://127.0.0.1/x",
            response_status=201,
            outcome="delivered",
        )
        for n, duration in enumerate((110, 120, 130, 140, 900), start=1)
    ]
    DeliveryAttempt.objects.bulk_create(written)  # around the upkeep: the rollup does not know them

    before = admin_client.get(reverse("home")).content.decode()
    call_command("rollup_rebuild", "--since", "1d")
    after = admin_client.get(reverse("home")).content.decode()

    assert "0 of 0 attempts delivered" in before
    assert "5 of 5 attempts delivered" in after
    # Ranks 3 and 5 of 110 120 130 140 900. The median's bucket, (100, 150], holds four: three
    # quarters up it is 137.5 (the exact median is 130). The 95th is 900: the (750, 1000] bucket
    # holds only the longest attempt, so its top is 900.
    assert ">138 ms<" in after and ">900 ms<" in after
    assert after.count("≈ estimated from duration buckets") == 2


def test_recording_a_batch_costs_the_same_few_statements_one_for_the_rollup_at_any_size(partner, site, rg):
    def recorded(deliveries: int) -> list[str]:
        for n in range(deliveries):
            create(partner, n)
        pump_ = engine.Pump()
        claimed = outbox.deliveries_claim(slots=64, token=pump_.token, credentials_for=pump_.credentials_for)
        finished = [(c, pump_.sender.submit(c.call).result()) for c in claimed]
        with CaptureQueriesContext(connection) as queries:
            outbox.deliveries_record(finished, token=pump_.token)
        return [query["sql"] for query in queries.captured_queries]

    recorded(1)  # warm: the first batch of a process also looks up the partner's slug for the metrics
    few, many = recorded(2), recorded(30)

    # Lock the leads; update the deliveries and the attempts; read the deliveries and update the
    # leads' summaries; upsert the rollup; and the transaction's savepoint and release.
    assert len(few) == len(many) == 8, "\n".join(sql[:90] for sql in many)
    assert len([sql for sql in many if "leads_attempthour" in sql]) == 1
    assert Counter(DeliveryAttempt.objects.values_list("outcome", flat=True)) == {"delivered": 33}
    assert counted() == direct()


def test_the_histogram_has_a_column_per_bucket():
    columns = {field.name for field in AttemptHour._meta.fields if field.name.startswith("le_")}

    assert columns == set(rollup.BUCKET_COLUMNS) == {f"le_{bound}" for bound in DURATION_BUCKETS_MS}


def histogram(*durations: int) -> rollup.Histogram:
    below = [sum(1 for d in durations if d <= bound) for bound in DURATION_BUCKETS_MS]
    return rollup.Histogram(count=len(durations), below=below, max_ms=max(durations, default=0))


@pytest.mark.parametrize(
    ("durations", "percent", "estimate"),
    [
        ((100, 200, 300, 400), 50, 200),  # on a bound, the bucket's last: exact
        ((100, 200, 300, 400), 95, 400),
        ((110, 120, 130, 140), 50, 120),  # rank 2 of 4 in (100, 150], whose top is the longest, 140
        ((90, 95, 25_000, 40_000), 95, 40_000),  # past the last bound: up to the longest
        ((60_000,), 50, 60_000),
    ],
)
def test_percentiles_are_interpolated_inside_the_bucket_holding_the_rank(durations, percent, estimate):
    assert histogram(*durations).quantile(percent) == estimate


def test_no_timed_attempts_give_no_percentile():
    assert histogram().quantile(95) is None


# On PostgreSQL: the upsert, the reaping's UPDATE ... RETURNING and the rebuild's hour expression
# are SQL of their own there; the same engine steps must give a rollup equal to a direct count.
POSTGRES_SCRIPT = """
import json, uuid
from datetime import UTC, datetime, timedelta
from django.utils import timezone
from grants.models import Site
from grants.services import partner_create, site_grant
from leads import delivery as outbox, engine, realgeeks, rollup
from leads.models import Delivery
from leads.services import lead_submit
from tests.leads.test_rollup import counted, direct, rows
from tests.leads.test_stats import E422, Seed

partner = partner_create(name="PG", rg_username="pg", rg_password="pw", webhook_secret="ws")
seed = Seed(partner, uuid.uuid4())
seed.attempt(datetime(2025, 3, 4, 10, 59, 59, 999999, tzinfo=UTC), "failed", duration_ms=480, status=422, error=E422)
seed.attempt(datetime(2025, 3, 4, 11, 0, tzinfo=UTC), "delivered", duration_ms=90, status=201)
site = site_grant(partner=partner, site_uuid=uuid.uuid4(), source=Site.Source.MANUAL, name="PG site")
data = {"source": "Zillow", "email": "a@example.com"}
lead_submit(partner=partner, site_uuid=site.site_uuid, operation="create_lead", data=data)
slow, other = engine.Pump(), engine.Pump()
[first] = outbox.deliveries_claim(slots=1, token=slow.token, credentials_for=slow.credentials_for)
Delivery.objects.update(claimed_until=timezone.now() - timedelta(seconds=1))
[again] = outbox.deliveries_claim(
    slots=1, token=other.token, credentials_for=other.credentials_for, lease_expired_too=True
)
reaped = sorted(outcome for _, _, outcome, _, _ in counted())
answer = realgeeks.Outcome(realgeeks.Reply(201, "{}"), None, 130)  # what each sender's call came to
outbox.deliveries_record([(again, answer)], token=other.token)
outbox.deliveries_record([(first, answer)], token=slow.token)  # the slow pump's answer lands after all
incremental = rows()
written = rollup.hours_rebuild()
print(json.dumps({
    "equal": counted() == direct(),
    "reaped": reaped,
    "outcomes": sorted(outcome for _, _, outcome, _, _ in counted()),
    "rebuilt_same": rows() == incremental and written == len(incremental),
}))
"""


@pytest.mark.integration
def test_postgresql_keeps_and_rebuilds_the_same_rollup(postgres, tmp_path):  # noqa: F811
    from tests.leads.test_stats_postgresql import manage

    url = postgres.create_database("leads_rollup")
    manage(url, tmp_path, "migrate", "--noinput")

    printed = json.loads(manage(url, tmp_path, "shell", "-c", POSTGRES_SCRIPT).strip().splitlines()[-1])

    assert printed == {
        "equal": True,
        "reaped": ["delivered", "failed", "interrupted"],
        "outcomes": ["delivered", "delivered", "failed"],
        "rebuilt_same": True,
    }
