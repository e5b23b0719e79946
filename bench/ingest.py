"""Ingest: accepted `POST /rest/sites/{uuid}/leads` per second and p99 latency, against a bare
Django view answering `201 {}` under the same gunicorn settings (bench.baseline_urls).

No Celery worker runs: accepting a lead ends with its task published to Redis, which is part of
what is measured; delivering it is the delivery benchmark's business.
"""

from __future__ import annotations

import json

from bench import web
from bench.report import Figure, Report, common_configuration, milliseconds, per_second, ratio, statements_markdown
from bench.runner import SITE_UUID, Context, log

GOAL_RATIO = 0.4
PATH = f"/rest/sites/{SITE_UUID}/leads"
# A lead as partners send them: the create of a buyer with a first activity.
LEAD = {
    "source": "Bench Product",
    "first_name": "Jack",
    "last_name": "Johnson",
    "email": "jack.johnson@example.com",
    "phone": "808-555-0123",
    "role": "Buyer",
    "activities": [{"type": "visited", "description": "First visit to the site"}],
}


def run(ctx: Context) -> Report:
    mode = ctx.mode
    report = Report("ingest", "ingest (push API)", ctx)
    database = ctx.database("bench_ingest")
    body_file = ctx.workdir / "lead.json"
    body_file.write_text(json.dumps(LEAD))
    args = [f"body={body_file}", f"auth={ctx.basic_auth()}"]

    log("ingest: starting the portal and the baseline (bare view) under gunicorn")
    real = ctx.stack("ingest-real", database)
    baseline = ctx.stack("ingest-baseline", database, baseline=True)
    comparison = web.compare(ctx, name="ingest", baseline=baseline, real=real, path=PATH, args=args, real_status=201)
    base, got = comparison.baseline, comparison.real
    stored = ctx.sql(database, "SELECT count(*) FROM leads_lead")[0][0]
    accepted = sum(r.result.count(201) for r in comparison.rounds["real"])

    rate_ratio = ratio(got.rate, base.rate)
    report.add(
        Figure(
            "Accepted leads per second (201)",
            per_second(got.rate),
            per_second(base.rate),
            rate_ratio,
            f"≥ {GOAL_RATIO} of the baseline",
            rate_ratio >= GOAL_RATIO,
        )
    )
    for name in ("p99", "p50"):
        report.add(
            Figure(
                f"{name} latency",
                milliseconds(got.result.latency_ms[name]),
                milliseconds(base.result.latency_ms[name]),
                ratio(got.result.latency_ms[name], base.result.latency_ms[name]),
            )
        )
    request = ["--method", "POST", "--path", PATH, "--header", f"Authorization: {ctx.basic_auth()}"]
    sql = web.statements(ctx, baseline, real, *request, "--body-file", str(body_file))
    for figure in web.per_request_figures(comparison, sql):
        report.add(figure)
    report.summary = (
        f"The push API accepted **{per_second(got.rate)}** leads with p99 "
        f"{milliseconds(got.result.latency_ms['p99'])}; the bare view answered {per_second(base.rate)} under the "
        f"same server: a ratio of **{rate_ratio:.2f}** (goal ≥ {GOAL_RATIO})."
    )
    report.configure(common_configuration(ctx))
    report.configure(
        {
            "Load": f"wrk, 1 thread, {web.connections(ctx)} keep-alive connections "
            f"({web.CONNECTIONS_PER_THREAD} per server thread), "
            f"{mode.warmup_seconds} s warm-up then {mode.http_seconds} s measured, per server per round",
            "Rounds": f"{mode.rounds} (baseline and real alternate; the median round by rate is reported)",
            "Request": f"POST {PATH}, HTTP Basic API key, a {len(json.dumps(LEAD))}-byte lead with one activity",
            "Celery worker": "none: each accepted lead's task is published to Redis and waits there",
            "Check": f"{stored:,} leads in the database at the end; wrk counted {accepted:,} 201s in measured "
            "rounds (the rest are warm-ups)",
        }
    )
    report.section("Every round", web.rounds_table(comparison))
    report.section("Where the CPU went", web.cpu_table(comparison, "accepted lead"))
    report.section(
        "What one accepted lead asks of PostgreSQL", statements_markdown(sql["real"], what="one accepted lead", top=20)
    )
    title, what = "Why: profile of the push API under load", "the gunicorn workers while wrk pushed leads"
    web.profile_when_missed(ctx, report, real, path=PATH, args=args, title=title, what=what)
    real.stop()
    baseline.stop()
    return report
