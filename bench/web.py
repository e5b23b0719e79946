"""One endpoint against the bare view, under the same gunicorn: what the ingest and callback
benchmarks share. Both servers run at once on the same database and Redis; wrk loads one at a
time, baseline and real alternating round by round, and the median round counts."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

from bench import load
from bench.report import Figure, Report, milliseconds, per_second, ratio, table
from bench.runner import Context, log
from tests.integration.servers import PortalStack

# A round in which one gunicorn worker used less than this share of the busiest one's CPU is
# lopsided: see CONNECTIONS_PER_THREAD.
LOPSIDED_SHARE = 0.5
# How many times a lopsided round is measured again before it is kept as it is.
LOPSIDED_REMEASURES = 2


@dataclass(frozen=True)
class Round:
    result: load.WrkResult
    cpu: load.CpuUse
    status: int
    warmup: load.WrkResult
    worker_cores: tuple[float, ...] = ()  # each gunicorn worker's cores over the measured run

    @property
    def lopsided(self) -> bool:
        """Whether one worker sat mostly idle while another was busy: it was left too few of
        wrk's connections, so the round measured the accept race, not the code."""
        return len(self.worker_cores) > 1 and min(self.worker_cores) < LOPSIDED_SHARE * max(self.worker_cores)

    def workers_described(self) -> str:
        return " + ".join(f"{cores:.2f}" for cores in self.worker_cores)

    @property
    def rate(self) -> float:
        return self.result.rate(self.status)

    def cpu_ms(self, name: str) -> float:
        """CPU milliseconds per answer with `status` of one process tree."""
        return 1000 * self.cpu.cores[name] / self.rate if self.rate else 0.0

    @property
    def total_cpu_ms(self) -> float:
        """CPU milliseconds per answer with `status`, every metered process tree together."""
        return sum(self.cpu_ms(name) for name in self.cpu.cores)


@dataclass
class Comparison:
    """The rounds of both servers; `baseline` and `real` are each one's median round by rate."""

    rounds: dict[str, list[Round]] = field(default_factory=lambda: {"baseline": [], "real": []})
    # Lopsided rounds measured again, kept to be shown; none of them counts.
    set_aside: dict[str, list[Round]] = field(default_factory=lambda: {"baseline": [], "real": []})

    def median(self, name: str) -> Round:
        ordered = sorted(self.rounds[name], key=lambda r: r.rate)
        return ordered[len(ordered) // 2]

    @property
    def baseline(self) -> Round:
        return self.median("baseline")

    @property
    def real(self) -> Round:
        return self.median("real")


# wrk's keep-alive connections per server thread. wrk opens them all at once and gunicorn's
# workers race to accept them: the worker already running wins most. With one connection per
# thread (16 for 2 workers x 8 threads), one worker often held 13 to 16 of them, the other core
# sat idle and the same code measured anywhere from 261 to 792 pushes/s, round to round. With four
# per thread the worker with the fewest still held more connections than threads (19 to 30 of 64
# in five rounds), so most rounds use both cores. Requests then queue in front of the threads:
# the latency figures include that wait. About one round in eight still left one worker a handful
# of connections and a core half idle, halving that round's rate (the baseline's too), so each
# worker's CPU is metered and such a round is measured again (LOPSIDED_SHARE).
CONNECTIONS_PER_THREAD = 4


def connections(ctx: Context) -> int:
    """wrk's connections: CONNECTIONS_PER_THREAD for each of the web server's threads."""
    return CONNECTIONS_PER_THREAD * int(ctx.gunicorn["workers"]) * int(ctx.gunicorn["threads"])


# wrk's script arguments, or a function giving them afresh for each run (signed callbacks must
# not be replayed from one run to the next).
Args = Sequence[str] | Callable[[], Sequence[str]]


def _args(args: Args) -> Sequence[str]:
    return args() if callable(args) else args


# Process trees metered beside the server's gunicorn, by name.
Trees = Mapping[str, Sequence[int]]


def measure(
    ctx: Context,
    stack: PortalStack,
    *,
    path: str,
    args: Args,
    status: int,
    clients: Optional[int] = None,
    others: Optional[Trees] = None,
) -> Round:
    """A warm-up run, then a measured one with the CPU used by the server and `others`
    (PostgreSQL and Redis unless given). wrk opens `connections(ctx)` connections on one thread,
    or with `clients` that many connections on as many threads, one each (so post.lua can time
    each request: its slow_ms= needs that)."""
    url = stack.base_url + path
    shape = {"connections": clients, "threads": clients} if clients else {"connections": connections(ctx), "threads": 1}
    warmup = load.wrk(url, seconds=ctx.mode.warmup_seconds, args=_args(args), **shape)
    if others is None:
        assert ctx.postgres is not None and ctx.postgres.process is not None
        assert ctx.redis is not None and ctx.redis.process is not None
        others = {"PostgreSQL": [ctx.postgres.process.pid], "Redis": [ctx.redis.process.pid]}
    master = stack.processes["web"].pid
    meter = load.CpuMeter({"gunicorn": [master], **others}).start()
    workers = load.CpuMeter({str(pid): [pid] for pid in load.children(master)}).start()
    result = load.wrk(url, seconds=ctx.mode.http_seconds, args=_args(args), **shape)
    cpu, worker_cpu = meter.stop(), workers.stop()
    if result.count(status) == 0:
        raise RuntimeError(f"no {status} answers from {url}: {result.describe()}\n{stack.describe()}")
    return Round(result, cpu, status, warmup, tuple(worker_cpu.cores.values()))


def compare(
    ctx: Context,
    *,
    name: str,
    baseline: PortalStack,
    real: PortalStack,
    path: str,
    args: Args,
    real_status: int,
    clients: Optional[int] = None,
    others: Optional[Trees] = None,
    settle: Optional[Callable[[], None]] = None,
) -> Comparison:
    """Baseline and real rounds in turn (see `measure` for `clients` and `others`); `settle`, when
    given, runs before each round (to let background work finish, so no round inherits it). A
    lopsided round is set aside and measured again, up to LOPSIDED_REMEASURES times."""
    comparison = Comparison()
    rounds = ctx.mode.rounds
    for number in range(1, rounds + 1):
        for which, stack, status in (("baseline", baseline, 201), ("real", real, real_status)):
            for remeasure in range(LOPSIDED_REMEASURES + 1):
                if settle is not None:
                    settle()
                log(f"{name}: round {number}/{rounds}, {which}, {ctx.mode.http_seconds} s")
                measured = measure(ctx, stack, path=path, args=args, status=status, clients=clients, others=others)
                if not measured.lopsided or remeasure == LOPSIDED_REMEASURES:
                    break
                log(f"{name}: lopsided round (workers' cores {measured.workers_described()}): measuring it again")
                comparison.set_aside[which].append(measured)
            comparison.rounds[which].append(measured)
    return comparison


def statements(ctx: Context, baseline: PortalStack, real: PortalStack, *args: str) -> dict[str, dict[str, Any]]:
    """The SQL of one request (`Context.statements` ARGS) on each server, keyed "baseline" and "real"."""
    return {which: ctx.statements(stack, *args) for which, stack in (("baseline", baseline), ("real", real))}


def per_request_figures(comparison: Comparison, sql: Mapping[str, dict[str, Any]]) -> list[Figure]:
    """CPU ms and SQL statements per request, real beside the baseline: the CPU of the median
    rounds, every metered process tree together; the statements of one request on each server
    (`statements`)."""
    base, real = comparison.baseline, comparison.real
    base_sql, real_sql = (len(sql[which]["statements"]) for which in ("baseline", "real"))
    return [
        Figure(
            "CPU ms per request (the server and the processes metered with it)",
            f"{real.total_cpu_ms:.2f}",
            f"{base.total_cpu_ms:.2f}",
            ratio(real.total_cpu_ms, base.total_cpu_ms),
        ),
        Figure(
            "SQL statements per request (one request, in-process)",
            str(real_sql),
            str(base_sql),
            ratio(real_sql, base_sql) if base_sql else None,
        ),
    ]


def rounds_table(comparison: Comparison) -> str:
    """Every round that counts, then those set aside as lopsided, with each worker's cores."""
    counted = [
        (which, str(number), r) for which, rounds in comparison.rounds.items() for number, r in enumerate(rounds, 1)
    ]
    set_aside = [(which, "set aside", r) for which, rounds in comparison.set_aside.items() for r in rounds]
    rows = [
        [
            which,
            label,
            f"{r.status}: {per_second(r.rate)}",
            milliseconds(r.result.latency_ms["p99"]),
            r.result.describe(),
            r.cpu.describe(),
            r.workers_described(),
        ]
        for which, label, r in counted + set_aside
    ]
    note = (
        f"{len(set_aside)} round(s) set aside as lopsided: one gunicorn worker used under {LOPSIDED_SHARE:.0%} "
        "of the busiest one's CPU (it was left a handful of wrk's connections), so each was measured again.\n\n"
        if set_aside
        else ""
    )
    return note + table(["Server", "Round", "Rate", "p99", "wrk", "CPU", "Each worker's cores"], rows)


def cpu_table(comparison: Comparison, unit: str) -> str:
    """Cores and CPU milliseconds per request of each process tree, baseline against real, and
    what that cost per request means for this machine."""
    base, real = comparison.baseline, comparison.real
    rows = [
        [
            name,
            f"{base.cpu.cores[name]:.2f}",
            f"{real.cpu.cores[name]:.2f} ({real.cpu.kernel[name]:.2f})",
            f"{base.cpu_ms(name):.2f}",
            f"{real.cpu_ms(name):.2f}",
        ]
        for name in real.cpu.cores
    ]
    rows.append(["everything else (wrk, other work)", f"{base.cpu.others:.2f}", f"{real.cpu.others:.2f}", "", ""])
    rows.append(["the whole machine", f"{base.cpu.machine_busy:.2f}", f"{real.cpu.machine_busy:.2f}", "", ""])
    headers = [
        "Process tree",
        "Cores, baseline",
        "Cores, real (in the kernel)",
        "CPU ms per request, baseline",
        "CPU ms per request, real",
    ]
    real_ms, base_ms = real.total_cpu_ms, base.total_cpu_ms
    return (
        f"Median rounds. Cores used, out of {real.cpu.machine_cores:.0f}; CPU ms per request = cores / rate.\n\n"
        + table(headers, rows)
        + f"\n\nThe bare view cost {base_ms:.2f} ms of CPU per request. "
        + load.cpu_bound(real.cpu, real_ms, unit)
        + (
            f" When both runs use the whole machine, their rates go as the inverse of their CPU per request: "
            f"{base_ms:.2f} / {real_ms:.1f} = {base_ms / real_ms:.2f}, against the measured ratio of "
            f"{real.rate / base.rate:.2f}. Reaching the goal means cutting the work per request, not tuning the server."
            if real_ms and base.rate
            else ""
        )
    )


def profile_when_missed(
    ctx: Context, report: Report, stack: PortalStack, *, path: str, args: Args, title: str, what: str
) -> None:
    """The profile under load as a section of `report`, when a figure missed its goal or in full mode."""
    if report.missed or ctx.mode.name == "full":
        report.section(title, profile_under_load(ctx, stack, path=path, args=args, what=what))


def profile_under_load(ctx: Context, stack: PortalStack, *, path: str, args: Args, what: str) -> str:
    """py-spy on the gunicorn workers while wrk loads them (a separate run from the measured ones,
    so the profiler's cost is not in the figures)."""
    seconds = ctx.mode.profile_seconds
    log(f"profiling {what} for {seconds} s")
    background = load.WrkInBackground(
        stack.base_url + path, connections=connections(ctx), seconds=seconds + 5, args=_args(args)
    )
    try:
        profile = load.profile(stack.processes["web"].pid, seconds=seconds, output=ctx.workdir / "web-profile.txt")
    finally:
        background.stop()
    return profile.markdown(what=what)
