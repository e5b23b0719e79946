"""Steady state: leads offered through the push API at a fixed 100 a second while the engine
delivers them to the stand-in (50 ms per answer); how long from accepted (`lead.created`) to
RG's 2xx (the stand-in's own clock when it answered the lead's create), p50 and p99.

The load is open-loop: a lead is posted at its scheduled moment whether or not earlier ones were
answered, so a slow portal shows as latency and a lower accepted rate, not as less load offered.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from collections import Counter
from dataclasses import dataclass

import aiohttp

from bench import load, web
from bench.drain import cpu_meter, cpu_section, epoch, failures_text, percentile, statements_read, statements_reset
from bench.ingest import LEAD, PATH
from bench.pipeline import IN_PROGRESS, engine_from_mode, pipeline_start, workers_start
from bench.report import Figure, Report, common_configuration, milliseconds, per_second, ratio, table
from bench.runner import Context, log

RATE = 100.0
LATENCY_MS = 50
GOAL_P99_MS = 1000.0
WINDOW = "from the end of the warm-up until every lead offered was delivered"
PORTAL_TREES = ["portal gunicorn (push API)", "Celery workers (pumps)", "celery beat", "PostgreSQL", "Redis"]


@dataclass(frozen=True)
class Offered:
    """One lead posted: its id, when it was posted and answered (wall clock), the status."""

    lead_id: str
    sent: float
    answered: float
    status: int


async def _offer(url: str, authorization: str, *, rate: float, count: int, connections: int) -> list[Offered]:
    headers = {"Authorization": authorization, "Content-Type": "application/json"}
    results: list[Offered] = []
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections), timeout=timeout) as session:

        async def post(lead_id: str) -> None:
            sent = time.time()
            try:
                data = json.dumps({**LEAD, "id": lead_id}).encode()
                async with session.post(url, data=data, headers=headers) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            results.append(Offered(lead_id, sent, time.time(), status))

        loop = asyncio.get_running_loop()
        start = loop.time()
        tasks = []
        for number in range(count):
            delay = start + number / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(post(str(uuid.uuid4()))))
        await asyncio.gather(*tasks)
    return results


def offer(url: str, authorization: str, *, rate: float, count: int, connections: int) -> list[Offered]:
    """Post `count` new leads to `url`, one every 1/`rate` s, each on its own schedule."""
    return asyncio.run(_offer(url, authorization, rate=rate, count=count, connections=connections))


def run(ctx: Context) -> Report:
    mode = ctx.mode
    report = Report("delivery-steady", "delivery engine: steady state (100 leads/s pushed, RG at 50 ms)", ctx)
    engine = engine_from_mode(ctx)
    pipeline = pipeline_start(ctx, "delivery-steady", latency_ms=LATENCY_MS, engine=engine, web=True)
    workers_start(ctx, pipeline)
    url = pipeline.portal.base_url + PATH
    connections = web.connections(ctx)

    log(f"delivery-steady: warming up, {RATE:g} leads/s for {mode.warmup_seconds} s")
    offer(url, ctx.basic_auth(), rate=RATE, count=round(RATE * mode.warmup_seconds), connections=connections)
    pipeline.standin.reset()
    statements_reset(ctx, pipeline.database)
    meter = cpu_meter(ctx, pipeline, web=True).start()
    log(f"delivery-steady: offering {RATE:g} leads/s for {mode.steady_seconds} s")
    offered = offer(url, ctx.basic_auth(), rate=RATE, count=round(RATE * mode.steady_seconds), connections=connections)
    try:
        load.wait_until(lambda: pipeline.count(ctx, IN_PROGRESS) == 0, timeout=120, what="every delivery attempted")
    except RuntimeError as error:
        log(f"delivery-steady: {error}; reporting what was delivered")
    cpu = meter.stop()
    statements = statements_read(ctx, pipeline.database)

    rg_answered: dict[str, float] = {}
    for answer in pipeline.standin.answers():
        if answer.lead_id is not None and answer.lead_id not in rg_answered:
            rg_answered[answer.lead_id] = answer.answered
    rows = pipeline.rows(
        ctx, "SELECT l.lead_id, l.created, d.delivered_at FROM leads_lead l JOIN leads_delivery d ON d.lead_id = l.id"
    )
    portal = {str(uuid.UUID(str(lead_id))): (epoch(created), delivered) for lead_id, created, delivered in rows}
    accepted = [o for o in offered if o.status == 201]
    # An accepted lead RG never answered counts as infinitely late, so it cannot hide from the p99.
    to_rg = [rg_answered[o.lead_id] - portal[o.lead_id][0] if o.lead_id in rg_answered else math.inf for o in accepted]
    recorded = [
        epoch(portal[o.lead_id][1]) - portal[o.lead_id][0] if portal[o.lead_id][1] is not None else math.inf
        for o in accepted
    ]
    push_ms = [1000 * (o.answered - o.sent) for o in offered]
    sent_seconds = max(o.sent for o in offered) - min(o.sent for o in offered)
    created = [portal[o.lead_id][0] for o in accepted]
    accepted_rate = len(created) / max(max(created) - min(created), 1e-3) if created else 0.0
    p50, p99 = 1000 * percentile(to_rg, 0.5), 1000 * percentile(to_rg, 0.99)

    report.add(
        Figure(
            "Accepted to RG's 2xx, p99",
            milliseconds(p99),
            f"RG's own answer {milliseconds(LATENCY_MS)}",
            ratio(p99, LATENCY_MS),
            f"≤ {GOAL_P99_MS:,.0f} ms",
            p99 <= GOAL_P99_MS,
        )
    )
    report.add(Figure("Accepted to RG's 2xx, p50", milliseconds(p50), milliseconds(LATENCY_MS), ratio(p50, LATENCY_MS)))
    report.add(
        Figure(
            "Accepted to delivered as the portal recorded it (delivered_at), p50 / p99",
            f"{1000 * percentile(recorded, 0.5):,.0f} / {1000 * percentile(recorded, 0.99):,.0f} ms",
        )
    )
    report.add(
        Figure(
            "Leads offered per second / accepted per second (from leads.created)",
            f"{per_second(len(offered) / max(sent_seconds, 1e-3))} / {per_second(accepted_rate)}",
            f"{per_second(RATE)} offered",
            ratio(accepted_rate, RATE),
        )
    )
    report.add(
        Figure(
            "Push API response, p50 / p99",
            f"{percentile(push_ms, 0.5):,.1f} / {percentile(push_ms, 0.99):,.1f} ms",
        )
    )
    delivered = sum(1 for value in to_rg if value != math.inf)
    portal_ms = sum(1000 * cpu.cores.get(name, 0.0) * cpu.seconds for name in PORTAL_TREES) / max(delivered, 1)
    report.add(Figure("Portal CPU per lead, accepted and delivered (all its processes)", milliseconds(portal_ms)))
    if statements is not None:
        report.add(
            Figure(
                "SQL statements per lead, accepted and delivered",
                f"{statements.total / max(delivered, 1):.2f}",
            )
        )
    report.summary = (
        f"{len(accepted):,} leads pushed at {RATE:g}/s for {mode.steady_seconds} s reached RG (the stand-in, 50 ms per "
        f"answer) **{milliseconds(p50)}** after they were accepted at the median and **{milliseconds(p99)}** at the "
        f"99th percentile (goal ≤ {GOAL_P99_MS:,.0f} ms). {len(accepted) - delivered:,} accepted leads had not "
        f"reached it when the benchmark stopped waiting; {len(offered) - len(accepted):,} pushes were not accepted."
    )
    if accepted_rate < 0.95 * RATE:
        report.summary += (
            f" **The push API accepted only {per_second(accepted_rate)} of the {RATE:g}/s offered** (its p99 "
            f"response {percentile(push_ms, 0.99):,.0f} ms): this run measured the portal over capacity, not a "
            "steady state."
        )
    report.configure(common_configuration(ctx))
    report.configure(
        {
            "Load": f"open loop: {RATE:g} new leads a second posted to the push API (POST {PATH}, HTTP Basic) by "
            f"asyncio + aiohttp in the benchmark's process, each at its scheduled moment, up to {connections} "
            f"connections; {mode.warmup_seconds} s warm-up, then {mode.steady_seconds} s measured",
            "Celery worker": f"{engine.describe()}; Redis broker; beat running",
            "RG stand-in": f"bench/standin.py, its own process, {LATENCY_MS} ms per answer",
            "Latency": "accepted = `leads_lead.created` (set by the web process); RG's 2xx = the moment the stand-in "
            "answered the lead's create (its first answer, if sent twice); both the machine's wall clock",
            "Check": f"{len(offered):,} posted, {len(accepted):,} accepted (201), {delivered:,} answered by the "
            "stand-in; statuses: "
            + ", ".join(f"{s}: {n}" for s, n in sorted(Counter(o.status for o in offered).items())),
        }
    )
    levels = (0.5, 0.9, 0.99, 0.999, 1.0)
    report.section(
        "Latency distribution",
        table(
            ["", *(f"p{level * 100:g}" if level < 1 else "max" for level in levels)],
            [
                ["accepted to RG's 2xx (ms)", *(f"{1000 * percentile(to_rg, level):,.0f}" for level in levels)],
                ["accepted to delivered_at (ms)", *(f"{1000 * percentile(recorded, level):,.0f}" for level in levels)],
                ["push API response (ms)", *(f"{percentile(push_ms, level):,.1f}" for level in levels)],
            ],
        ),
    )
    report.section("Where the CPU went", cpu_section(cpu, max(delivered, 1), portal=PORTAL_TREES, window=WINDOW))
    if statements is not None:
        report.section(
            "What accepting and delivering asked of PostgreSQL",
            statements.section(max(delivered, 1), window="reset after the warm-up, read when every lead was delivered"),
        )
    report.section(
        "Attempts that did not succeed",
        failures_text(
            pipeline.rows(
                ctx,
                "SELECT error, response_status, count(*) FROM leads_deliveryattempt WHERE outcome <> 'delivered' "
                "GROUP BY error, response_status ORDER BY 3 DESC",
            )
        ),
    )
    pipeline.portal.stop()
    pipeline.standin.stop()
    return report
