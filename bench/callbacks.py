"""Callbacks: signed Destination requests (`POST /webhooks/realgeeks/{partner}/`) stored and
acknowledged per second, against the same bare view as ingest under the same gunicorn.

Every request is a different callback, signed with the partner's secret as RG signs it, so each
one is verified, stored and queued (a replay would only be looked up). No worker runs: the task
published per callback waits in Redis; processing it is not part of acknowledging it.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

from bench import load, web
from bench.report import Figure, Report, common_configuration, milliseconds, per_second, ratio, statements_markdown
from bench.runner import REPO_DIR, SITE_UUID, Context, log
from grants import destination

GOAL_RATIO = 0.5
PROBE_CALLBACKS = 3_000


def signed_bodies(ctx: Context, env: dict[str, str], count: int, name: str) -> str:
    """A file of `count` different callbacks signed with the bench partner's secret; its path."""
    path = ctx.workdir / name
    command = [sys.executable, "-m", "bench.signed_bodies", "--partner", ctx.creds.partner_slug]
    command += ["--site", SITE_UUID, "--count", str(count), "--output", str(path)]
    subprocess.run(command, env=env, cwd=REPO_DIR, check=True, timeout=600)
    return str(path)


def one_callback_request(ctx: Context, path: str, signed: str) -> list[str]:
    """`Context.statements` arguments for one new callback: the signed file's last line, which no
    run reached."""
    signature, timestamp, action, body = Path(signed).read_text().splitlines()[-1].split("\t", 3)
    body_file = ctx.workdir / "callback.json"
    body_file.write_text(body)
    headers = {
        destination.SIGNATURE_HEADER: signature,
        destination.TIMESTAMP_HEADER: timestamp,
        destination.ACTION_HEADER: action,
    }
    args = ["--method", "POST", "--path", path, "--body-file", str(body_file), "--repeat", "1"]
    for name, value in headers.items():
        args += ["--header", f"{name}: {value}"]
    return args


def run(ctx: Context) -> Report:
    mode = ctx.mode
    report = Report("callbacks", "Destination callbacks (signed webhook)", ctx)
    database = ctx.database("bench_callbacks")
    path = f"/webhooks/realgeeks/{ctx.creds.partner_slug}/"

    log("callbacks: starting the portal and the baseline (bare view) under gunicorn")
    real = ctx.stack("callbacks-real", database)
    baseline = ctx.stack("callbacks-baseline", database, baseline=True)
    # Every request must be a callback never sent before, so the signed set must outlast every
    # run against the real view. Its rate, probed briefly on a first small set, sizes the set
    # (three times over: a brief cold probe runs slower than the measured rounds).
    log("callbacks: probing the webhook's rate to size the signed callbacks")
    probe = load.wrk(
        real.base_url + path,
        connections=web.connections(ctx),
        seconds=3,
        args=[f"signed={signed_bodies(ctx, real.env, PROBE_CALLBACKS, 'probe.tsv')}"],
    )
    seconds_loaded = mode.rounds * (mode.warmup_seconds + mode.http_seconds) + mode.profile_seconds + 5
    count = math.ceil(probe.rate(200) * seconds_loaded * 3) + PROBE_CALLBACKS
    log(f"callbacks: signing {count:,} different callbacks")
    signed = signed_bodies(ctx, real.env, count, "callbacks.tsv")
    # The probe's callbacks are stored; the runs skip as many lines of the new set as are stored.
    count -= PROBE_CALLBACKS

    def args() -> list[str]:
        # Start after the callbacks already stored, so no run replays an earlier run's.
        stored = ctx.sql(database, "SELECT count(*) FROM grants_webhookevent")[0][0]
        return [f"signed={signed}", f"skip={stored}"]

    comparison = web.compare(ctx, name="callbacks", baseline=baseline, real=real, path=path, args=args, real_status=200)
    base, got = comparison.baseline, comparison.real
    stored = ctx.sql(database, "SELECT count(*) FROM grants_webhookevent")[0][0]
    wraps = max(r.result.wraps for r in comparison.rounds["real"])

    rate_ratio = ratio(got.rate, base.rate)
    report.add(
        Figure(
            "Callbacks stored and acknowledged per second (200)",
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
    sql = web.statements(ctx, baseline, real, *one_callback_request(ctx, path, signed))
    for figure in web.per_request_figures(comparison, sql):
        report.add(figure)
    report.summary = (
        f"The Destination webhook verified, stored and acknowledged **{per_second(got.rate)}** signed callbacks "
        f"(p99 {milliseconds(got.result.latency_ms['p99'])}); the bare view answered {per_second(base.rate)} under "
        f"the same server: a ratio of **{rate_ratio:.2f}** (goal ≥ {GOAL_RATIO})."
    )
    report.configure(common_configuration(ctx))
    report.configure(
        {
            "Load": f"wrk, 1 thread, {web.connections(ctx)} keep-alive connections "
            f"({web.CONNECTIONS_PER_THREAD} per server thread), "
            f"{mode.warmup_seconds} s warm-up then {mode.http_seconds} s measured, per server per round",
            "Rounds": f"{mode.rounds} (baseline and real alternate; the median round by rate is reported)",
            "Requests": f"POST {path}: {count:,} different RG-shaped lead callbacks (created, updated, "
            "activity_added in turn), each signed with X-Lead-Router-Signature by the sandbox's own signer",
            "Celery worker": "none: each stored callback's processing task is published to Redis and waits there",
            "Check": f"{stored:,} callbacks stored at the end (warm-ups included); "
            + (
                "no callback was sent twice"
                if wraps == 0
                else f"the signed set ran out {wraps} time(s): replays were acknowledged, not stored"
            ),
        }
    )
    report.section("Every round", web.rounds_table(comparison))
    report.section("Where the CPU went", web.cpu_table(comparison, "stored callback"))
    report.section(
        "What one stored callback asks of PostgreSQL",
        statements_markdown(sql["real"], what="one new callback", top=20, warm=False),
    )
    title, what = "Why: profile of the webhook under load", "the gunicorn workers while wrk sent callbacks"
    web.profile_when_missed(ctx, report, real, path=path, args=args, title=title, what=what)
    real.stop()
    baseline.stop()
    return report
