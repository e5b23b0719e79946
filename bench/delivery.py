"""Delivery: leads delivered per second end to end (accepted by the push API until the sandbox,
standing in for RG and adding 50 ms to every answer, said 2xx), against the ideal bound
(in-flight deliveries / latency) and a sequential loop of RG's own `leadrouter` client.

The sandbox runs as its own gunicorn, so its injected latency holds its own threads, not the
portal's. Celery workers use the threads pool: a delivery mostly waits on the network, and a
thread is far cheaper than a forked process for that (prefork would need one process per
delivery in flight).
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Optional

import leadrouter

from bench import load, web
from bench.ingest import LEAD, PATH
from bench.report import (
    Figure,
    Report,
    common_configuration,
    milliseconds,
    per_second,
    ratio,
    statements_markdown,
    table,
)
from bench.runner import SITE_UUID, Context, log
from tests.integration.servers import PortalStack

LATENCY_MS = 50
# Thread counts are taken only while more deliveries wait than the workers have threads, so an
# idle thread then is a thread with work available to it.
CENSUS_MIN_WAITING = 100
GOAL_OF_BOUND = 0.8
GOAL_OF_SEQUENTIAL = 20.0


@dataclass
class Pipeline:
    """The portal (web and workers) and the sandbox as RG, on one database."""

    database: str
    portal: PortalStack
    sandbox: PortalStack

    def worker_pids(self) -> list[int]:
        return [process.pid for process in self.portal.workers()]


def pipeline_start(ctx: Context, name: str, *, latency_ms: int) -> Pipeline:
    """A new database, the sandbox's gunicorn (two processes, each with a thread per delivery in
    flight) with every answer delayed `latency_ms`, and the portal's gunicorn pointed at it.
    The workers start later (`workers_start`), so a backlog can be built first."""
    mode = ctx.mode
    database = ctx.database(f"bench_{name}")
    in_flight = mode.worker_processes * mode.worker_threads
    log(f"{name}: starting the sandbox (as RG) and the portal under gunicorn")
    sandbox = ctx.stack(
        f"{name}-sandbox",
        database,
        env={"SANDBOX_ENABLED": "1", "GUNICORN_WORKERS": "2", "GUNICORN_THREADS": str(in_flight)},
    )
    portal = ctx.stack(f"{name}-portal", database, env={"REALGEEKS_API_URL": f"{sandbox.base_url}/sandbox/rest"})
    sandbox.manage("sandbox_faults", "--reset", "--latency-ms", str(latency_ms), "--forever")
    return Pipeline(database, portal, sandbox)


def workers_start(ctx: Context, pipeline: Pipeline) -> None:
    log(f"starting {ctx.mode.worker_processes} Celery workers x {ctx.mode.worker_threads} threads")
    for _ in range(ctx.mode.worker_processes):
        pipeline.portal.start_worker(concurrency=ctx.mode.worker_threads, pool="threads", timeout=90)


def count(ctx: Context, database: str, query: str) -> int:
    return int(ctx.sql(database, query)[0][0])


def push(ctx: Context, pipeline: Pipeline, *, until_leads: int, timeout: float) -> load.WrkResult:
    """Push leads through the API with wrk until the database holds `until_leads` leads."""
    body = ctx.workdir / "lead.json"
    body.write_text(json.dumps(LEAD))
    background = load.WrkInBackground(
        pipeline.portal.base_url + PATH,
        connections=web.connections(ctx),
        seconds=timeout,
        args=[f"body={body}", f"auth={ctx.basic_auth()}"],
    )
    try:
        load.wait_until(
            lambda: not background.running()
            or count(ctx, pipeline.database, "SELECT count(*) FROM leads_lead") >= until_leads,
            timeout=timeout,
            what=f"{until_leads:,} leads accepted",
            interval=0.1,
        )
    finally:
        result = background.stop()
    return result


def wait_attempted(ctx: Context, pipeline: Pipeline, *, timeout: float, census: Optional[list[int]] = None) -> None:
    """Until no delivery waits for its first attempt or is in flight. A delivery whose attempt
    failed is left retrying: its retry is the sweeper's, a minute or more later, and the report
    lists it instead of waiting for it.

    With `census`, every couple of seconds while deliveries still wait, how many of the workers'
    pool threads are running one is appended to it (summed over the workers)."""
    query = "SELECT count(*) FROM leads_delivery WHERE status IN ('pending', 'claimed', 'waiting')"
    last_census = 0.0

    def done() -> bool:
        nonlocal last_census
        waiting = count(ctx, pipeline.database, query)
        if census is not None and waiting > CENSUS_MIN_WAITING and time.monotonic() - last_census > 2:
            last_census = time.monotonic()
            counts = [load.pool_threads(pid, task_marker="delivery_attempt") for pid in pipeline.worker_pids()]
            if all(c is not None for c in counts):
                census.append(sum(c[0] for c in counts if c is not None))
        return waiting == 0

    load.wait_until(done, timeout=timeout, what="every delivery attempted", interval=0.2)


@dataclass(frozen=True)
class Sequential:
    sent: int
    seconds: float
    errors: int

    @property
    def rate(self) -> float:
        return self.sent / self.seconds


def sequential_client(ctx: Context, sandbox: PortalStack, seconds: float) -> Sequential:
    """RG's own Python client, one create after the other, against the same sandbox."""
    client = leadrouter.Client(f"{sandbox.base_url}/sandbox", ctx.creds.rg_username, ctx.creds.rg_password)
    sent = errors = 0
    started = time.monotonic()
    deadline = started + seconds
    while time.monotonic() < deadline:
        try:
            client.create_lead(SITE_UUID, {**LEAD, "id": str(uuid.uuid4())})
            sent += 1
        except leadrouter.HTTPError:
            errors += 1
    return Sequential(sent=sent, seconds=time.monotonic() - started, errors=errors)


def timeline(ctx: Context, database: str, *, since: datetime, start: str) -> dict[str, Any]:
    """When the leads accepted after `since` were accepted, first attempted and delivered, from
    the rows the pipeline wrote. `start` is "accepted" (end to end) or "attempted" (a backlog)."""
    row = ctx.sql(
        database,
        """
        SELECT count(*), count(*) FILTER (WHERE d.status = 'delivered'),
               min(l.created), max(l.created), min(a.started), max(d.delivered_at),
               percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM d.delivered_at - l.created)),
               percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM d.delivered_at - l.created)),
               percentile_disc(0.1) WITHIN GROUP (ORDER BY d.delivered_at),
               percentile_disc(0.9) WITHIN GROUP (ORDER BY d.delivered_at),
               sum(d.attempt_count),
               percentile_cont(0.5) WITHIN GROUP (ORDER BY a.duration_ms),
               percentile_cont(0.99) WITHIN GROUP (ORDER BY a.duration_ms),
               percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM d.delivered_at - a.started)),
               percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM a.started - l.created))
        FROM leads_lead l
        JOIN leads_delivery d ON d.lead_id = l.id
        LEFT JOIN leads_deliveryattempt a ON a.delivery_id = d.id AND a.number = 1
        WHERE l.created >= %s
        """,
        (since,),
    )[0]
    keys = (
        *("leads", "delivered", "first_accepted", "last_accepted", "first_attempted", "last_delivered"),
        *("p50", "p99", "t10", "t90", "attempts"),
        *("call_p50", "call_p99", "attempt_p50", "queued_p50"),
    )
    t: dict[str, Any] = dict(zip(keys, row, strict=True))
    began = t["first_accepted"] if start == "accepted" else t["first_attempted"]
    t["seconds"] = max((t["last_delivered"] - began).total_seconds(), 1e-3)
    t["rate"] = t["delivered"] / t["seconds"]
    t["accept_seconds"] = (t["last_accepted"] - t["first_accepted"]).total_seconds()
    t["middle_rate"] = 0.8 * t["delivered"] / max((t["t90"] - t["t10"]).total_seconds(), 1e-3)
    t["failures"] = ctx.sql(
        database,
        """
        SELECT a.error, a.response_status, count(*) FROM leads_deliveryattempt a
        JOIN leads_delivery d ON d.id = a.delivery_id JOIN leads_lead l ON l.id = d.lead_id
        WHERE l.created >= %s AND a.outcome <> 'delivered' GROUP BY 1, 2 ORDER BY 3 DESC
        """,
        (since,),
    )
    return t


def phase_meter(ctx: Context, pipeline: Pipeline) -> load.CpuMeter:
    assert ctx.postgres is not None and ctx.postgres.process is not None
    assert ctx.redis is not None and ctx.redis.process is not None
    return load.CpuMeter(
        {
            "portal gunicorn (push API)": [pipeline.portal.processes["web"].pid],
            "Celery workers": pipeline.worker_pids(),
            "sandbox gunicorn (RG)": [pipeline.sandbox.processes["web"].pid],
            "PostgreSQL": [ctx.postgres.process.pid],
            "Redis": [ctx.redis.process.pid],
        }
    )


def database_now(ctx: Context, database: str) -> datetime:
    return ctx.sql(database, "SELECT now()")[0][0]


def run(ctx: Context) -> Report:
    mode = ctx.mode
    report = Report("delivery", "delivery end to end (accept to RG 2xx)", ctx)
    pipeline = pipeline_start(ctx, "delivery", latency_ms=LATENCY_MS)
    in_flight = mode.worker_processes * mode.worker_threads
    bound = in_flight / (LATENCY_MS / 1000)
    n = mode.delivery_leads

    log(f"delivery: RG's leadrouter client, sequentially, for {mode.sequential_seconds} s")
    sequential = sequential_client(ctx, pipeline.sandbox, mode.sequential_seconds)

    # A backlog first: what the workers alone sustain, with the push API idle.
    log(f"delivery: accepting {n:,} leads with no worker running (a backlog)")
    since = database_now(ctx, pipeline.database)
    push(ctx, pipeline, until_leads=n, timeout=max(120.0, n / 10))
    workers_start(ctx, pipeline)
    meter = phase_meter(ctx, pipeline).start()
    log("delivery: workers draining the backlog")
    busy_threads: list[int] = []
    wait_attempted(ctx, pipeline, timeout=max(180.0, n / 5), census=busy_threads)
    backlog_cpu = meter.stop()
    backlog = timeline(ctx, pipeline.database, since=since, start="attempted")

    # Then end to end: leads pushed while the workers deliver them.
    log(f"delivery: pushing {n:,} more leads while the workers deliver")
    since = database_now(ctx, pipeline.database)
    meter = phase_meter(ctx, pipeline).start()
    pushed = push(ctx, pipeline, until_leads=2 * n, timeout=max(120.0, n / 10))
    wait_attempted(ctx, pipeline, timeout=max(180.0, n / 5), census=busy_threads)
    e2e_cpu = meter.stop()
    e2e = timeline(ctx, pipeline.database, since=since, start="accepted")

    rate = e2e["rate"]
    report.add(
        Figure(
            "Leads delivered per second, end to end",
            per_second(rate),
            f"ideal bound {per_second(bound)}",
            ratio(rate, bound),
            f"≥ {GOAL_OF_BOUND} of the bound",
            ratio(rate, bound) >= GOAL_OF_BOUND,
        )
    )
    report.add(
        Figure(
            "Leads delivered per second, end to end",
            per_second(rate),
            f"sequential leadrouter {per_second(sequential.rate)}",
            ratio(rate, sequential.rate),
            f"≥ {GOAL_OF_SEQUENTIAL:.0f} x the sequential client",
            ratio(rate, sequential.rate) >= GOAL_OF_SEQUENTIAL,
        )
    )
    report.add(
        Figure(
            "Leads delivered per second, draining a backlog (workers alone)",
            per_second(backlog["rate"]),
            f"ideal bound {per_second(bound)}",
            ratio(backlog["rate"], bound),
        )
    )
    report.add(
        Figure(
            "Leads accepted per second while the workers delivered",
            per_second(e2e["leads"] / max(e2e["accept_seconds"], 1e-3)),
        )
    )
    report.add(
        Figure(
            "RG call (the sandbox, 50 ms added), p50 / p99",
            f"{e2e['call_p50']:.0f} / {e2e['call_p99']:.0f} ms",
            milliseconds(LATENCY_MS),
            ratio(e2e["call_p50"], LATENCY_MS),
        )
    )
    report.add(
        Figure(
            "Attempt row written to outcome recorded, p50",
            milliseconds(1000 * e2e["attempt_p50"]),
            milliseconds(LATENCY_MS),
            ratio(1000 * e2e["attempt_p50"], LATENCY_MS),
        )
    )
    report.add(
        Figure("Accepted to first attempt (queued, claimed, checked), p50", milliseconds(1000 * e2e["queued_p50"]))
    )
    report.add(
        Figure(
            "Accepted to delivered, p50 (end to end)",
            milliseconds(1000 * e2e["p50"]),
            milliseconds(LATENCY_MS),
            ratio(1000 * e2e["p50"], LATENCY_MS),
        )
    )
    report.add(
        Figure(
            "Accepted to delivered, p99 (end to end)",
            milliseconds(1000 * e2e["p99"]),
            milliseconds(LATENCY_MS),
            ratio(1000 * e2e["p99"], LATENCY_MS),
        )
    )
    report.summary = (
        f"End to end, {e2e['delivered']:,} leads went from the push API to a 2xx from the sandbox (50 ms per answer) "
        f"in {e2e['seconds']:.1f} s: **{per_second(rate)}**, {ratio(rate, bound):.2f} of the ideal bound "
        f"({in_flight} in flight / 50 ms = {per_second(bound)}) and **{ratio(rate, sequential.rate):.1f} x** RG's "
        f"leadrouter client sending one lead after another ({per_second(sequential.rate)}). Draining a backlog "
        f"with the push API idle, the workers alone delivered {per_second(backlog['rate'])} "
        f"({ratio(backlog['rate'], bound):.2f} of the bound)."
    )
    report.configure(common_configuration(ctx))
    report.configure(
        {
            "RG stand-in": f"the sandbox as its own gunicorn (2 workers x {in_flight} threads), same PostgreSQL, "
            f"{LATENCY_MS} ms added to every answer (`manage.py sandbox_faults --latency-ms {LATENCY_MS}`)",
            "Celery workers": f"{mode.worker_processes} processes x {mode.worker_threads} threads (`--pool threads`), "
            f"Redis broker, prefetch multiplier 1, acks late: at most {in_flight} deliveries in flight; no beat",
            "Ideal bound": f"{in_flight} in flight / {LATENCY_MS} ms = {per_second(bound)}",
            "Sequential baseline": f"leadrouter {leadrouter_version()} `Client.create_lead` in a loop for "
            f"{mode.sequential_seconds} s: {sequential.sent:,} leads, {sequential.errors} errors",
            "Backlog phase": f"{n:,} leads accepted with no worker running, then 2 workers started; measured from "
            "the first attempt to the last 2xx",
            "End-to-end phase": f"wrk pushing leads ({web.connections(ctx)} connections) until {n:,} more were "
            "accepted, workers running; measured from the first lead accepted (leads.created) to the last 2xx "
            f"(deliveries.delivered_at). wrk: {pushed.describe()}",
            "Check": f"end to end {e2e['leads']:,} leads, {e2e['delivered']:,} delivered on their first attempt; "
            f"backlog {backlog['leads']:,} leads, {backlog['delivered']:,} delivered",
        }
    )
    report.section("Why the rate is what it is", why_text(e2e_cpu, e2e, backlog, bound, sequential.rate, busy_threads))
    report.section("Attempts that did not succeed", failures_text(backlog["failures"] + e2e["failures"]))
    report.section("Where the CPU went, end to end", cpu_section(e2e_cpu, e2e["delivered"]))
    report.section("Where the CPU went, draining the backlog", cpu_section(backlog_cpu, backlog["delivered"]))
    if report.missed or mode.name == "full":
        report.section("Why: profile of a Celery worker delivering", profile_workers(ctx, pipeline))
    report.section("What one delivery attempt asks of PostgreSQL", one_attempt_statements(ctx, pipeline))
    pipeline.portal.stop()
    pipeline.sandbox.stop()
    return report


def why_text(
    cpu: load.CpuUse,
    e2e: dict[str, Any],
    backlog: dict[str, Any],
    bound: float,
    sequential: float,
    busy_threads: list[int],
) -> str:
    """The goals in cores, and where the worker threads' time went."""
    delivered = max(e2e["delivered"], 1)
    per_lead = 1000 * sum(cpu.cores.values()) * cpu.seconds / delivered
    portal_only = per_lead - 1000 * cpu.cores.get("sandbox gunicorn (RG)", 0.0) * cpu.seconds / delivered
    target = GOAL_OF_SEQUENTIAL * sequential
    threads = round(bound * LATENCY_MS / 1000)
    text = (
        f"The ideal bound counts only waiting: {bound:,.0f}/s if the {threads} deliveries in flight did nothing but "
        f"wait 50 ms on RG. Each lead also costs CPU: {per_lead:.1f} ms from push to 2xx on this machine, "
        f"{portal_only:.1f} ms of it the portal's own (web, workers, PostgreSQL, Redis) and the rest the sandbox "
        f"answering as RG. At that cost {bound:,.0f}/s needs about {bound * portal_only / 1000:.0f} cores for the "
        f"portal alone, and 20 x the sequential client ({target:,.0f}/s) about {target * portal_only / 1000:.0f}; "
        f"this machine has {cpu.machine_cores:.0f}, shared with the sandbox and the load generator.\n\n"
        f"A call the sandbox delays by 50 ms took {e2e['call_p50']:.0f} ms at the median ({e2e['call_p99']:.0f} ms "
        f"p99): the rest of it was spent waiting for a core or a GIL, in the sandbox or the worker. By Little's law "
        f"only {e2e['rate'] * LATENCY_MS / 1000:.1f} threads at a time were in the sandbox's 50 ms wait."
    )
    if busy_threads:
        mean = sum(busy_threads) / len(busy_threads)
        idle_samples = sum(1 for busy in busy_threads if busy == 0)
        text += (
            f"\n\n**The worker threads were mostly idle while deliveries waited.** {len(busy_threads)} py-spy "
            f"snapshots of the workers, taken while more than {CENSUS_MIN_WAITING} deliveries were still waiting, "
            f"found on average {mean:.1f} of the {threads} pool threads running a delivery (in {idle_samples} "
            "snapshots none at all): the rest sat in the pool waiting for a task that was already queued in Redis. "
            "With `--pool threads`, acks late and a prefetch multiplier of 1, each worker takes new messages only in "
            "bursts, so the threads are not the limit and adding more would not help; how Celery feeds them is. "
            "Worth trying, measured the same way: a higher `worker_prefetch_multiplier` for the delivery workers, "
            "or more worker processes with fewer threads each."
        )
    return text + (
        f"\n\nWith the push API idle the workers drained a backlog at {backlog['rate']:.1f}/s, barely faster than "
        "end to end."
    )


def failures_text(failures: list[tuple[Any, ...]]) -> str:
    if not failures:
        return "None: every delivery succeeded on its first attempt."
    rows = [[error or "-", status or "-", n] for error, status, n in failures]
    return (
        "These deliveries were left retrying (their retry is the sweeper's, a minute later; beat was not running) and "
        "are not counted as delivered above.\n\n" + table(["Error", "HTTP status", "Attempts"], rows)
    )


def cpu_section(cpu: load.CpuUse, delivered: int) -> str:
    def per_lead(cores: float) -> float:
        return 1000 * cores * cpu.seconds / delivered if delivered else 0.0

    rows = [
        [name, f"{cores:.2f} ({cpu.kernel[name]:.2f})", f"{per_lead(cores):.2f}"] for name, cores in cpu.cores.items()
    ]
    rows.append(["everything else (wrk, other work on the machine)", f"{cpu.others:.2f}", ""])
    rows.append(["the whole machine", f"{cpu.machine_busy:.2f}", ""])
    return (
        f"Over {cpu.seconds:.1f} s. Cores used, out of {cpu.machine_cores:.0f}; CPU ms per lead covers accepting it "
        "(when the push API ran), delivering it and the sandbox answering it.\n\n"
        + table(["Process tree", "Cores (in the kernel)", "CPU ms per lead"], rows)
        + "\n\n"
        + load.cpu_bound(
            cpu,
            sum(per_lead(cores) for cores in cpu.cores.values()),
            "delivered lead",
            who="the portal's processes and the sandbox standing in for RG",
        )
    )


def profile_workers(ctx: Context, pipeline: Pipeline) -> str:
    """py-spy on one worker process while another batch of leads goes through."""
    leads = count(ctx, pipeline.database, "SELECT count(*) FROM leads_lead")
    worker = pipeline.portal.workers()[0]
    body = ctx.workdir / "lead.json"
    background = load.WrkInBackground(
        pipeline.portal.base_url + PATH,
        connections=web.connections(ctx),
        seconds=ctx.mode.profile_seconds + 5,
        args=[f"body={body}", f"auth={ctx.basic_auth()}"],
    )
    log(f"delivery: profiling a worker for {ctx.mode.profile_seconds} s")
    try:
        time.sleep(1)  # let deliveries queue up first
        profile = load.profile(worker.pid, seconds=ctx.mode.profile_seconds, output=ctx.workdir / "worker-profile.txt")
    finally:
        background.stop()
    wait_attempted(ctx, pipeline, timeout=300)
    extra = count(ctx, pipeline.database, "SELECT count(*) FROM leads_lead") - leads
    return profile.markdown(what=f"one of the Celery worker processes while {extra:,} more leads went through")


def one_attempt_statements(ctx: Context, pipeline: Pipeline) -> str:
    """The SQL of one delivery attempt, run in-process on a lead accepted with the workers stopped."""
    for worker in pipeline.portal.workers():
        worker.stop()
    body = json.dumps({**LEAD, "id": str(uuid.uuid4())}).encode()
    request = urllib.request.Request(
        pipeline.portal.base_url + PATH,
        data=body,
        headers={"Authorization": ctx.basic_auth(), "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201
    delivery_id = count(ctx, pipeline.database, "SELECT max(id) FROM leads_delivery")
    result = ctx.statements(pipeline.portal, "--delivery-id", str(delivery_id))
    return statements_markdown(
        result, what="one delivery attempt (claim, checks, attempt row, RG call, outcome)", top=25, warm=False
    )


def leadrouter_version() -> str:
    from importlib.metadata import version

    return version("leadrouter")
