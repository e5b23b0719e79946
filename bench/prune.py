"""Retention at scale: `manage.py prune_bodies` on 3,000,000 delivery attempts in PostgreSQL (full
mode; quick mode uses fewer), and what it does to the writers that keep working meanwhile.

The attempts are made by set-based SQL (`INSERT ... SELECT ... generate_series`), in time order as
the delivery engine writes them, spread evenly over 180 days, so the default 30-day retention
prunes five sixths of them. While the prune runs, two writers keep going as the portal's own do:
a worker's attempt (an INSERT of a new attempt, then the UPDATE that records its answer, each its
own transaction, as leads.delivery does) and a product's push through gunicorn's push API. Their
latencies are measured the same way for the same length of time with no prune running, just
before and just after it, in the same run: that is the baseline. A sampler reads
pg_stat_activity every 20 ms for the prune's longest open transaction and for any writer waiting
on a lock.
"""

from __future__ import annotations

import http.client
import json
import re
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Optional

import psycopg
from psycopg import sql

from bench import dashboard, load
from bench.report import Figure, Report, common_configuration, milliseconds, per_second, ratio, table
from bench.runner import REPO_DIR, SITE_UUID, Context, log
from bench.runner import basic_auth as basic_auth_header

ATTEMPTS = {"quick": 600_000, "full": 3_000_000}
ATTEMPTS_PER_DELIVERY = 3
SPAN_DAYS = 180
RETENTION_DAYS = 30
# Goals: the prune holds no transaction (so no row lock) for long, and no writer waits on a lock.
GOAL_LONGEST_TRANSACTION_MS = 1000.0
GOAL_WRITER_MAX_MS = 1000.0
SAMPLE_INTERVAL = 0.02
ATTEMPT_WRITES_PER_SECOND = 50
PUSHES_PER_SECOND = 10
PRUNE_APPLICATION = "bench-prune"
PRUNED_LINE = re.compile(
    r"pruned (?P<rows>[\d,]+) .* in (?P<batches>[\d,]+) batches, .* longest batch (?P<longest>[\d.]+) ms"
)
WRITER_APPLICATIONS = ("bench-attempt-writer", "bench-web")
# Roughly the size of a real lead's body: RG's fields, a few activities, notes.
NOTES = "Called back about the listing on Kalakaua Ave; wants a 3-bedroom near good schools. " * 8


# ----------------------------------------------------------------------------- the data


def generate(database_url: str, *, attempts: int, partner_slug: str) -> float:
    """`attempts` attempts (three per delivery, one delivery per lead) over SPAN_DAYS days, ids in
    time order; the seconds it took."""
    started = time.monotonic()
    leads = attempts // ATTEMPTS_PER_DELIVERY
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        row = conn.execute(
            "SELECT p.id, s.id FROM grants_partner p JOIN grants_site s ON s.partner_id = p.id "
            "WHERE p.slug = %s AND s.site_uuid = %s",
            (partner_slug, SITE_UUID),
        ).fetchone()
        assert row is not None
        params = {"partner": row[0], "site": row[1], "n": leads, "span": f"{SPAN_DAYS} days", "notes": NOTES}
        tables = list(dashboard.LIST_TABLES)
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint)",
            (tables,),
        ).fetchall()
        for name, _ in indexes:
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
        dashboard._insert(
            conn,
            "leads_lead",
            {
                "partner_id": "%(partner)s",
                "site_id": "%(site)s",
                "lead_id": "md5('prune-lead-' || i)::uuid",
                "data": "jsonb_build_object('id', md5('prune-lead-' || i)::uuid, 'source', 'Bench Product', "
                "'first_name', 'Lead', 'last_name', i::text, 'email', 'lead' || i || '@example.com', "
                "'phone', '808-555-0123', 'role', 'Buyer', 'notes', %(notes)s::text, 'activities', "
                "jsonb_build_array(jsonb_build_object('type', 'visited', 'description', 'First visit')))",
                "email": "'lead' || i || '@example.com'",
                "name": "'Lead ' || i",
                "phone": "'808-555-0123'",
                "status": "'delivered'",
                "last_status_code": "201",
                "created": "now() - (%(n)s - i)::float8 / %(n)s * %(span)s::interval",
                "updated": "now() - (%(n)s - i)::float8 / %(n)s * %(span)s::interval",
            },
            "FROM generate_series(1, %(n)s) i",
            params,
        )
        dashboard._insert(
            conn,
            "leads_delivery",
            {
                "public_id": "gen_random_uuid()",
                "lead_id": "l.id",
                "sequence": "1",
                "operation": "'create_lead'",
                "payload": "l.data",
                "origin": "'api'",
                "status": "'delivered'",
                "attempt_count": "3",
                "attempts_before_retry": "0",
                "last_status_code": "201",
                "last_attempt_at": "l.created + interval '4 minutes'",
                "delivered_at": "l.created + interval '4 minutes'",
                "created": "l.created",
                "updated": "l.created + interval '4 minutes'",
            },
            "FROM leads_lead l ORDER BY l.id",
            params,
        )
        # Two 503s a minute or two apart, then the 201: ids follow time, as the engine writes them.
        dashboard._insert(
            conn,
            "leads_deliveryattempt",
            {
                "public_id": "gen_random_uuid()",
                "delivery_id": "d.id",
                "number": "k",
                "trigger": "CASE WHEN k = 1 THEN 'automatic' ELSE 'sweeper' END",
                "started": "d.created + (k - 1) * interval '2 minutes'",
                "duration_ms": "40 + (d.id * 7 + k) %% 400",
                "request_method": "'POST'",
                "request_url": "'https://receivers.leadrouter.realgeeks.com/rest/sites/' || %(site)s || '/leads'",
                "request_body": "d.payload::text",
                "response_status": "CASE WHEN k < 3 THEN 503 ELSE 201 END",
                "response_body": "CASE WHEN k < 3 THEN '{\"error\": \"Service Unavailable\"}' ELSE '{}' END",
                "error": "CASE WHEN k < 3 THEN 'Real Geeks answered 503: Service Unavailable' ELSE '' END",
                "outcome": "CASE WHEN k < 3 THEN 'retry' ELSE 'delivered' END",
            },
            "FROM leads_delivery d, generate_series(1, 3) k ORDER BY d.id, k",
            params,
        )
        for _, definition in indexes:
            conn.execute(definition)
        for table_name in tables:
            conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(table_name)))
    return time.monotonic() - started


# ----------------------------------------------------------------------------- the writers


@dataclass
class Latencies:
    name: str
    values_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def quantile(self, q: float) -> float:
        if not self.values_ms:
            return 0.0
        ordered = sorted(self.values_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def max_ms(self) -> float:
        return max(self.values_ms, default=0.0)

    def row(self, phase: str) -> list[str]:
        return [
            phase,
            self.name,
            f"{len(self.values_ms):,}",
            milliseconds(statistics.median(self.values_ms) if self.values_ms else 0.0),
            milliseconds(self.quantile(0.99)),
            milliseconds(self.max_ms),
            str(len(self.errors)),
        ]


class Writer(threading.Thread):
    """Calls `write()` about `per_second` times a second until stopped; times each call."""

    def __init__(self, name: str, per_second: float, write: Callable[[], None], close: Callable[[], None]) -> None:
        super().__init__(name=name, daemon=True)
        self.latencies = Latencies(name)
        self.interval = 1.0 / per_second
        self.write = write
        self.close = close
        self.stopping = threading.Event()

    def run(self) -> None:
        next_at = time.monotonic()
        while not self.stopping.is_set():
            began = time.monotonic()
            try:
                self.write()
                self.latencies.values_ms.append((time.monotonic() - began) * 1000)
            except Exception as exc:  # a failed write is reported, not hidden
                self.latencies.errors.append(f"{type(exc).__name__}: {exc}"[:200])
            next_at += self.interval
            self.stopping.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> Latencies:
        self.stopping.set()
        if self.is_alive():
            self.join(timeout=30)
        self.close()
        return self.latencies


def attempt_writer(database_url: str) -> Writer:
    """A worker's attempt: written before the call, completed after it, each in its own transaction."""
    conn = psycopg.connect(database_url, autocommit=True, application_name=WRITER_APPLICATIONS[0])
    row = conn.execute("SELECT max(id) FROM leads_delivery").fetchone()
    assert row is not None
    delivery = row[0]
    numbers = iter(range(100, 10**9))
    body = json.dumps({"source": "Bench Product", "email": "jack@example.com", "notes": NOTES})

    def write() -> None:
        inserted = conn.execute(
            "INSERT INTO leads_deliveryattempt (public_id, delivery_id, number, trigger, started, request_method, "
            "request_url, request_body, response_body, error, outcome) VALUES (%s, %s, %s, 'automatic', now(), "
            "'POST', 'https://rg.example/rest/sites/x/leads', %s, '', '', 'started') RETURNING id",
            (uuid.uuid4(), delivery, next(numbers), body),
        ).fetchone()
        assert inserted is not None
        conn.execute(
            "UPDATE leads_deliveryattempt SET duration_ms = 52, response_status = 201, response_body = '{}', "
            "outcome = 'delivered' WHERE id = %s",
            (inserted[0],),
        )

    return Writer("attempt (INSERT, then UPDATE)", ATTEMPT_WRITES_PER_SECOND, write, conn.close)


def push_writer(base_url: str, authorization: str) -> Writer:
    """A product pushing leads through the push API, one keep-alive connection."""
    host, port = base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    path = f"/rest/sites/{SITE_UUID}/leads"
    headers = {"Authorization": authorization, "Content-Type": "application/json"}

    def write() -> None:
        body = json.dumps({"source": "Bench Product", "email": f"{uuid.uuid4().hex}@example.com", "notes": NOTES})
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status != 201:
            raise RuntimeError(f"push answered {response.status}")

    return Writer("push (POST /rest/sites/.../leads)", PUSHES_PER_SECOND, write, connection.close)


@dataclass
class Sample:
    prune_transaction_ms: float = 0.0  # the longest open transaction of the prune seen
    writer_lock_waits: int = 0  # samples in which a writer waited on a lock
    samples: int = 0


class Sampler(threading.Thread):
    """Reads pg_stat_activity every SAMPLE_INTERVAL seconds."""

    def __init__(self, observer_url: str) -> None:
        super().__init__(name="sampler", daemon=True)
        self.conn = psycopg.connect(observer_url, autocommit=True)
        self.seen = Sample()
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            rows = self.conn.execute(
                "SELECT application_name, extract(epoch FROM clock_timestamp() - xact_start) * 1000, "
                "wait_event_type FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
            ).fetchall()
            self.seen.samples += 1
            for application, age_ms, wait in rows:
                if application == PRUNE_APPLICATION:
                    self.seen.prune_transaction_ms = max(self.seen.prune_transaction_ms, float(age_ms))
                elif application in WRITER_APPLICATIONS and wait == "Lock":
                    self.seen.writer_lock_waits += 1
            self.stopping.wait(SAMPLE_INTERVAL)

    def stop(self) -> Sample:
        self.stopping.set()
        self.join(timeout=30)
        self.conn.close()
        return self.seen


# ----------------------------------------------------------------------------- the run


@dataclass
class Phase:
    name: str
    seconds: float
    writers: list[Latencies]
    cpu: load.CpuUse
    sample: Sample


def phase(
    ctx: Context, name: str, database_url: str, web: Any, *, during: Optional[Callable[[], None]], seconds: float
) -> Phase:
    """Run the writers (and `during`, when given, until it returns) and measure them."""
    assert ctx.postgres is not None and ctx.postgres.process is not None
    meter = load.CpuMeter({"PostgreSQL": [ctx.postgres.process.pid], "gunicorn": [web.processes["web"].pid]})
    writers = [
        attempt_writer(database_url),
        push_writer(web.base_url, basic_auth_header(ctx.creds.key_id, ctx.creds.key_secret)),
    ]
    sampler = Sampler(ctx.observer_url(database_url))
    meter.start()
    for thread in (*writers, sampler):
        thread.start()
    began = time.monotonic()
    if during is not None:
        during()
    else:
        time.sleep(seconds)
    elapsed = time.monotonic() - began
    latencies = [writer.stop() for writer in writers]
    return Phase(name, elapsed, latencies, meter.stop(), sampler.stop())


@dataclass
class PruneRun:
    seconds: float = 0.0
    output: str = ""
    rows: int = 0
    batches: int = 0
    longest_batch_ms: float = 0.0


def prune(web: Any, database_url: str, result: PruneRun) -> Callable[[], None]:
    """`manage.py prune_bodies` in the portal's environment, as its own PostgreSQL application."""
    env = {**web.env, "DATABASE_URL": f"{database_url}?application_name={PRUNE_APPLICATION}"}

    def run() -> None:
        began = time.monotonic()
        done = subprocess.run(
            [sys.executable, str(REPO_DIR / "manage.py"), "prune_bodies"],
            env=env,
            cwd=REPO_DIR,
            capture_output=True,
            text=True,
            timeout=3 * 3600,
            check=False,
        )
        result.seconds = time.monotonic() - began
        result.output = done.stdout + done.stderr
        if done.returncode != 0:
            raise RuntimeError(f"prune_bodies failed:\n{result.output[-3000:]}")
        # The attempts' line: "...: pruned N older than ... in B batches, S s (R rows/s), longest batch M ms".
        found = PRUNED_LINE.search(done.stdout.splitlines()[0])
        if found is None:
            raise RuntimeError(f"prune_bodies said something unexpected:\n{result.output[-3000:]}")
        result.rows, result.batches = int(found["rows"].replace(",", "")), int(found["batches"].replace(",", ""))
        result.longest_batch_ms = float(found["longest"])

    return run


def run(ctx: Context) -> Report:
    attempts = ATTEMPTS[ctx.mode.name]
    report = Report("prune", "retention prune at scale (attempt bodies)", ctx)
    database = ctx.database("bench_prune")
    log(f"prune: generating {attempts:,} attempts over {SPAN_DAYS} days")
    generated = generate(database, attempts=attempts, partner_slug=ctx.creds.partner_slug)
    counts = dashboard.counts(ctx, database)
    table_size = ctx.sql(database, "SELECT pg_size_pretty(pg_total_relation_size('leads_deliveryattempt'))")[0][0]
    due = ctx.sql(
        database,
        "SELECT count(*) FROM leads_deliveryattempt WHERE started < now() - %s::interval",
        (f"{RETENTION_DAYS} days",),
    )[0][0]
    web_url = f"{database}?application_name={WRITER_APPLICATIONS[1]}"
    web = ctx.stack("prune-web", web_url, env={"RETENTION_ATTEMPT_BODY_DAYS": str(RETENTION_DAYS)})
    plan = explain_batch_read(ctx, database)

    warm_up(ctx, database, web)
    # The baseline lasts as long as the prune is expected to; measured again after it, since a
    # shared machine's load drifts: the report compares against the two together.
    expected = max(20.0, due / 20_000)
    log(f"prune: baseline before, {expected:.0f} s of writers with no prune")
    before = phase(ctx, "baseline, before", database, web, during=None, seconds=expected)
    outcome = PruneRun()
    cutoff = ctx.sql(database, "SELECT now() - %s::interval", (f"{RETENTION_DAYS} days",))[0][0]
    due = ctx.sql(database, "SELECT count(*) FROM leads_deliveryattempt WHERE started < %s", (cutoff,))[0][0]
    log(f"prune: pruning {due:,} attempts' bodies while the writers run")
    during = phase(ctx, "during the prune", database, web, during=prune(web, database, outcome), seconds=0)
    log(f"prune: baseline after, {during.seconds:.0f} s")
    after = phase(ctx, "baseline, after", database, web, during=None, seconds=during.seconds)
    # Attempts that aged past the limit while the prune ran are the next run's: counted from the
    # moment it began.
    left = ctx.sql(
        database,
        "SELECT count(*) FROM leads_deliveryattempt WHERE started < %s AND bodies_pruned_at IS NULL",
        (cutoff,),
    )[0][0]
    web.stop()

    rate = outcome.rows / outcome.seconds if outcome.seconds else 0.0
    longest = max(outcome.longest_batch_ms, during.sample.prune_transaction_ms)
    report.add(
        Figure(
            "Bodies pruned",
            f"{outcome.rows:,} in {outcome.seconds:.0f} s",
            goal=f"every one due as it began ({due:,})",
            passed=outcome.rows >= due and left == 0,
        )
    )
    report.add(Figure("Prune rate", per_second(rate)))
    for measure, value in (
        ("Longest prune UPDATE (timed by the prune itself)", outcome.longest_batch_ms),
        ("Longest open prune transaction (seen in pg_stat_activity)", during.sample.prune_transaction_ms),
    ):
        report.add(
            Figure(
                measure,
                milliseconds(value),
                goal=f"≤ {GOAL_LONGEST_TRANSACTION_MS:,.0f} ms",
                passed=value <= GOAL_LONGEST_TRANSACTION_MS,
            )
        )
    report.add(
        Figure(
            "Writer samples waiting on a lock during the prune",
            f"{during.sample.writer_lock_waits} of {during.sample.samples}",
            f"{before.sample.writer_lock_waits + after.sample.writer_lock_waits} of "
            f"{before.sample.samples + after.sample.samples}",
            goal="0",
            passed=during.sample.writer_lock_waits == 0,
        )
    )
    for index, writer in enumerate(during.writers):
        base = [before.writers[index], after.writers[index]]
        base_max = max(b.max_ms for b in base)
        base_p99 = max(b.quantile(0.99) for b in base)
        report.add(
            Figure(
                f"{writer.name}: max latency",
                milliseconds(writer.max_ms),
                milliseconds(base_max),
                ratio(writer.max_ms, base_max),
                f"≤ {GOAL_WRITER_MAX_MS:,.0f} ms",
                writer.max_ms <= GOAL_WRITER_MAX_MS and not writer.errors,
            )
        )
        report.add(
            Figure(
                f"{writer.name}: p99 latency",
                milliseconds(writer.quantile(0.99)),
                milliseconds(base_p99),
                ratio(writer.quantile(0.99), base_p99),
            )
        )
    quick_note = (
        f" Quick mode: {attempts:,} attempts, not the issue's 3,000,000 (`BENCH_MODE=full make bench` runs that)."
        if ctx.mode.name != "full"
        else ""
    )
    report.summary = (
        f"`prune_bodies` pruned **{outcome.rows:,}** attempts' bodies of {counts[2]:,} at **{per_second(rate)}**, "
        f"in {outcome.batches:,} batches of up to 2,000 rows; its longest transaction lasted "
        f"**{milliseconds(longest)}**. Writers "
        f"waited on a lock in {during.sample.writer_lock_waits} of {during.sample.samples} samples; their worst "
        "latencies during the prune are below, next to the same writers with no prune running." + quick_note
    )
    report.configure(common_configuration(ctx))
    report.configure(
        {
            "Data": f"{counts[0]:,} leads, {counts[1]:,} deliveries, {counts[2]:,} attempts "
            f"({table_size} with indexes and TOAST), generated in {generated:.0f} s; request bodies of "
            f"about {len(NOTES) + 250:,} characters, ids in time order over {SPAN_DAYS} days",
            "Retention": f"RETENTION_ATTEMPT_BODY_DAYS={RETENTION_DAYS}: {due:,} attempts older than that; "
            "RETENTION_BATCH_SIZE default (2,000 rows per UPDATE)",
            "Prune": "`manage.py prune_bodies` in the portal's production environment, its own process",
            "Writers": f"a worker's attempt, {ATTEMPT_WRITES_PER_SECOND}/s (INSERT of a new attempt, then the UPDATE "
            f"recording its answer, each its own transaction, straight to PostgreSQL); a push through gunicorn's "
            f"push API, {PUSHES_PER_SECOND}/s on one keep-alive connection",
            "Sampler": f"pg_stat_activity every {SAMPLE_INTERVAL * 1000:.0f} ms: open transactions' ages, lock waits",
            "Check": f"{left:,} attempts older than {RETENTION_DAYS} days left unpruned at the end",
        }
    )
    headers = ["Phase", "Writer", "Writes", "Median", "p99", "Max", "Errors"]
    rows = [w.row(p.name) for p in (before, during, after) for w in p.writers]
    report.section("Writers, phase by phase", table(headers, rows))
    report.section(
        "The machine during each phase",
        "\n".join(f"- {p.name} ({p.seconds:.0f} s): {p.cpu.describe()}" for p in (before, during, after))
        + "\n\nA 2-core machine shared with other work: the prune, PostgreSQL, gunicorn and the writers compete for "
        "the same cores, so the writers' latencies during the prune include CPU contention, not only locks.",
    )
    report.section("What prune_bodies printed", "```\n" + outcome.output.strip() + "\n```")
    report.section("Plan of one batch's read (EXPLAIN, at the start)", "```\n" + plan + "\n```")
    return report


def warm_up(ctx: Context, database_url: str, web: Any) -> None:
    """A few writes of each kind, unmeasured: gunicorn's workers load the app on their first request."""
    authorization = basic_auth_header(ctx.creds.key_id, ctx.creds.key_secret)
    for writer in (attempt_writer(database_url), push_writer(web.base_url, authorization)):
        for _ in range(20):
            writer.write()
        writer.stop()


def explain_batch_read(ctx: Context, database: str) -> str:
    """The plan of the read that picks a batch (operations.retention.Rule.pending, keyset page)."""
    rows = ctx.sql(
        database,
        "EXPLAIN SELECT id, started FROM leads_deliveryattempt WHERE started < now() - %s::interval "
        "AND started >= now() - interval '100 days' AND bodies_pruned_at IS NULL "
        "ORDER BY started, id LIMIT 2000",
        (f"{RETENTION_DAYS} days",),
    )
    return "\n".join(str(row[0]) for row in rows)
