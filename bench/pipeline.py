"""What the delivery benchmarks share: the RG stand-in (bench/standin.py) as its own process, a
portal stack whose Celery workers run the delivery engine against it, a backlog accepted through
the portal's own service, and RG's own client as the sequential baseline. Measuring a drain is
bench/drain.py's.

The engine's shape is `pumps` worker processes (`celery worker --pool prefork --concurrency
pumps`, each running one pump task at a time) x DELIVERY_IN_FLIGHT calls each; its ideal rate
is that product divided by RG's latency.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import sqlite3
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import leadrouter

from bench import load, web
from bench.ingest import LEAD, PATH
from bench.runner import REPO_DIR, SITE_UUID, Context, bench_partner_add, log
from tests.integration import servers
from tests.integration.servers import PortalStack

# Deliveries not finished and not waiting on a retry schedule: a drain is over when none is left.
IN_PROGRESS = "SELECT count(*) FROM leads_delivery WHERE status IN ('pending', 'claimed', 'waiting')"
ENGINE_SETTINGS = ("DELIVERY_IN_FLIGHT", "DELIVERY_PARTNER_MAX_IN_FLIGHT", "DELIVERY_SENDER", "DELIVERY_PUMP_SECONDS")


# ----------------------------------------------------------------------------- the stand-in


@dataclass(frozen=True)
class Answer:
    """One request the stand-in answered (wall-clock seconds)."""

    arrival: float
    answered: float
    method: str
    lead_id: Optional[str]


class StandIn:
    """bench/standin.py running as its own process, and what it recorded, read back over HTTP."""

    def __init__(self, process: servers.ManagedProcess, port: int, latency_ms: float) -> None:
        self.process = process
        self.port = port
        self.latency_ms = latency_ms
        self.url = f"http://127.0.0.1:{port}"

    @property
    def api_url(self) -> str:
        """REALGEEKS_API_URL for the portal."""
        return f"{self.url}/rest"

    @property
    def pid(self) -> int:
        return self.process.pid

    def stats(self) -> dict[str, Any]:
        status, data = servers.http_get_json(f"{self.url}/__stats")
        if status != 200:
            raise RuntimeError(f"the stand-in answered {status} to /__stats")
        return dict(data)

    def answers(self) -> list[Answer]:
        status, rows = servers.http_get_json(f"{self.url}/__requests?offset=0", timeout=60)
        if status != 200:
            raise RuntimeError(f"the stand-in answered {status} to /__requests")
        return [Answer(*row) for row in rows]

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/__reset", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

    def stop(self) -> None:
        self.process.stop(timeout=5)


def standin_start(ctx: Context, name: str, *, latency_ms: float) -> StandIn:
    port = servers.free_port()
    process = servers.ManagedProcess(
        f"{name}-standin",
        [sys.executable, "-m", "bench.standin", "--port", str(port), "--latency-ms", f"{latency_ms:g}"],
        log_path=ctx.workdir / f"{name}-standin.log",
        cwd=REPO_DIR,
    )
    ctx.processes.append(process)
    standin = StandIn(process, port, latency_ms)

    def answering() -> bool:
        if not process.alive():
            raise process.startup_error("exited during start-up")
        return servers.http_get(f"{standin.url}/__stats", timeout=2)[0] == 200

    servers.wait_for(answering, timeout=30, what=f"the RG stand-in on port {port}")
    return standin


# ----------------------------------------------------------------------------- the portal


@dataclass(frozen=True)
class Engine:
    """How many pumps (worker processes) and how many calls in flight each."""

    pumps: int
    in_flight: int

    @property
    def total(self) -> int:
        return self.pumps * self.in_flight

    def bound(self, latency_ms: float) -> float:
        """The ideal rate: every slot always waiting on RG and nothing else."""
        return self.total / (latency_ms / 1000)

    def env(self) -> dict[str, str]:
        # One partner in the benchmarks: its cap must not be what limits the engine.
        return {"DELIVERY_IN_FLIGHT": str(self.in_flight), "DELIVERY_PARTNER_MAX_IN_FLIGHT": str(self.total * 2)}

    def describe(self) -> str:
        return (
            f"{self.pumps} worker processes (`--pool prefork --concurrency {self.pumps}`, one pump each) x "
            f"DELIVERY_IN_FLIGHT={self.in_flight} = {self.total} calls in flight; "
            f"DELIVERY_PARTNER_MAX_IN_FLIGHT={self.total * 2} (claimed, counting each pump's ready buffer)"
        )


def engine_from_mode(ctx: Context, *, total: Optional[int] = None) -> Engine:
    """The mode's engine shape, or its pump count sharing `total` calls in flight."""
    pumps = ctx.mode.delivery_pumps
    if total is None:
        return Engine(pumps, ctx.mode.delivery_in_flight)
    return Engine(pumps, max(1, total // pumps))


@dataclass
class Pipeline:
    """A portal stack and the stand-in it delivers to. `engine` None: the settings' defaults and
    the Procfile's own worker line (the embedded default, as `make run` starts it)."""

    name: str
    portal: PortalStack
    standin: StandIn
    engine: Optional[Engine]
    sqlite_path: Optional[Path] = None
    partner_slug: str = ""
    beat: bool = True
    workers: list[servers.ManagedProcess] = field(default_factory=list)
    started: int = 0  # workers started so far: each gets a new name, and its own log

    @property
    def database(self) -> str:
        return self.portal.database_url

    def worker_pids(self) -> list[int]:
        return [process.pid for process in self.portal.workers()]

    def rows(self, ctx: Context, query: str) -> list[tuple[Any, ...]]:
        """Rows of a query on the pipeline's database, read as the observer (PostgreSQL) or
        straight from the file (SQLite, whose readers never block its writer in WAL mode)."""
        if self.sqlite_path is None:
            return ctx.observe(self.database, query)
        return sqlite_rows(self.sqlite_path, query)

    def count(self, ctx: Context, query: str) -> int:
        return int(self.rows(ctx, query)[0][0])

    def settings(self) -> dict[str, str]:
        """The engine settings the portal's processes run with, as Django reads them."""
        names = ", ".join(repr(name) for name in ENGINE_SETTINGS)
        code = (
            "import json; from django.conf import settings; "
            f"print(json.dumps({{n: str(getattr(settings, n, '(none)')) for n in ({names},)}}))"
        )
        return dict(json.loads(self.portal.manage("shell", "-c", code).strip().splitlines()[-1]))


def pipeline_start(ctx: Context, name: str, *, latency_ms: float, engine: Engine, web: bool = False) -> Pipeline:
    """A new PostgreSQL database from the template, the stand-in answering in `latency_ms`, and
    the portal (gunicorn when `web`) pointed at it. Workers start later (`workers_start`), so a
    backlog can be built first."""
    database = ctx.database(f"bench_{name.replace('-', '_')}")
    standin = standin_start(ctx, name, latency_ms=latency_ms)
    log(f"{name}: the RG stand-in answers in {latency_ms:g} ms; starting the portal")
    env = {
        "REALGEEKS_API_URL": standin.api_url,
        "WORKER_HEARTBEAT_SECONDS": "30",  # production's default, not the tests' 1 s
        **engine.env(),
    }
    portal = ctx.stack(f"{name}-portal", database, web=web, env=env)
    return Pipeline(name, portal, standin, engine, partner_slug=ctx.creds.partner_slug)


def sqlite_rows(path: Path, query: str) -> list[tuple[Any, ...]]:
    """Rows of a query on a SQLite file (in WAL mode a reader never blocks the portal's writer)."""
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as conn:
        return list(conn.execute(query).fetchall())


def embedded_stack(ctx: Context, name: str, *, env: Optional[dict[str, str]] = None) -> PortalStack:
    """A portal stack on the embedded default, nothing started: PORTAL_ENV=development with none
    of the variables `make run` leaves unset (DATABASE_URL, CELERY_BROKER_URL, DELIVERY_*,
    CELERY_CONCURRENCY, GUNICORN_WORKERS, ...), so SQLite and the filesystem broker live in its var
    dir and gunicorn.conf.py and the Procfile use their own defaults. `env` is added last."""
    portal = servers.PortalStack(
        database_url="",
        broker_url="",
        root=ctx.workdir / name,
        options=servers.StackOptions(web=False, worker=False),
    )
    unset = {"DATABASE_URL", "CELERY_BROKER_URL", "CELERY_CONCURRENCY", "WORKER_HEARTBEAT_SECONDS"}
    unset |= {"GUNICORN_WORKERS", "GUNICORN_THREADS", "GUNICORN_TIMEOUT"}
    for variable in [v for v in portal.env if v in unset or v.startswith("DELIVERY_")]:
        portal.env.pop(variable)
    portal.env.update(env or {})
    ctx.stacks.append(portal)
    return portal


def embedded_pipeline_start(ctx: Context, name: str, *, latency_ms: float) -> Pipeline:
    """The embedded default (`make run`, see `embedded_stack`) delivering to the stand-in, with the
    bench partner and site set up in it."""
    standin = standin_start(ctx, name, latency_ms=latency_ms)
    portal = embedded_stack(ctx, name, env={"REALGEEKS_API_URL": standin.api_url})
    log(f"{name}: preparing SQLite in {portal.var_dir} (migrate, bench partner, granted site)")
    portal.manage("migrate", "--noinput")
    creds = ctx.creds
    slug = bench_partner_add(portal, creds)
    portal.manage("grant_site", slug, SITE_UUID, "--name", "Bench Realty")
    return Pipeline(name, portal, standin, None, sqlite_path=portal.var_dir / "portal.sqlite3", partner_slug=slug)


def workers_start(ctx: Context, pipeline: Pipeline) -> servers.ManagedProcess:
    """Beat, then the Celery worker, as the Procfile runs them; returns as soon as the worker
    logs that it is ready (polled every 50 ms: it starts delivering at once, and a drain's CPU is
    measured from here)."""
    portal = pipeline.portal
    if pipeline.beat and "beat" not in portal.processes:
        portal.start_beat(timeout=90)
    pipeline.started += 1
    name = f"worker{pipeline.started}"
    args: list[str] = []
    if pipeline.engine is not None:
        log(f"{pipeline.name}: starting the worker: {pipeline.engine.describe()}")
        # As PortalStack.start_worker adds them; the embedded default leaves both to the Procfile.
        args = ["--hostname", f"{name}@%h", "--pool", "prefork", "--concurrency", str(pipeline.engine.pumps)]
    else:
        log(f"{pipeline.name}: starting the worker as the Procfile has it: {servers.procfile_commands()['worker']}")
    process = procfile_worker_start(portal, name, args)
    pipeline.workers.append(process)
    return process


def procfile_worker_start(portal: PortalStack, name: str, args: Sequence[str] = ()) -> servers.ManagedProcess:
    """The Procfile's worker line, with `args` added, in the portal's environment; returns as soon
    as it logs that it is ready (polled every 50 ms: it starts delivering at once)."""
    command = servers.procfile_commands()["worker"]
    if args:
        command = f"{command} {shlex.join(args)}"
    process = servers.ManagedProcess(
        name, ["/bin/sh", "-c", f"exec {command}"], log_path=portal.root / f"{name}.log", env=portal.env, cwd=REPO_DIR
    )
    portal.processes[name] = process

    def ready() -> bool:
        if not process.alive():
            raise process.startup_error("exited during start-up")
        return " ready." in process.log_text()

    servers.wait_for(ready, timeout=90, what=f"{name} to log 'ready.'", interval=0.05)
    return process


def workers_stop(pipeline: Pipeline) -> None:
    for process in pipeline.workers:
        process.stop(timeout=20)
    pipeline.workers.clear()


# ----------------------------------------------------------------------------- the backlog


@dataclass(frozen=True)
class Backlog:
    leads: int
    seconds: float
    processes: int

    @property
    def rate(self) -> float:
        return self.leads / self.seconds if self.seconds else 0.0

    def describe(self) -> str:
        return (
            f"{self.leads:,} leads accepted with no worker running, through `leads.services.lead_submit` (the push "
            f"API's own service, without HTTP: `python -m bench.backlog`) in {self.processes} process"
            f"{'es' if self.processes > 1 else ''}, at {self.rate:,.0f}/s"
        )


def backlog_build(ctx: Context, pipeline: Pipeline, *, leads: int, processes: int) -> Backlog:
    """Accept `leads` leads through the portal's service in `processes` parallel processes."""
    log(f"{pipeline.name}: accepting {leads:,} leads through lead_submit ({processes} processes), no worker running")
    shares = [leads // processes + (1 if i < leads % processes else 0) for i in range(processes)]
    before = pipeline.count(ctx, "SELECT count(*) FROM leads_delivery")
    started = time.monotonic()
    running = []
    for number, share in enumerate(s for s in shares if s):
        log_path = pipeline.portal.root / f"backlog-{number}.log"
        with open(log_path, "ab") as log_file:
            popen = subprocess.Popen(
                [
                    *(sys.executable, "-m", "bench.backlog", "--leads", str(share)),
                    *("--partner", pipeline.partner_slug, "--site", SITE_UUID),
                ],
                env=pipeline.portal.env,
                cwd=REPO_DIR,
                stdout=subprocess.DEVNULL,
                stderr=log_file,
            )
        running.append((popen, log_path))
    for popen, log_path in running:
        if popen.wait(timeout=max(600.0, leads / 20)) != 0:
            raise RuntimeError(f"bench.backlog failed:\n{servers.tail(log_path)}")
    seconds = time.monotonic() - started
    stored = pipeline.count(ctx, "SELECT count(*) FROM leads_delivery") - before
    if stored < leads:
        raise RuntimeError(f"bench.backlog stored {stored:,} deliveries, not {leads:,}")
    return Backlog(leads, seconds, len(running))


# ----------------------------------------------------------------------------- baselines


@dataclass(frozen=True)
class Sequential:
    sent: int
    seconds: float
    errors: int

    @property
    def rate(self) -> float:
        return self.sent / self.seconds

    def describe(self) -> str:
        return (
            f"RG's own Python client, leadrouter {leadrouter_version()}, `Client.create_lead` in a loop for "
            f"{self.seconds:.0f} s against the same stand-in: {self.sent:,} leads, {self.errors} errors"
        )


def sequential_client(standin: StandIn, seconds: float) -> Sequential:
    """RG's own Python client, one create after the other, against the stand-in."""
    client = leadrouter.Client(standin.url, "bench-partner", "not-checked")
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


def leadrouter_version() -> str:
    from importlib.metadata import version

    return version("leadrouter")


# ----------------------------------------------------------------------------- the push API (memory)


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
            lambda: not background.running() or pipeline.count(ctx, "SELECT count(*) FROM leads_lead") >= until_leads,
            timeout=timeout,
            what=f"{until_leads:,} leads accepted",
            interval=0.2,
        )
    finally:
        result = background.stop()
    return result


def wait_attempted(ctx: Context, pipeline: Pipeline, *, timeout: float) -> None:
    """Until no delivery is in progress; RuntimeError after `timeout` seconds."""
    load.wait_until(lambda: pipeline.count(ctx, IN_PROGRESS) == 0, timeout=timeout, what="every delivery attempted")
