"""Worker memory: resident memory of the Celery worker processes (and any children) after the
first and the second checkpoint of deliveries, and how much it grew in between.

Leads go through the whole pipeline (push API, Redis, the workers' delivery pumps, the RG
stand-in answering at once) in chunks; after each chunk every delivery is finished and the workers are idle when their
memory is read, so a measurement never catches a task's transient allocations.
"""

from __future__ import annotations

from bench import load
from bench.pipeline import engine_from_mode, pipeline_start, push, wait_attempted, workers_start
from bench.report import Figure, Report, common_configuration, ratio, table
from bench.runner import Context, log

GOAL_GROWTH = 0.10


def run(ctx: Context) -> Report:
    mode = ctx.mode
    first, second = mode.memory_checkpoints
    report = Report("memory", "Celery worker memory", ctx)
    engine = engine_from_mode(ctx)
    pipeline = pipeline_start(ctx, "memory", latency_ms=0, engine=engine, web=True)
    workers_start(ctx, pipeline)
    pids = pipeline.worker_pids()
    samples = [(0, load.rss_mib(pids), [load.rss_mib([pid]) for pid in pids])]
    log(f"memory: {load.rss_mib(pids):.0f} MiB resident before any delivery")
    delivered = 0
    while delivered < second:
        target = min(delivered + mode.memory_chunk, second)
        push(ctx, pipeline, until_leads=target, timeout=max(120.0, mode.memory_chunk / 5))
        wait_attempted(ctx, pipeline, timeout=max(300.0, mode.memory_chunk / 2))
        delivered = pipeline.count(ctx, "SELECT count(*) FROM leads_delivery WHERE status = 'delivered'")
        samples.append((delivered, load.rss_mib(pids), [load.rss_mib([pid]) for pid in pids]))
        log(f"memory: {delivered:,} delivered, workers at {samples[-1][1]:.0f} MiB")
    alive = all(process.alive() for process in pipeline.portal.workers()) and len(pipeline.portal.workers()) == len(
        pids
    )

    def at(checkpoint: int) -> float:
        return next(rss for done, rss, _ in samples if done >= checkpoint)

    growth = ratio(at(second), at(first)) - 1
    report.add(Figure(f"Worker RSS after {first:,} deliveries", f"{at(first):.0f} MiB"))
    report.add(
        Figure(
            f"Worker RSS after {second:,} deliveries",
            f"{at(second):.0f} MiB",
            f"{at(first):.0f} MiB after {first:,}",
            ratio(at(second), at(first)),
            f"growth ≤ {GOAL_GROWTH:.0%}",
            growth <= GOAL_GROWTH,
        )
    )
    report.add(
        Figure("Growth between the two", f"{growth:+.1%}", goal=f"≤ {GOAL_GROWTH:.0%}", passed=growth <= GOAL_GROWTH)
    )
    scale = "" if mode.name == "full" else f" (quick mode: {first:,} and {second:,} instead of 10,000 and 100,000)"
    report.summary = (
        f"The Celery worker ({engine.pumps} pump processes and its main process) held **{at(first):.0f} MiB** after "
        f"{first:,} deliveries and "
        f"**{at(second):.0f} MiB** after {second:,}{scale}: **{growth:+.1%}** (goal ≤ {GOAL_GROWTH:.0%})."
    )
    report.configure(common_configuration(ctx))
    report.configure(
        {
            "Checkpoints": f"{first:,} and {second:,} deliveries{scale}",
            "Celery worker": f"{engine.describe()}; RSS summed over the worker's process tree (the main process and "
            "its prefork children)",
            "Pipeline": "push API (wrk) -> Redis -> the workers' pumps -> the RG stand-in (bench/standin.py, its own "
            "process, answering at once)",
            "Chunks": f"{mode.memory_chunk:,} leads each; memory read when every delivery of the chunk finished",
            "Workers survived": "yes, the same processes throughout" if alive else "NO: a worker process was replaced",
        }
    )
    rows = [[f"{done:,}", f"{rss:.1f}", " + ".join(f"{one:.1f}" for one in each)] for done, rss, each in samples]
    report.section("Memory after each chunk", table(["Deliveries", "RSS, all workers (MiB)", "Per worker (MiB)"], rows))
    pipeline.portal.stop()
    pipeline.standin.stop()
    return report
