"""What the benchmarks share: the mode, PostgreSQL and Redis, a template database holding the
bench partner, and portal stacks in production shape.

The servers come from tests/integration/servers.py, the integration tests' own machinery, so a
benchmark starts PostgreSQL, Redis, gunicorn and Celery exactly as those tests and the Procfile do.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import os
import re
import runpy
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlsplit, urlunsplit

import psycopg
from cryptography.fernet import Fernet
from psycopg import sql

from tests.integration import servers

REPO_DIR = servers.REPO_DIR
RESULTS_DIR = REPO_DIR / "bench" / "results"
WRK_SCRIPT = REPO_DIR / "bench" / "wrk" / "post.lua"
# The one site every benchmark sends to; granted to the bench partner in the template database.
SITE_UUID = "6f1d8c2a-4b3e-4f5a-9c7d-2e8b1a0f3d95"
TEMPLATE_DATABASE = "bench_template"
# The role the benchmarks read the database as while the portal runs, so pg_stat_statements can
# tell the portal's statements from the benchmark's own.
OBSERVER_ROLE = "bench_observer"
# Environment names gunicorn.conf.py reads; unset while reading its defaults.
GUNICORN_VARIABLES = ("GUNICORN_BIND", "GUNICORN_WORKERS", "GUNICORN_THREADS", "GUNICORN_TIMEOUT")


@dataclass(frozen=True)
class Mode:
    """How long and how big: `quick` for `make bench`, `full` for the figures the issue names."""

    name: str
    http_seconds: int  # one measured wrk run
    warmup_seconds: int  # an unmeasured wrk run before each measured one
    # Baseline and real alternate this many times and each one's median round counts, so one
    # round disturbed by other work on a shared machine does not decide a ratio.
    rounds: int
    profile_seconds: int
    sequential_seconds: int  # the leadrouter client's loop
    sender_seconds: float  # one measured sender run (bench/senders.py)
    drain_leads: int  # the backlog the delivery benchmark drains on PostgreSQL
    embedded_leads: int  # the backlog drained on SQLite and the filesystem broker
    slow_leads: int  # the backlog drained from a stand-in answering in 1 s
    steady_seconds: int  # leads offered at a fixed rate, measured (after a warm-up of warmup_seconds)
    # The delivery engine as benchmarked: worker processes (`celery worker --concurrency`, one
    # pump each) x DELIVERY_IN_FLIGHT calls per pump. BENCH_DELIVERY_PUMPS and
    # BENCH_DELIVERY_IN_FLIGHT override them.
    delivery_pumps: int
    delivery_in_flight: int
    memory_checkpoints: tuple[int, int]
    memory_chunk: int
    small_leads: int
    large_leads: int
    page_requests: int  # sequential requests per dashboard page


MODES = {
    "quick": Mode(
        name="quick",
        http_seconds=6,
        warmup_seconds=2,
        rounds=3,
        profile_seconds=8,
        sequential_seconds=10,
        sender_seconds=4,
        # Half the 20,000 leads: quick mode is for checking a change, full for the record.
        drain_leads=10_000,
        embedded_leads=5_000,
        slow_leads=5_000,
        steady_seconds=30,
        delivery_pumps=2,
        delivery_in_flight=32,
        memory_checkpoints=(1_000, 5_000),
        memory_chunk=1_000,
        small_leads=10_000,
        large_leads=100_000,
        page_requests=30,
    ),
    "full": Mode(
        name="full",
        http_seconds=30,
        warmup_seconds=5,
        rounds=3,
        profile_seconds=20,
        sequential_seconds=30,
        sender_seconds=15,
        drain_leads=20_000,
        embedded_leads=20_000,
        slow_leads=20_000,
        steady_seconds=120,
        delivery_pumps=2,
        delivery_in_flight=32,
        memory_checkpoints=(10_000, 100_000),
        memory_chunk=5_000,
        small_leads=10_000,
        large_leads=1_000_000,
        page_requests=100,
    ),
}


def mode_from_environment(mode: Mode) -> Mode:
    """`mode`, with the delivery engine's shape taken from BENCH_DELIVERY_PUMPS and
    BENCH_DELIVERY_IN_FLIGHT when they are set (to try another shape without editing code)."""
    pumps = os.environ.get("BENCH_DELIVERY_PUMPS")
    in_flight = os.environ.get("BENCH_DELIVERY_IN_FLIGHT")
    return dataclasses.replace(
        mode,
        delivery_pumps=int(pumps) if pumps else mode.delivery_pumps,
        delivery_in_flight=int(in_flight) if in_flight else mode.delivery_in_flight,
    )


def log(message: str) -> None:
    """A progress line on stdout (the reports hold the results)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def gunicorn_settings() -> dict[str, Any]:
    """gunicorn.conf.py's production values, read with none of its environment overrides set."""
    saved = {name: os.environ.pop(name) for name in GUNICORN_VARIABLES if name in os.environ}
    try:
        values = runpy.run_path(str(REPO_DIR / "gunicorn.conf.py"))
    finally:
        os.environ.update(saved)
    return {name: values[name] for name in ("worker_class", "workers", "threads", "timeout")}


@dataclass
class Credentials:
    """The bench partner's secrets. Generated per run, never written to a report."""

    partner_slug: str = ""
    rg_username: str = "bench-partner"
    rg_password: str = field(default_factory=lambda: secrets.token_urlsafe(16), repr=False)
    webhook_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    key_id: str = ""
    key_secret: str = field(default="", repr=False)
    admin_username: str = "bench-admin"
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(16), repr=False)


class Context:
    """One benchmark run: its mode, its servers, the template database and the stacks it started."""

    def __init__(self, mode: Mode, workdir: Path) -> None:
        self.mode = mode
        self.workdir = workdir
        self.gunicorn = gunicorn_settings()
        self.secret_key = secrets.token_urlsafe(50)
        self.encryption_key = Fernet.generate_key().decode()
        self.creds = Credentials()
        self.postgres: Optional[servers.PostgresServer] = None
        self.redis: Optional[servers.RedisServer] = None
        self.stacks: list[servers.PortalStack] = []
        self.processes: list[servers.ManagedProcess] = []  # stand-ins and other helpers
        self.statement_stats = False  # pg_stat_statements loaded (statements counted per database)

    # -- servers

    def start(self) -> None:
        bindir = servers.find_postgres_bindir()
        redis_binary = shutil.which("redis-server")
        if bindir is None or redis_binary is None or shutil.which("wrk") is None:
            raise SystemExit(
                "bench needs PostgreSQL, redis-server and wrk: run `make bench` (it installs them as root)."
            )
        log("starting PostgreSQL and Redis")
        self.postgres = servers.PostgresServer(bindir).start()
        self.statement_stats = self._statement_stats_enable()
        self.redis = servers.RedisServer(redis_binary).start()
        self._template_prepare()

    def _statement_stats_enable(self) -> bool:
        """Load pg_stat_statements (a restart: it must be preloaded) and create the observer role.
        False, with the server as it was, when the extension is not installed."""
        assert self.postgres is not None and self.postgres.process is not None
        with psycopg.connect(self.postgres_url("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN SUPERUSER").format(sql.Identifier(OBSERVER_ROLE)))
            libdir = conn.execute("SELECT setting FROM pg_config WHERE name = 'PKGLIBDIR'").fetchone()
            if libdir is None or not (Path(str(libdir[0])) / "pg_stat_statements.so").exists():
                log("pg_stat_statements is not installed: SQL statements will be counted as transactions only")
                return False
            conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
        # SIGINT is PostgreSQL's fast shutdown; start() finds the data directory and keeps it.
        self.postgres.process.stop(signal.SIGINT, timeout=20)
        self.postgres.start()
        with psycopg.connect(self.postgres_url("postgres"), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        return True

    def postgres_settings(self) -> dict[str, str]:
        names = ("server_version", "shared_buffers", "fsync", "synchronous_commit", "max_connections", "work_mem")
        values = {}
        with psycopg.connect(self.postgres_url("postgres")) as conn:
            for name in names:
                row = conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()
                values[name] = str(row[0]) if row else "?"
        return values

    def postgres_url(self, database: str) -> str:
        assert self.postgres is not None
        return self.postgres.url(database)

    def _template_prepare(self) -> None:
        """Migrate one database and give it the bench partner, key, site, sandbox account and
        staff user; each benchmark then starts from a copy of it (CREATE DATABASE ... TEMPLATE)."""
        assert self.postgres is not None
        log("preparing the template database (migrate, collectstatic, bench partner)")
        url = self.postgres.create_database(TEMPLATE_DATABASE)
        stack = self.stack("template", url, web=False)
        creds = self.creds
        stack.manage("migrate", "--noinput")
        stack.manage("collectstatic", "--noinput", "--verbosity", "0")
        creds.partner_slug = bench_partner_add(stack, creds)
        creds.key_id, creds.key_secret = (
            stack.manage("add_api_key", creds.partner_slug).strip().splitlines()[-1].split(":", 1)
        )
        stack.manage("grant_site", creds.partner_slug, SITE_UUID, "--name", "Bench Realty")
        stack.manage(
            # `=` joins the value: a random password may begin with "-", which argparse takes for an option.
            "sandbox_account",
            f"--username={creds.rg_username}",
            f"--password={creds.rg_password}",
            "--site",
            SITE_UUID,
        )
        stack.env["DJANGO_SUPERUSER_PASSWORD"] = creds.admin_password
        stack.manage("createsuperuser", "--noinput", "--username", creds.admin_username, "--email", "bench@example.com")

    def database(self, name: str) -> str:
        """A new database copied from the template; its DATABASE_URL."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
            raise ValueError(f"Use a plain lower-case database name, not {name!r}")
        with psycopg.connect(self.postgres_url("postgres"), autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(TEMPLATE_DATABASE)
                )
            )
        return self.postgres_url(name)

    def observer_url(self, database_url: str) -> str:
        """`database_url` as the observer role (see OBSERVER_ROLE)."""
        parts = urlsplit(database_url)
        return urlunsplit(parts._replace(netloc=f"{OBSERVER_ROLE}@{parts.hostname}:{parts.port}"))

    def observe(self, database_url: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of a query run as the observer role: kept out of the portal's statement counts."""
        with psycopg.connect(self.observer_url(database_url), autocommit=True) as conn:
            return list(conn.execute(query, params).fetchall())

    def stop(self) -> None:
        for process in self.processes:
            process.stop(timeout=5)
        for stack in self.stacks:
            stack.stop()
        if self.redis is not None:
            self.redis.close()
        if self.postgres is not None:
            self.postgres.stop()

    # -- the portal's processes

    def portal_env(self, *, baseline: bool = False, extra: Optional[Mapping[str, str]] = None) -> dict[str, str]:
        """The environment of a production deployment (secrets from the environment, no sandbox,
        DEBUG off), with gunicorn.conf.py's own worker and thread counts."""
        return {
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "BENCH_BASELINE": "1" if baseline else "0",
            "PORTAL_ENV": "production",
            "SECRET_KEY": self.secret_key,
            "FIELD_ENCRYPTION_KEYS": self.encryption_key,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SANDBOX_ENABLED": "0",
            # The stand-in for RG and the load generator speak plain HTTP on loopback; in
            # production TLS ends in front of the portal.
            "REALGEEKS_ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "0",
            "GUNICORN_WORKERS": str(self.gunicorn["workers"]),
            "GUNICORN_THREADS": str(self.gunicorn["threads"]),
            "LOG_LEVEL": "INFO",
            **(extra or {}),
        }

    def stack(
        self,
        name: str,
        database_url: str,
        *,
        web: bool = True,
        baseline: bool = False,
        env: Optional[Mapping[str, str]] = None,
    ) -> servers.PortalStack:
        """A portal stack on `database_url` with its own Redis database; web started if asked."""
        assert self.redis is not None
        stack = servers.PortalStack(
            database_url=database_url,
            broker_url=self.redis.new_url(),
            root=self.workdir / name,
            options=servers.StackOptions(web=web, worker=False),
            extra_env=self.portal_env(baseline=baseline, extra=env),
        )
        self.stacks.append(stack)
        if web:
            stack.start_web(timeout=90)
        return stack

    def sql(self, database_url: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(database_url) as conn:
            return list(conn.execute(query, params).fetchall())

    def statements(self, stack: servers.PortalStack, *args: str) -> dict[str, Any]:
        """`python -m bench.queries ARGS` in the stack's environment: the SQL of one request."""
        done = subprocess.run(
            [sys.executable, "-m", "bench.queries", *args],
            env=stack.env,
            cwd=REPO_DIR,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"bench.queries {' '.join(args[:2])} failed:\n{done.stderr[-2000:]}")
        return json.loads(done.stdout)

    def execute(self, database_url: str, statement: str) -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(statement)

    def basic_auth(self) -> str:
        """The push API's Authorization header for the bench partner's key."""
        return basic_auth(self.creds.key_id, self.creds.key_secret)


@contextlib.contextmanager
def context(mode: Mode) -> Iterator[Context]:
    """A started Context, stopped on the way out; its logs are deleted only after a clean run."""
    workdir = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    ctx = Context(mode, workdir)
    finished = False
    try:
        ctx.start()
        yield ctx
        finished = True
    finally:
        ctx.stop()
        if finished:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"stopped early; the processes' logs are kept in {workdir}")


def basic_auth(key_id: str, secret: str) -> str:
    """The push API's Authorization header for an API key."""
    return "Basic " + base64.b64encode(f"{key_id}:{secret}".encode()).decode()


def bench_partner_add(stack: Any, creds: Any) -> str:
    """The bench partner, with the bench's RG credentials, in the stack's database; its slug."""
    # `--option=value`: a generated secret may begin with "-", which argparse would read as an option.
    args = ["--name=Bench", f"--rg-username={creds.rg_username}", f"--rg-password={creds.rg_password}"]
    return str(stack.manage("add_partner", *args, f"--webhook-secret={creds.webhook_secret}").split()[-1].strip())
