"""Measuring a drain: the backlog's rate from the database and the stand-in's records, calls in
flight (Little's law, from the stand-in), CPU per delivered lead from /proc, SQL statements from
pg_stat_statements, and a py-spy profile of the workers when asked."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Optional
from urllib.parse import urlsplit

from bench import load
from bench.pipeline import IN_PROGRESS, Pipeline, backlog_build, workers_start, workers_stop
from bench.report import table
from bench.runner import OBSERVER_ROLE, Context, log

TRANSACTION_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|START TRANSACTION|END)\b", re.IGNORECASE)
# What PostgreSQL runs to check a foreign key; Django never writes FROM ONLY.
FOREIGN_KEY_CHECK = re.compile(r"^\s*SELECT \S+ FROM ONLY .* FOR KEY SHARE OF", re.IGNORECASE | re.DOTALL)


def epoch(value: Any) -> float:
    """A database timestamp as epoch seconds: psycopg gives aware datetimes, SQLite UTC text."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC).timestamp()


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (`share` in 0..1) of `values`; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


@dataclass
class Statements:
    """SQL the portal ran on one database over a measured interval (pg_stat_statements)."""

    total: int  # statements the portal sent, but not BEGIN/COMMIT/ROLLBACK
    transactions: int  # COMMITs and ROLLBACKs: transaction blocks
    foreign_key_checks: int  # run by the server itself at COMMIT (Django's constraints are deferred)
    top: list[tuple[str, int, float]]  # (query, calls, mean ms) the portal sent, most called first

    def section(self, delivered: int, *, window: str) -> str:
        """The statements per delivered lead; `window` says when counting began and ended."""
        if not delivered:
            return "Nothing was delivered."
        rows = [
            [f"{calls / delivered:.3f}", f"{calls:,}", f"{mean:.2f}", f"`{shorten(query)}`"]
            for query, calls, mean in self.top
        ]
        return (
            f"pg_stat_statements (preloaded in the benchmark's PostgreSQL), {window}; the benchmark's own queries "
            "run as another role and are left out. The portal sent "
            f"**{self.total:,} statements, {self.total / delivered:.2f} per delivery**, not counting BEGIN and "
            f"COMMIT, in {self.transactions:,} transaction blocks ({self.transactions / delivered:.2f} per "
            f"delivery). PostgreSQL also ran {self.foreign_key_checks:,} foreign-key checks of its own at COMMIT "
            f"({self.foreign_key_checks / delivered:.2f} per delivery; Django creates its foreign keys DEFERRABLE "
            "INITIALLY DEFERRED), which are not round trips and are not counted above. The most called:\n\n"
            + table(["Per delivery", "Calls", "Mean ms", "Statement"], rows)
        )


def _database_name(database_url: str) -> str:
    return urlsplit(database_url).path.lstrip("/")


def statements_reset(ctx: Context, database_url: str) -> None:
    if ctx.statement_stats:
        ctx.observe(
            ctx.postgres_url("postgres"),
            "SELECT pg_stat_statements_reset(0::oid, (SELECT oid FROM pg_database WHERE datname = %s), 0::bigint)",
            (_database_name(database_url),),
        )


def statements_read(ctx: Context, database_url: str) -> Optional[Statements]:
    if not ctx.statement_stats:
        return None
    rows = ctx.observe(
        ctx.postgres_url("postgres"),
        """
        SELECT s.query, sum(s.calls)::bigint, sum(s.total_exec_time) / greatest(sum(s.calls), 1)
        FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
        WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = %s) AND r.rolname <> %s
        GROUP BY s.query ORDER BY 2 DESC
        """,
        (_database_name(database_url), OBSERVER_ROLE),
    )
    calls = [(str(query), int(n), float(mean)) for query, n, mean in rows]
    sent = [row for row in calls if not TRANSACTION_CONTROL.match(row[0]) and not FOREIGN_KEY_CHECK.match(row[0])]
    return Statements(
        total=sum(n for _, n, _ in sent),
        transactions=sum(
            n
            for q, n, _ in calls
            if TRANSACTION_CONTROL.match(q) and not q.lstrip().upper().startswith(("BEGIN", "START"))
        ),
        foreign_key_checks=sum(n for q, n, _ in calls if FOREIGN_KEY_CHECK.match(q)),
        top=sent[:15],
    )


def shorten(statement: str, limit: int = 160) -> str:
    flat = " ".join(statement.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def cpu_meter(ctx: Context, pipeline: Pipeline, *, web: bool = False) -> load.CpuMeter:
    roots: dict[str, list[int]] = {}
    if web:
        roots["portal gunicorn (push API)"] = [pipeline.portal.processes["web"].pid]
    roots["Celery workers (pumps)"] = pipeline.worker_pids()
    if "beat" in pipeline.portal.processes:
        roots["celery beat"] = [pipeline.portal.processes["beat"].pid]
    if pipeline.sqlite_path is None:
        assert ctx.postgres is not None and ctx.postgres.process is not None
        assert ctx.redis is not None and ctx.redis.process is not None
        roots["PostgreSQL"] = [ctx.postgres.process.pid]
        roots["Redis"] = [ctx.redis.process.pid]
    roots["RG stand-in"] = [pipeline.standin.pid]
    return load.CpuMeter(roots)


@dataclass
class Drain:
    """A backlog drained by the workers: what the database and the stand-in recorded."""

    leads: int
    delivered: int
    statuses: dict[str, int]
    seconds: float  # the first call reaching the stand-in to the last delivery recorded
    middle_rate: float  # the 10th to the 90th percentile of delivered_at
    calls: int  # requests the stand-in answered
    distinct_calls: int  # ... for distinct leads
    mean_in_flight: float  # calls waiting at the stand-in, on average over `seconds`
    peak_in_flight: int
    call_ms: tuple[float, float]  # attempt durations as the portal timed them, p50 and p99
    failures: list[tuple[Any, ...]]
    cpu: load.CpuUse
    statements: Optional[Statements]
    timed_out: bool

    @property
    def rate(self) -> float:
        return self.delivered / self.seconds if self.seconds else 0.0

    def cpu_ms(self, name: str) -> float:
        """CPU milliseconds per delivered lead of one process tree."""
        cores = self.cpu.cores.get(name, 0.0)
        return 1000 * cores * self.cpu.seconds / self.delivered if self.delivered else 0.0


def drain_wait(ctx: Context, pipeline: Pipeline, *, leads: int, timeout: float) -> bool:
    """Until no delivery is in progress (pending, claimed or waiting); False if `timeout` ran out.
    The stand-in's count is polled (cheap, and not the portal's database); the database only
    every few seconds and once the stand-in has seen every lead."""
    deadline = time.monotonic() + timeout
    next_check = time.monotonic() + 5
    while time.monotonic() < deadline:
        time.sleep(0.25)
        if pipeline.standin.stats()["requests"] >= leads or time.monotonic() >= next_check:
            next_check = time.monotonic() + 5
            if pipeline.count(ctx, IN_PROGRESS) == 0:
                return True
    log(f"{pipeline.name}: gave up waiting after {timeout:.0f} s; reporting what was delivered by then")
    return False


def drain_measure(ctx: Context, pipeline: Pipeline, *, leads: int, timeout: float) -> Drain:
    """Start the workers on a built backlog, wait until it is drained, and measure it."""
    pipeline.standin.reset()
    if pipeline.sqlite_path is None:
        statements_reset(ctx, pipeline.database)
    workers_start(ctx, pipeline)
    meter = cpu_meter(ctx, pipeline).start()
    log(f"{pipeline.name}: workers draining {leads:,} leads")
    finished = drain_wait(ctx, pipeline, leads=leads, timeout=timeout)
    cpu = meter.stop()
    statements = statements_read(ctx, pipeline.database) if pipeline.sqlite_path is None else None
    stats = pipeline.standin.stats()
    answers = pipeline.standin.answers()
    statuses = {str(s): int(n) for s, n in pipeline.rows(ctx, "SELECT status, count(*) FROM leads_delivery GROUP BY 1")}
    delivered_at = sorted(
        epoch(row[0])
        for row in pipeline.rows(ctx, "SELECT delivered_at FROM leads_delivery WHERE status = 'delivered'")
        if row[0] is not None
    )
    durations = [
        float(row[0])
        for row in pipeline.rows(ctx, "SELECT duration_ms FROM leads_deliveryattempt WHERE duration_ms IS NOT NULL")
    ]
    failures = pipeline.rows(
        ctx,
        "SELECT error, response_status, count(*) FROM leads_deliveryattempt WHERE outcome <> 'delivered' "
        "GROUP BY error, response_status ORDER BY 3 DESC",
    )
    first_call = stats["first_arrival"] or time.time()
    seconds = max((delivered_at[-1] if delivered_at else time.time()) - first_call, 1e-3)
    middle = 0.0
    if len(delivered_at) >= 10:
        t10, t90 = percentile(delivered_at, 0.1), percentile(delivered_at, 0.9)
        middle = 0.8 * len(delivered_at) / max(t90 - t10, 1e-3)
    return Drain(
        leads=leads,
        delivered=len(delivered_at),
        statuses=statuses,
        seconds=seconds,
        middle_rate=middle,
        calls=len(answers),
        distinct_calls=len({a.lead_id for a in answers}),
        mean_in_flight=float(stats["busy_seconds"]) / seconds,
        peak_in_flight=int(stats["peak_in_flight"]),
        call_ms=(percentile(durations, 0.5), percentile(durations, 0.99)),
        failures=failures,
        cpu=cpu,
        statements=statements,
        timed_out=not finished,
    )


def drain_timeout(leads: int, bound: float) -> float:
    """How long a drain may take before the benchmark reports what it has: a minute more than
    the backlog takes at a tenth of `bound`."""
    return max(120.0, 10 * leads / bound + 60)


def profile_drain(ctx: Context, pipeline: Pipeline, *, rate: float, most: int) -> str:
    """py-spy on the workers while they drain another backlog, big enough to keep them busy for
    the profile at the rate just measured, but at most `most` leads (a separate drain: the
    profiler costs CPU)."""
    seconds = ctx.mode.profile_seconds
    workers_stop(pipeline)
    pipeline.standin.reset()
    leads = max(500, min(most, int(rate * (seconds + 4))))
    backlog_build(ctx, pipeline, leads=leads, processes=1 if pipeline.sqlite_path else 2)
    workers_start(ctx, pipeline)
    log(f"{pipeline.name}: profiling the workers for {seconds} s")
    profile = load.profile(
        pipeline.workers[0].pid, seconds=seconds, output=ctx.workdir / f"{pipeline.name}-worker-profile.txt"
    )
    drain_wait(ctx, pipeline, leads=leads, timeout=drain_timeout(leads, max(rate, 1.0)))
    return profile.markdown(what=f"the Celery worker processes (pumps) draining a backlog of {leads:,} leads")


DRAIN_WINDOW = "from the worker being ready to the last delivery recorded"


def cpu_section(cpu: load.CpuUse, delivered: int, *, portal: list[str], window: str = DRAIN_WINDOW) -> str:
    """Cores and CPU milliseconds per delivered lead of each process tree, and what they mean."""

    def per_lead(cores: float) -> float:
        return 1000 * cores * cpu.seconds / delivered if delivered else 0.0

    rows = [
        [name, f"{cores:.2f} ({cpu.kernel[name]:.2f})", f"{per_lead(cores):.2f}"] for name, cores in cpu.cores.items()
    ]
    rows.append(["everything else (the benchmark, other work on the machine)", f"{cpu.others:.2f}", ""])
    rows.append(["the whole machine", f"{cpu.machine_busy:.2f}", ""])
    portal_ms = sum(per_lead(cpu.cores[name]) for name in portal if name in cpu.cores)
    return (
        f"Over {cpu.seconds:.1f} s, {window}. Cores used, out of "
        f"{cpu.machine_cores:.0f}; a tree's CPU is /proc's utime + stime of its processes and their reaped children, "
        "before and after.\n\n"
        + table(["Process tree", "Cores (in the kernel)", "CPU ms per delivered lead"], rows)
        + "\n\n"
        + load.cpu_bound(cpu, portal_ms, "delivered lead", who=" + ".join(portal))
    )


def failures_text(failures: list[tuple[Any, ...]]) -> str:
    if not failures:
        return "None: every attempt succeeded."
    rows = [[error or "-", status or "-", n] for error, status, n in failures]
    return (
        "These attempts did not succeed; their deliveries wait for a retry (the sweeper's, a minute or more later) "
        "and are not counted as delivered.\n\n" + table(["Error", "HTTP status", "Attempts"], rows)
    )
