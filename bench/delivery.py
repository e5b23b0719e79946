"""Delivery: the engine draining a backlog, against the cheap RG stand-in (bench/standin.py).

- `delivery`: a backlog on PostgreSQL + Redis, the stand-in answering in 50 ms; against RG's
  own `leadrouter` client sending one lead after another to the same stand-in, and against the
  in-flight bound (pumps x DELIVERY_IN_FLIGHT / latency). Also the portal's CPU and SQL
  statements per delivered lead.
- `delivery-slow`: the same with the stand-in answering in 1 s and 256 calls in flight.
- `delivery-embedded`: the same drain on `make run`'s SQLite and filesystem broker.

Each accepts its backlog with no worker running (bench/backlog.py: the push API's own service,
`lead_submit`, without HTTP), then starts the Celery worker (prefork, one pump per process) and
beat as the Procfile does, and times the drain from the first call reaching the stand-in to the
last delivery recorded in the database. The steady state (leads pushed at a fixed rate) is
bench/steady.py's.
"""

from __future__ import annotations

from bench.drain import Drain, cpu_section, drain_measure, drain_timeout, failures_text, profile_drain
from bench.pipeline import (
    Backlog,
    Engine,
    Pipeline,
    backlog_build,
    embedded_pipeline_start,
    engine_from_mode,
    pipeline_start,
    sequential_client,
)
from bench.report import Figure, Report, common_configuration, milliseconds, per_second, ratio
from bench.runner import Context, log
from tests.integration.servers import procfile_commands

LATENCY_MS = 50
SLOW_LATENCY_MS = 1000
SLOW_IN_FLIGHT = 256
GOAL_OF_SEQUENTIAL = 50.0
GOAL_EMBEDDED_OF_SEQUENTIAL = 10.0
GOAL_OF_BOUND = 0.8
GOAL_WORKER_CPU_MS = 1.5
GOAL_STATEMENTS = 2.0
WORKERS = "Celery workers (pumps)"
# What counts as the portal's CPU for a drain (the stand-in is RG's, "everything else" the machine's).
PORTAL_TREES = [WORKERS, "celery beat", "PostgreSQL", "Redis"]
ISSUE_LEADS = 20_000  # the backlog issue 9 names
BACKLOG_PROCESSES = 2  # parallel `bench.backlog` processes on PostgreSQL (SQLite has one writer)


def run(ctx: Context) -> Report:
    """Backlog drain on PostgreSQL + Redis, RG at 50 ms."""
    mode = ctx.mode
    report = Report("delivery", "delivery engine: draining a backlog (PostgreSQL + Redis, RG at 50 ms)", ctx)
    engine = engine_from_mode(ctx)
    bound = engine.bound(LATENCY_MS)
    pipeline = pipeline_start(ctx, "delivery", latency_ms=LATENCY_MS, engine=engine)
    log(f"delivery: RG's leadrouter client, sequentially, for {mode.sequential_seconds} s")
    sequential = sequential_client(pipeline.standin, mode.sequential_seconds)
    backlog = backlog_build(ctx, pipeline, leads=mode.drain_leads, processes=BACKLOG_PROCESSES)
    drain = drain_measure(ctx, pipeline, leads=backlog.leads, timeout=drain_timeout(backlog.leads, bound))

    report.add(
        Figure(
            "Backlog drained: leads delivered per second",
            per_second(drain.rate),
            f"sequential leadrouter {per_second(sequential.rate)}",
            ratio(drain.rate, sequential.rate),
            f"≥ {GOAL_OF_SEQUENTIAL:.0f} x the sequential client",
            ratio(drain.rate, sequential.rate) >= GOAL_OF_SEQUENTIAL,
        )
    )
    report.add(of_bound_figure(drain.rate, bound))
    worker_ms = drain.cpu_ms(WORKERS)
    report.add(
        Figure(
            "Portal CPU per delivered lead: the Celery workers",
            milliseconds(worker_ms) if drain.delivered else "nothing delivered",
            goal=f"≤ {GOAL_WORKER_CPU_MS} ms",
            passed=bool(drain.delivered) and worker_ms <= GOAL_WORKER_CPU_MS,
        )
    )
    statements_figure(report, drain)
    common_figures(report, drain, engine=engine, bound=bound, latency_ms=LATENCY_MS)

    report.summary = (
        f"{drain.delivered:,} of {backlog.leads:,} accepted leads were delivered to the stand-in (50 ms per answer) "
        f"in {drain.seconds:.1f} s: **{per_second(drain.rate)}**, **{ratio(drain.rate, sequential.rate):.1f} x** "
        f"RG's leadrouter client sending one lead after another ({per_second(sequential.rate)}; goal ≥ "
        f"{GOAL_OF_SEQUENTIAL:.0f} x) and **{ratio(drain.rate, bound):.2f}** of the in-flight bound ({engine.total} / "
        f"{LATENCY_MS} ms = {per_second(bound)}; goal ≥ {GOAL_OF_BOUND}). The workers spent "
        f"**{worker_ms:.2f} ms of CPU per delivered lead** (goal ≤ {GOAL_WORKER_CPU_MS})"
        + (
            f" and the portal sent **{drain.statements.total / max(drain.delivered, 1):.2f} SQL statements per "
            f"delivery** (goal ≤ {GOAL_STATEMENTS:.0f})."
            if drain.statements
            else "."
        )
        + timed_out_note(drain)
        + smaller_note(backlog.leads)
    )
    report.configure(common_configuration(ctx))
    report.configure(drain_configuration(pipeline, engine, backlog, drain, latency_ms=LATENCY_MS))
    report.configure({"Sequential baseline": sequential.describe()})
    drain_sections(ctx, report, pipeline, drain, bound=bound, latency_ms=LATENCY_MS)
    pipeline.portal.stop()
    pipeline.standin.stop()
    return report


def run_slow(ctx: Context) -> Report:
    """Backlog drain with RG answering in 1 s: throughput must come from the slots in flight."""
    report = Report("delivery-slow", "delivery engine: slow RG (1 s per answer, 256 in flight)", ctx)
    engine = engine_from_mode(ctx, total=SLOW_IN_FLIGHT)
    bound = engine.bound(SLOW_LATENCY_MS)
    pipeline = pipeline_start(ctx, "delivery-slow", latency_ms=SLOW_LATENCY_MS, engine=engine)
    backlog = backlog_build(ctx, pipeline, leads=ctx.mode.slow_leads, processes=BACKLOG_PROCESSES)
    drain = drain_measure(ctx, pipeline, leads=backlog.leads, timeout=drain_timeout(backlog.leads, bound))

    report.add(of_bound_figure(drain.rate, bound))
    report.add(Figure("Portal CPU per delivered lead: the Celery workers", milliseconds(drain.cpu_ms(WORKERS))))
    statements_figure(report, drain, goal=False)
    common_figures(report, drain, engine=engine, bound=bound, latency_ms=SLOW_LATENCY_MS)
    report.summary = (
        f"With RG answering in 1 s, {drain.delivered:,} of {backlog.leads:,} leads were delivered in "
        f"{drain.seconds:.1f} s: **{per_second(drain.rate)}**, **{ratio(drain.rate, bound):.2f}** of the bound "
        f"({engine.total} in flight / 1 s = {per_second(bound)}; goal ≥ {GOAL_OF_BOUND}). The stand-in held "
        f"{drain.mean_in_flight:.0f} calls in flight on average (peak {drain.peak_in_flight})." + timed_out_note(drain)
    )
    report.configure(common_configuration(ctx))
    report.configure(drain_configuration(pipeline, engine, backlog, drain, latency_ms=SLOW_LATENCY_MS))
    drain_sections(ctx, report, pipeline, drain, bound=bound, latency_ms=SLOW_LATENCY_MS)
    pipeline.portal.stop()
    pipeline.standin.stop()
    return report


def run_embedded(ctx: Context) -> Report:
    """The same drain on the embedded default: SQLite and kombu's filesystem broker."""
    mode = ctx.mode
    report = Report("delivery-embedded", "delivery engine: the embedded default (SQLite, filesystem broker)", ctx)
    pipeline = embedded_pipeline_start(ctx, "delivery-embedded", latency_ms=LATENCY_MS)
    settings = pipeline.settings()
    log(f"delivery-embedded: RG's leadrouter client, sequentially, for {mode.sequential_seconds} s")
    sequential = sequential_client(pipeline.standin, mode.sequential_seconds)
    backlog = backlog_build(ctx, pipeline, leads=mode.embedded_leads, processes=1)
    goal_rate = GOAL_EMBEDDED_OF_SEQUENTIAL * sequential.rate
    drain = drain_measure(ctx, pipeline, leads=backlog.leads, timeout=drain_timeout(backlog.leads, goal_rate))
    alive = all(process.alive() for process in pipeline.workers) and "beat" in pipeline.portal.processes
    alive = alive and pipeline.portal.processes["beat"].alive()

    report.add(
        Figure(
            "Backlog drained: leads delivered per second",
            per_second(drain.rate),
            f"sequential leadrouter {per_second(sequential.rate)}",
            ratio(drain.rate, sequential.rate),
            f"≥ {GOAL_EMBEDDED_OF_SEQUENTIAL:.0f} x the sequential client",
            ratio(drain.rate, sequential.rate) >= GOAL_EMBEDDED_OF_SEQUENTIAL,
        )
    )
    report.add(Figure("Portal CPU per delivered lead: the Celery workers", milliseconds(drain.cpu_ms(WORKERS))))
    common_figures(report, drain, engine=None, bound=None, latency_ms=LATENCY_MS)
    report.add(Figure("Worker and beat still running at the end", "yes" if alive else "**no**"))
    report.summary = (
        f"On `make run`'s embedded default (SQLite, kombu's filesystem broker, the Procfile's worker line and the "
        f"settings' defaults), {drain.delivered:,} of {backlog.leads:,} accepted leads were delivered to the stand-in "
        f"(50 ms per answer) in {drain.seconds:.1f} s: **{per_second(drain.rate)}**, "
        f"**{ratio(drain.rate, sequential.rate):.1f} x** RG's leadrouter client ({per_second(sequential.rate)}; goal "
        f"≥ {GOAL_EMBEDDED_OF_SEQUENTIAL:.0f} x)." + timed_out_note(drain)
    )
    report.summary += smaller_note(backlog.leads)
    report.configure(
        {
            "Mode": mode.name,
            "Portal": "PORTAL_ENV=development as `make run` has it: no DATABASE_URL (SQLite in a fresh var dir: "
            f"`{pipeline.sqlite_path}`, WAL), no CELERY_BROKER_URL (kombu's filesystem broker in its var/broker/), "
            "no DELIVERY_* or CELERY_CONCURRENCY set",
            "Celery worker": "the Procfile's worker line as is, which `make run` starts "
            f"(`{procfile_commands()['worker']}`), and beat",
            "Engine settings as Django read them": ", ".join(f"{k}={v}" for k, v in settings.items()),
            "RG stand-in": f"bench/standin.py, its own process, {LATENCY_MS} ms per answer",
            "Backlog": backlog.describe(),
            "Drain": drain_window(drain),
            "Sequential baseline": sequential.describe(),
        }
    )
    report.section("Where the CPU went", cpu_section(drain.cpu, drain.delivered, portal=[WORKERS, "celery beat"]))
    report.section("Attempts that did not succeed", failures_text(drain.failures))
    if report.missed or mode.name == "full":
        profile = profile_drain(ctx, pipeline, rate=drain.rate, most=backlog.leads // 2)
        report.section("Why: profile of the workers", profile)
    pipeline.portal.stop()
    pipeline.standin.stop()
    return report


# ----------------------------------------------------------------------------- shared parts of the reports


def statements_figure(report: Report, drain: Drain, *, goal: bool = True) -> None:
    if drain.statements is None:
        report.add(Figure("SQL statements per delivery (amortised)", "not measured: pg_stat_statements is missing"))
        return
    per_delivery = drain.statements.total / drain.delivered if drain.delivered else float("inf")
    report.add(
        Figure(
            "SQL statements per delivery (amortised), sent by the portal",
            f"{per_delivery:.2f}",
            goal=f"≤ {GOAL_STATEMENTS:.0f}" if goal else "-",
            passed=per_delivery <= GOAL_STATEMENTS if goal else None,
        )
    )


def common_figures(
    report: Report, drain: Drain, *, engine: Engine | None, bound: float | None, latency_ms: float
) -> None:
    """The figures that explain a drain's rate: the middle of the drain, calls in flight, CPU."""
    if bound:
        report.add(
            Figure(
                "Delivered per second, middle 80% of the drain (no ramp-up or tail)",
                per_second(drain.middle_rate),
                f"in-flight bound {per_second(bound)}",
                ratio(drain.middle_rate, bound),
            )
        )
    else:
        report.add(Figure("Delivered per second, middle 80% of the drain", per_second(drain.middle_rate)))
    report.add(
        Figure(
            "Calls in flight at the stand-in: mean (peak)",
            f"{drain.mean_in_flight:.1f} ({drain.peak_in_flight})",
            f"{engine.total} configured" if engine else "-",
            ratio(drain.mean_in_flight, engine.total) if engine else None,
        )
    )
    report.add(
        Figure(
            "RG call as the portal timed it (attempt duration), p50 / p99",
            f"{drain.call_ms[0]:.0f} / {drain.call_ms[1]:.0f} ms",
            milliseconds(latency_ms),
            ratio(drain.call_ms[0], latency_ms),
        )
    )
    if "PostgreSQL" in drain.cpu.cores:
        report.add(Figure("Portal CPU per delivered lead: PostgreSQL", milliseconds(drain.cpu_ms("PostgreSQL"))))


def timed_out_note(drain: Drain) -> str:
    if not drain.timed_out:
        return ""
    return (
        f" **The drain had not finished when the benchmark stopped waiting** ({drain.statuses}): the rate is what was "
        "delivered by then."
    )


def smaller_note(leads: int) -> str:
    if leads >= ISSUE_LEADS:
        return ""
    return (
        f" This run drained {leads:,} leads, not the issue's {ISSUE_LEADS:,}, to keep quick mode quick; "
        f"`--mode full` drains {ISSUE_LEADS:,}."
    )


def drain_window(drain: Drain) -> str:
    return (
        f"measured from the first call reaching the stand-in to the last `delivered_at` recorded: {drain.seconds:.1f} "
        f"s. The stand-in answered {drain.calls:,} calls for {drain.distinct_calls:,} distinct leads "
        f"({drain.calls - drain.distinct_calls:,} sent more than once); deliveries by status at the end: "
        + ", ".join(f"{status} {n:,}" for status, n in sorted(drain.statuses.items()))
    )


def drain_configuration(
    pipeline: Pipeline, engine: Engine, backlog: Backlog, drain: Drain, *, latency_ms: float
) -> dict[str, str]:
    settings = pipeline.settings()
    return {
        "RG stand-in": f"bench/standin.py, its own process (one asyncio event loop), {latency_ms:g} ms per answer",
        "Celery worker": f"{engine.describe()}; the Procfile's worker line with `--pool prefork --concurrency "
        f"{engine.pumps}`, Redis broker, and beat (its sweeper) as the Procfile runs it; WORKER_HEARTBEAT_SECONDS=30",
        "Engine settings as Django read them": ", ".join(f"{k}={v}" for k, v in settings.items()),
        "In-flight bound": f"{engine.total} in flight / {latency_ms:g} ms = {per_second(engine.bound(latency_ms))}",
        "Backlog": backlog.describe(),
        "Drain": drain_window(drain),
    }


def drain_sections(
    ctx: Context, report: Report, pipeline: Pipeline, drain: Drain, *, bound: float, latency_ms: float
) -> None:
    report.section("Why the rate is what it is", why_text(drain, pipeline, bound=bound, latency_ms=latency_ms))
    report.section("Where the CPU went", cpu_section(drain.cpu, drain.delivered, portal=PORTAL_TREES))
    if drain.statements is not None:
        report.section(
            "What the drain asked of PostgreSQL",
            drain.statements.section(drain.delivered, window="reset as the worker started and read as the drain ended"),
        )
    report.section("Attempts that did not succeed", failures_text(drain.failures))
    if report.missed or ctx.mode.name == "full":
        profile = profile_drain(ctx, pipeline, rate=drain.rate, most=drain.leads // 2)
        report.section("Why: profile of the workers", profile)


def why_text(drain: Drain, pipeline: Pipeline, *, bound: float, latency_ms: float) -> str:
    """The rate explained by Little's law, the CPU the pumps had and the machine's cores."""
    assert pipeline.engine is not None
    engine = pipeline.engine
    cpu = drain.cpu
    workers_cores = cpu.cores.get(WORKERS, 0.0)
    little = drain.mean_in_flight / (latency_ms / 1000)
    portal_ms = sum(drain.cpu_ms(name) for name in PORTAL_TREES)
    text = (
        f"The bound counts only waiting: {per_second(bound)} if all {engine.total} slots always held a call and the "
        f"portal cost nothing. The stand-in held on average **{drain.mean_in_flight:.1f} calls in flight** (peak "
        f"{drain.peak_in_flight}) over the {drain.seconds:.1f} s of the drain: at {latency_ms:g} ms each that "
        f"carries {per_second(little)} (Little's law), against the {per_second(drain.rate)} delivered. "
    )
    if drain.mean_in_flight < 0.8 * engine.total:
        text += (
            f"The slots were {drain.mean_in_flight / engine.total:.0%} full: between a slot freeing and the pump "
            "claiming, sending and recording the next delivery, time passed that was not RG's. "
        )
    text += (
        f"A call the stand-in answers in {latency_ms:g} ms took {drain.call_ms[0]:.0f} ms at the median as the "
        f"portal timed it ({drain.call_ms[1]:.0f} ms p99): the difference is time a finished call waited for its "
        "process to get to it.\n\n"
        f"The {engine.pumps} pump processes used {workers_cores:.2f} cores (at most {engine.pumps}, one each: a "
        f"Python process runs on one core at a time); the portal's processes together (workers, beat, PostgreSQL, "
        f"Redis) spent {portal_ms:.2f} ms of CPU per delivered lead, which caps this machine's "
        f"{cpu.machine_cores:.0f} cores at about {per_second(cpu.machine_cores * 1000 / portal_ms if portal_ms else 0)}"
        f". The machine was {cpu.machine_busy:.2f} of {cpu.machine_cores:.0f} cores busy, {cpu.others:.2f} of them "
        "with work outside the portal and the stand-in."
    )
    return text


def of_bound_figure(rate: float, bound: float) -> Figure:
    """The drain's rate against the in-flight bound, and the issue's goal for it."""
    return Figure(
        "Backlog drained: leads delivered per second",
        per_second(rate),
        f"in-flight bound {per_second(bound)}",
        ratio(rate, bound),
        f"≥ {GOAL_OF_BOUND} of the bound",
        ratio(rate, bound) >= GOAL_OF_BOUND,
    )
