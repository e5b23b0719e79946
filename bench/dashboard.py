"""Dashboard at scale: server time (median, p95) of the overview, the leads list (first page,
filtered, searched, a deep keyset page) and a lead's page, with many leads and attempts in
PostgreSQL, against the same pages over 10,000 leads.

The data is made by set-based SQL (`INSERT ... SELECT ... generate_series`), not the ORM; the
list indexes are dropped while it loads and built again after, then the tables are vacuumed and
analysed, as autovacuum would have done in production. Both databases stay up, each behind its
own gunicorn, and the pages are requested in turn, small then large, one at a time, by a
signed-in staff user over HTTP: both sizes see the same machine at the same moments.
"""

from __future__ import annotations

import http.client
import math
import re
import statistics
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Optional

import psycopg
from psycopg import sql

from bench import load
from bench.report import Figure, Report, common_configuration, milliseconds, ratio, statements_markdown, table
from bench.runner import Context, log
from tests.integration.servers import PortalStack

GOAL_P95_MS = 150.0
GOAL_RATIO = 1.5
SPAN_DAYS = 180
SITES = 50
WARMUP_REQUESTS = 3


@dataclass(frozen=True)
class Scale:
    name: str
    leads: int
    database: str = ""


# ----------------------------------------------------------------------------- the data


# Phones 808-555-0000 to 808-555-9999 (a number's last four digits find 1 lead in 10,000), but
# the same 60 leads at either size share 415-867-5309: the phone search's case (see `pages`).
PHONE = "CASE WHEN i %% (%(n)s / 60) = 0 THEN '415-867-5309' ELSE '808-555-' || lpad((i %% 10000)::text, 4, '0') END"


def _fill(conn: psycopg.Connection[Any], table_name: str, given: dict[str, str]) -> tuple[list[str], list[str]]:
    """Columns and SQL expressions for an INSERT: `given`, plus a plain value for every other
    NOT NULL column without a database default (Django sets defaults in Python, and models grow
    columns; the generator must not break when they do)."""
    by_type = {
        "character varying": "''",
        "text": "''",
        "integer": "0",
        "smallint": "0",
        "bigint": "0",
        "boolean": "false",
        "double precision": "0",
        "numeric": "0",
        "timestamp with time zone": "now()",
        "jsonb": "'{}'::jsonb",
        "uuid": "gen_random_uuid()",
    }
    rows = conn.execute(
        "SELECT column_name, is_nullable, column_default, data_type FROM information_schema.columns "
        "WHERE table_name = %s ORDER BY ordinal_position",
        (table_name,),
    ).fetchall()
    columns, values = list(given), list(given.values())
    for name, nullable, default, data_type in rows:
        if name in given or name == "id" or nullable == "YES" or default is not None:
            continue
        if data_type not in by_type:
            raise RuntimeError(f"bench/dashboard.py does not know how to fill {table_name}.{name} ({data_type})")
        columns.append(name)
        values.append(by_type[data_type])
    return columns, values


def _insert(
    conn: psycopg.Connection[Any], table_name: str, given: dict[str, str], rest: str, params: dict[str, Any]
) -> None:
    columns, values = _fill(conn, table_name, given)
    statement = f"INSERT INTO {table_name} ({', '.join(columns)}) SELECT {', '.join(values)} {rest}"
    conn.execute(statement, params)


LIST_TABLES = ("leads_lead", "leads_delivery", "leads_deliveryattempt")


def generate(database_url: str, *, leads: int, partner_slug: str) -> float:
    """Fill the database with `leads` leads over SPAN_DAYS days, 1.5 deliveries and 3 attempts
    per lead; the seconds it took."""
    started = time.monotonic()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        partner = conn.execute("SELECT id FROM grants_partner WHERE slug = %s", (partner_slug,)).fetchone()
        assert partner is not None
        params = {"partner": partner[0], "n": leads, "span": f"{SPAN_DAYS} days", "sites": SITES}
        # Secondary indexes go while the rows load (one sort per index afterwards is far cheaper
        # than maintaining each on every row); constraint indexes stay.
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint)",
            (list(LIST_TABLES),),
        ).fetchall()
        for name, _ in indexes:
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
        _insert(
            conn,
            "grants_site",
            {
                "partner_id": "%(partner)s",
                "site_uuid": "gen_random_uuid()",
                "name": "'Bench site ' || s",
                "status": "'active'",
                "source": "'command'",
                "status_changed_at": "now()",
                "created": "now()",
            },
            "FROM generate_series(1, %(sites)s) s",
            params,
        )
        # Lead i of n was created (n - i) / n of the span ago: the newest now, evenly spread.
        # Of every 100: 4 failed with a 422, 3 retrying after 503s, the rest delivered.
        _insert(
            conn,
            "leads_lead",
            {
                "partner_id": "%(partner)s",
                "site_id": "sites.ids[1 + i %% %(sites)s]",
                "lead_id": "md5('bench-lead-' || i)::uuid",
                "data": "jsonb_build_object('id', md5('bench-lead-' || i)::uuid, 'source', 'Bench Product', "
                "'first_name', 'Lead', 'last_name', i::text, 'email', 'lead' || i || '@example.com', "
                f"'phone', {PHONE}, 'role', 'Buyer')",
                "email": "'lead' || i || '@example.com'",
                "name": "'Lead ' || i",
                "phone": PHONE,
                "status": "CASE WHEN i %% 100 < 4 THEN 'failed' WHEN i %% 100 < 7 THEN 'retrying' ELSE 'delivered' END",
                "created_elsewhere": "false",
                "last_status_code": "CASE WHEN i %% 100 < 4 THEN 422 WHEN i %% 100 < 7 THEN 503 ELSE 201 END",
                "last_error": "CASE WHEN i %% 100 < 4 THEN 'Real Geeks answered 422: Field ''email'' is not a valid "
                "email address.' WHEN i %% 100 < 7 THEN 'Real Geeks answered 503: Service Unavailable' ELSE '' END",
                "created": "now() - (%(n)s - i)::float8 / %(n)s * %(span)s::interval",
                "updated": "now() - (%(n)s - i)::float8 / %(n)s * %(span)s::interval + interval '2 minutes'",
            },
            "FROM generate_series(1, %(n)s) i, "
            "(SELECT array_agg(id ORDER BY id) AS ids FROM grants_site WHERE partner_id = %(partner)s) sites",
            params,
        )
        # Every lead's create; an update for half the delivered leads, so 1.5 deliveries per lead.
        delivery = {
            "public_id": "gen_random_uuid()",
            "lead_id": "l.id",
            "payload": "l.data",
            "origin": "'api'",
            "status": "l.status",
            "attempt_count": "2",
            "attempts_before_retry": "0",
            "last_status_code": "l.last_status_code",
            "last_error": "l.last_error",
        }
        _insert(
            conn,
            "leads_delivery",
            {
                **delivery,
                "sequence": "1",
                "operation": "'create_lead'",
                "last_attempt_at": "l.created + interval '1 minute'",
                "delivered_at": "CASE WHEN l.status = 'delivered' THEN l.created + interval '1 minute' END",
                "next_attempt_at": "CASE WHEN l.status = 'retrying' THEN now() + interval '1 day' END",
                "created": "l.created",
                "updated": "l.created + interval '1 minute'",
            },
            "FROM leads_lead l",
            params,
        )
        _insert(
            conn,
            "leads_delivery",
            {
                **delivery,
                "sequence": "2",
                "operation": "'update_lead'",
                "payload": "jsonb_build_object('phone', '808-555-0000')",
                "last_attempt_at": "l.created + interval '1 hour 1 minute'",
                "delivered_at": "l.created + interval '1 hour 1 minute'",
                "created": "l.created + interval '1 hour'",
                "updated": "l.created + interval '1 hour 1 minute'",
            },
            "FROM leads_lead l WHERE l.status = 'delivered' AND l.id %% 93 < 50",
            params,
        )
        # Two attempts per delivery: a 503 first, then what the delivery's status says.
        _insert(
            conn,
            "leads_deliveryattempt",
            {
                "public_id": "gen_random_uuid()",
                "delivery_id": "d.id",
                "number": "k",
                "trigger": "CASE WHEN k = 1 THEN 'automatic' ELSE 'sweeper' END",
                "started": "d.created + (k - 1) * interval '1 minute'",
                "duration_ms": "80 + (d.id * 7 + k) %% 400",
                "request_method": "CASE WHEN d.sequence = 1 THEN 'POST' ELSE 'PATCH' END",
                "request_url": "'https://receivers.leadrouter.realgeeks.com/rest/sites/' || s.site_uuid || '/leads'",
                "request_body": "d.payload::text",
                "response_status": "CASE WHEN k = 1 OR d.status = 'retrying' THEN 503 "
                "WHEN d.status = 'failed' THEN 422 ELSE 201 END",
                "response_body": "CASE WHEN k = 1 OR d.status = 'retrying' THEN '{\"error\": \"Service Unavailable\"}' "
                "WHEN d.status = 'failed' THEN '{\"error\": \"Field ''email'' is not a valid email address.\"}' "
                "ELSE '{}' END",
                "error": "CASE WHEN k = 1 OR d.status = 'retrying' THEN 'Real Geeks answered 503: Service Unavailable' "
                "WHEN d.status = 'failed' THEN 'Real Geeks answered 422: Field ''email'' is not a valid email "
                "address.' ELSE '' END",
                "outcome": "CASE WHEN k = 1 OR d.status = 'retrying' THEN 'retry' WHEN d.status = 'failed' THEN "
                "'failed' ELSE 'delivered' END",
            },
            "FROM leads_delivery d JOIN leads_lead l ON l.id = d.lead_id JOIN grants_site s ON s.id = l.site_id, "
            "generate_series(1, 2) k",
            params,
        )
        for _, definition in indexes:
            conn.execute(definition)
        for table_name in LIST_TABLES:
            conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(table_name)))
    return time.monotonic() - started


def counts(ctx: Context, database: str) -> tuple[int, int, int]:
    row = ctx.sql(
        database,
        "SELECT (SELECT count(*) FROM leads_lead), (SELECT count(*) FROM leads_delivery), "
        "(SELECT count(*) FROM leads_deliveryattempt)",
    )[0]
    return int(row[0]), int(row[1]), int(row[2])


# ----------------------------------------------------------------------------- the pages


@dataclass(frozen=True)
class Page:
    name: str
    paths: dict[str, str]  # scale name -> path on that database
    expect: dict[str, str]  # scale name -> text the page must contain (it shows what was asked for)


def pages(ctx: Context, scales: list[Scale]) -> list[Page]:
    """The pages to time, each at the same relative place in both databases."""
    slug = ctx.creds.partner_slug
    per_scale: dict[str, dict[str, str]] = {}
    expect: dict[str, dict[str, str]] = {}
    for scale in scales:
        deep = ctx.sql(
            scale.database,
            "SELECT id, (extract(epoch FROM created) * 1000000)::bigint FROM leads_lead "
            "ORDER BY created DESC, id DESC OFFSET %s LIMIT 1",
            (int(scale.leads * 0.9),),
        )[0]
        middle = scale.leads // 2
        # A lead from the middle of the set with an update as well as its create.
        lead_uuid = ctx.sql(
            scale.database,
            "SELECT l.lead_id FROM leads_delivery d JOIN leads_lead l ON l.id = d.lead_id "
            "WHERE d.sequence = 2 ORDER BY l.created OFFSET %s LIMIT 1",
            (scale.leads // 4,),
        )[0][0]
        per_scale[scale.name] = {
            "overview": "/",
            "list": "/leads/",
            "filtered": "/leads/?status=failed",
            "searched": "/leads/?" + urllib.parse.urlencode({"q": f"lead{middle}@example.com"}),
            # Part of a phone number, typed with its dash: leads.search.phone_digits makes it
            # "8675309", found through the phone-digits trigram index (leads migration 0008). The
            # same 60 leads have it at either size, so both pages show a full page of 50: the
            # ratio is the search's, not the difference between drawing 1 row and 50.
            "fragment": "/leads/?" + urllib.parse.urlencode({"q": "867-5309"}),
            "deep": "/leads/?" + urllib.parse.urlencode({"after": f"{deep[1]}.{deep[0]}"}),
            "lead": f"/partners/{slug}/leads/{lead_uuid}/",
        }
        expect[scale.name] = {
            "overview": "attempts",
            "list": f"lead{scale.leads}@example.com",
            "filtered": "failed",
            "searched": f"lead{middle}@example.com",
            "fragment": "867-5309",
            "deep": "@example.com",
            "lead": str(lead_uuid),
        }
    titles = {
        "overview": "Overview (last 24 hours)",
        "list": "Leads list, first page",
        "filtered": "Leads list, filtered (status failed)",
        "searched": "Leads list, searched (a whole email address)",
        "fragment": "Leads list, searched (part of a phone number; 60 leads have it at either size)",
        "deep": "Leads list, deep page (keyset cursor 90% down)",
        "lead": "A lead's page (2 deliveries, 4 attempts)",
    }
    return [
        Page(
            titles[key],
            {name: paths[key] for name, paths in per_scale.items()},
            {name: texts[key] for name, texts in expect.items()},
        )
        for key in titles
    ]


class Session:
    """A signed-in browser, reduced to cookies over one keep-alive connection to 127.0.0.1."""

    def __init__(self, stack: PortalStack) -> None:
        self.host = f"127.0.0.1:{stack.port}"
        self.connection = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=120)
        self.cookies: dict[str, str] = {}

    def request(
        self, method: str, path: str, body: Optional[bytes] = None, headers: Optional[dict[str, str]] = None
    ) -> tuple[int, bytes]:
        sent = {"Host": self.host, "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()), **(headers or {})}
        self.connection.request(method, path, body=body, headers=sent)
        response = self.connection.getresponse()
        data = response.read()
        for value in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        return response.status, data

    def login(self, username: str, password: str) -> None:
        status, page = self.request("GET", "/login/")
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        if status != 200 or token is None:
            raise RuntimeError(f"the login page answered {status} without a CSRF token")
        form = urllib.parse.urlencode(
            {"username": username, "password": password, "csrfmiddlewaretoken": token.group(1).decode()}
        ).encode()
        status, _ = self.request("POST", "/login/", form, {"Content-Type": "application/x-www-form-urlencoded"})
        if status != 302:
            raise RuntimeError(f"signing in answered {status}, not a redirect")

    def timed_get(self, path: str, *, expect: str = "") -> float:
        started = time.perf_counter()
        status, body = self.request("GET", path)
        elapsed = (time.perf_counter() - started) * 1000
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}: {body[:300]!r}")
        if expect and expect.encode() not in body:
            raise RuntimeError(f"GET {path} does not show {expect!r}: the benchmark would time the wrong page")
        return elapsed


def percentile(values: list[float], percent: float) -> float:
    """Nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)]


# ----------------------------------------------------------------------------- the benchmark


def run(ctx: Context) -> Report:
    mode = ctx.mode
    report = Report("dashboard", "dashboard at scale", ctx)
    scales = [Scale("small", mode.small_leads), Scale("large", mode.large_leads)]
    generated: dict[str, tuple[float, tuple[int, int, int]]] = {}
    for i, scale in enumerate(scales):
        database = ctx.database(f"bench_dashboard_{scale.name}")
        log(f"dashboard: generating {scale.leads:,} leads ({scale.name}) with set-based SQL")
        seconds = generate(database, leads=scale.leads, partner_slug=ctx.creds.partner_slug)
        scales[i] = Scale(scale.name, scale.leads, database)
        generated[scale.name] = (seconds, counts(ctx, database))
        log(f"dashboard: {generated[scale.name][1]} rows in {seconds:.0f} s")

    stacks = {scale.name: ctx.stack(f"dashboard-{scale.name}", scale.database) for scale in scales}
    for name, stack in stacks.items():
        # The set-based load wrote attempts around the engine, which keeps the overview's rollup.
        log(f"dashboard: {stack.manage('rollup_rebuild', timeout=900).strip().splitlines()[-1]} ({name})")
    sessions = {name: Session(stack) for name, stack in stacks.items()}
    for session in sessions.values():
        session.login(ctx.creds.admin_username, ctx.creds.admin_password)
    timings: dict[tuple[str, str], list[float]] = {}
    page_list = pages(ctx, scales)
    assert ctx.postgres is not None and ctx.postgres.process is not None
    meter = load.CpuMeter(
        {
            "gunicorn, both sizes": [stack.processes["web"].pid for stack in stacks.values()],
            "PostgreSQL": [ctx.postgres.process.pid],
        }
    ).start()
    for page in page_list:
        log(f"dashboard: {page.name}, {mode.page_requests} requests at each size")
        for name, session in sessions.items():
            for _ in range(WARMUP_REQUESTS):
                session.timed_get(page.paths[name], expect=page.expect[name])
        for _ in range(mode.page_requests):
            for name, session in sessions.items():
                timings.setdefault((page.name, name), []).append(session.timed_get(page.paths[name]))

    cpu = meter.stop()
    rows = []
    for page in page_list:
        small, large = timings[(page.name, "small")], timings[(page.name, "large")]
        small_p95, large_p95 = percentile(small, 95), percentile(large, 95)
        passed = large_p95 <= GOAL_P95_MS and large_p95 <= GOAL_RATIO * small_p95
        report.add(
            Figure(
                f"{page.name}: p95",
                milliseconds(large_p95),
                milliseconds(small_p95),
                ratio(large_p95, small_p95),
                f"≤ {GOAL_P95_MS:.0f} ms and ≤ {GOAL_RATIO} x",
                passed,
            )
        )
        rows.append(
            [
                page.name,
                milliseconds(statistics.median(small)),
                milliseconds(small_p95),
                milliseconds(statistics.median(large)),
                milliseconds(large_p95),
                f"{ratio(statistics.median(large), statistics.median(small)):.2f}",
            ]
        )
    large_scale = scales[1]
    note = (
        ""
        if mode.name == "full"
        else (
            f" Quick mode: the large set is {large_scale.leads:,} leads, not the issue's 1,000,000 "
            "(`BENCH_MODE=full make bench` runs that)."
        )
    )
    passed_pages = sum(1 for figure in report.figures if figure.passed)
    report.summary = (
        f"{passed_pages} of {len(report.figures)} pages met the goal at {generated['large'][1][0]:,} leads and "
        f"{generated['large'][1][2]:,} attempts (p95 ≤ {GOAL_P95_MS:.0f} ms and ≤ {GOAL_RATIO} x the same page at "
        f"{generated['small'][1][0]:,} leads).{note}"
    )
    report.configure(common_configuration(ctx))
    report.configure(
        {
            "Data, small": data_line(generated["small"]),
            "Data, large": data_line(generated["large"]) + note,
            "Shape": f"one partner, {SITES} sites, leads spread evenly over the last {SPAN_DAYS} days; of every 100 "
            "leads 4 failed (422), 3 retrying (503), 93 delivered; 1.5 deliveries and 3 attempts per lead",
            "Generation": "INSERT ... SELECT over generate_series, secondary indexes dropped during the load and "
            "created again after, then VACUUM ANALYZE",
            "Client": f"one signed-in superuser (the overview and list over every partner), one keep-alive "
            f"connection per size; {WARMUP_REQUESTS} warm-up requests per page and size, then "
            f"{mode.page_requests} timed, alternating small and large request by request",
            "Server time": "wall time of each request over 127.0.0.1, sent and answered in full (includes under a "
            "millisecond of loopback and client overhead)",
            "CPU while timing": cpu.describe()
            + (
                ": other work on this shared machine ran beside the timed requests; it slows both sizes alike, "
                "so the ratios hold better than the absolute times"
                if cpu.others > 0.3
                else ""
            ),
        }
    )
    report.section(
        "Medians and p95 at both sizes",
        table(["Page", "Median, small", "p95, small", "Median, large", "p95, large", "Median ratio"], rows),
    )
    report.section(
        "Paths requested (large)", "\n".join(f"- {page.name}: `{page.paths['large']}`" for page in page_list)
    )
    for page, figure in zip(page_list, report.figures, strict=True):
        if figure.passed is False:
            report.section(f"Why: {page.name}", explain(ctx, stacks["large"], page.paths["large"]))
    for stack in stacks.values():
        stack.stop()
    return report


def data_line(generated: tuple[float, tuple[int, int, int]]) -> str:
    seconds, (leads, deliveries, attempts) = generated
    return f"{leads:,} leads, {deliveries:,} deliveries, {attempts:,} attempts (generated in {seconds:.0f} s)"


def explain(ctx: Context, stack: PortalStack, path: str) -> str:
    """The page's SQL with each statement's time, and the plan of the slowest (run in-process)."""
    result = ctx.statements(stack, "--path", path, "--user", ctx.creds.admin_username, "--explain-slowest")
    return statements_markdown(result, what="this page")
