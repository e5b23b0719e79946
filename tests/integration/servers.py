"""Throwaway real servers for integration tests: PostgreSQL, Redis and the portal's own processes.

Everything here listens on 127.0.0.1 on a free port, keeps its log in a file, waits for
readiness with a bounded timeout, and can be stopped at any point (stopping twice is harmless).
The fixtures in `conftest.py` are the interface tests use; this module is the machinery.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import psycopg
import pytest
from psycopg import sql

REPO_DIR = Path(__file__).resolve().parents[2]
PROCFILE = REPO_DIR / "Procfile"
# The virtualenv running the tests is the one whose gunicorn and celery the stack starts.
VENV_BIN = Path(sys.executable).parent
LOG_TAIL_LINES = 80


class ServerError(RuntimeError):
    """A server did not start or stop in time; the message carries the tail of its log."""


# ----------------------------------------------------------------------------- small helpers


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_for(condition: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.2) -> Any:
    """The first truthy value of `condition()`, polled until `timeout` seconds have passed.

    Raises ServerError naming `what` when time runs out. Exceptions from `condition` count as
    "not yet" (a server that is starting refuses connections), the last one is reported; a
    ServerError from `condition` (the server exited) ends the wait at once.
    """
    deadline = time.monotonic() + timeout
    last_error: Optional[BaseException] = None
    while True:
        try:
            value = condition()
        except ServerError:
            raise  # the server died: waiting longer cannot help
        except Exception as exc:  # "not ready yet", whatever form it takes
            last_error, value = exc, None
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise ServerError(f"Timed out after {timeout:.0f} s waiting for {what}{detail}")
        time.sleep(interval)


def real_servers_required() -> bool:
    """True on CI (`.ci/run` sets REQUIRE_REAL_SERVERS=1): a missing server is then a failure."""
    return os.environ.get("REQUIRE_REAL_SERVERS", "") not in ("", "0", "false", "no")


def unavailable(reason: str) -> None:
    """Skip the test loudly, or fail it when real servers are required."""
    message = f"REAL SERVER UNAVAILABLE: {reason}"
    if real_servers_required():
        pytest.fail(f"{message} (REQUIRE_REAL_SERVERS=1 makes this a failure)", pytrace=False)
    pytest.skip(f"{message} (set up the server, or run .ci/run which installs it)")


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log written)"
    return "\n".join(text.splitlines()[-lines:])


def http_get(url: str, *, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-cased names) and body of a GET; HTTP errors are answers, not raised."""
    request = urllib.request.Request(url, headers={"User-Agent": "portal-integration-tests"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def http_get_json(url: str, *, timeout: float = 10.0) -> tuple[int, Any]:
    status, _, body = http_get(url, timeout=timeout)
    return status, json.loads(body)


# ----------------------------------------------------------------------------- processes


class ManagedProcess:
    """One subprocess in its own process group, its output in a log file.

    Its own group means stopping it also stops its children (gunicorn's and Celery's forked
    workers), the way a machine losing the process would.
    """

    def __init__(
        self,
        name: str,
        args: list[str],
        *,
        log_path: Path,
        env: Optional[Mapping[str, str]] = None,
        cwd: Optional[Path] = None,
        user: Optional[str] = None,
    ) -> None:
        self.name = name
        self.args = args
        self.log_path = log_path
        run_as: dict[str, Any] = {}
        if user is not None:
            entry = pwd.getpwnam(user)
            run_as = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        # The child writes to its own copy of the descriptor; ours is not needed after the start.
        with open(log_path, "ab") as log:
            self.popen = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
                **run_as,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_text(self) -> str:
        """Everything the process has written so far (also after it stopped)."""
        return self.log_path.read_text(errors="replace")

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> Optional[int]:
        """Send `sig` to the group and wait; SIGKILL it if it is still there after `timeout` s."""
        if self.alive():
            self.signal_group(sig)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                self.popen.wait(timeout=10)
        # Children outlive a parent killed by SIGKILL; nothing of the group may be left behind.
        self.signal_group(signal.SIGKILL)
        return self.popen.returncode

    def describe(self) -> str:
        state = "running" if self.alive() else f"exited with {self.popen.returncode}"
        return f"--- {self.name} (pid {self.pid}, {state}), {self.log_path}:\n{tail(self.log_path)}"

    def startup_error(self, problem: str) -> ServerError:
        return ServerError(f"{self.name}: {problem}\n{self.describe()}")


def find_postgres_bindir() -> Optional[Path]:
    """The newest PostgreSQL server binaries: Debian's /usr/lib/postgresql/N/bin, else PATH."""
    candidates = sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin") if (Path(p) / "postgres").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1]
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def postgres_os_user() -> Optional[str]:
    """The unprivileged user PostgreSQL runs as when we are root (it refuses to run as root).

    Debian's package creates `postgres`; without it a system user `portaltest` is created.
    None when we are not root: the server then runs as ourselves.
    """
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "portaltest"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "portaltest"],
        check=True,
        capture_output=True,
    )
    return "portaltest"


# ----------------------------------------------------------------------------- PostgreSQL


class PostgresServer:
    """A private PostgreSQL cluster in a temporary directory; trust authentication on 127.0.0.1."""

    superuser = "postgres"

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.os_user = postgres_os_user()
        self.root = Path(tempfile.mkdtemp(prefix="portal-pg-"))
        self.data_dir = self.root / "data"
        self.port = free_port()
        self.process: Optional[ManagedProcess] = None
        if self.os_user is not None:
            entry = pwd.getpwnam(self.os_user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)

    def _run(self, args: list[str]) -> None:
        log = self.root / "initdb.log"
        process = ManagedProcess("initdb", args, log_path=log, cwd=self.root, user=self.os_user)
        try:
            code = process.popen.wait(timeout=120)
        finally:
            process.stop()
        if code != 0:
            raise process.startup_error(f"exited with {code}")

    def start(self, timeout: float = 60.0) -> PostgresServer:
        if not self.data_dir.exists():
            self._run(
                [
                    str(self.bindir / "initdb"),
                    "--pgdata",
                    str(self.data_dir),
                    "--username",
                    self.superuser,
                    "--auth",
                    "trust",
                    "--encoding",
                    "UTF8",
                    "--locale",
                    "C",
                    "--no-sync",
                ]
            )
        # Durability is worthless for a throwaway cluster; these make it several times faster.
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": "",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
            "shared_buffers": "64MB",
        }
        args = [str(self.bindir / "postgres"), "-D", str(self.data_dir)]
        for name, value in settings.items():
            args += ["-c", f"{name}={value}"]
        self.process = ManagedProcess(
            "postgres", args, log_path=self.root / "postgres.log", cwd=self.root, user=self.os_user
        )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        def ready() -> bool:
            assert self.process is not None
            if not self.process.alive():
                raise self.process.startup_error("exited during start-up")
            with psycopg.connect(self.url("postgres"), connect_timeout=2):
                return True

        try:
            wait_for(ready, timeout=timeout, what=f"PostgreSQL on port {self.port}")
        except ServerError as error:
            assert self.process is not None
            raise self.process.startup_error(str(error)) from None

    def url(self, database: str) -> str:
        return f"postgres://{self.superuser}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new, empty database; its DATABASE_URL. The name must be new in this cluster."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
            raise ValueError(f"Use a plain lower-case database name, not {name!r}")
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def stop(self) -> None:
        if self.process is not None:
            # SIGINT is PostgreSQL's "fast" shutdown: disconnect clients, then exit.
            self.process.stop(signal.SIGINT, timeout=20)
        shutil.rmtree(self.root, ignore_errors=True)


# ----------------------------------------------------------------------------- Redis


class RedisServer:
    """redis-server on a fixed free port, without persistence; it can be stopped and started again."""

    databases = 256

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.root = Path(tempfile.mkdtemp(prefix="portal-redis-"))
        self.port = free_port()
        self.process: Optional[ManagedProcess] = None
        self._next_database = 1

    @property
    def url(self) -> str:
        """The CELERY_BROKER_URL for this server (database 0)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def new_url(self) -> str:
        """A CELERY_BROKER_URL on a database no other caller got, so queues are never shared."""
        if self._next_database >= self.databases:
            raise ServerError(f"All {self.databases} Redis databases are taken; raise RedisServer.databases")
        url = f"redis://127.0.0.1:{self.port}/{self._next_database}"
        self._next_database += 1
        return url

    def start(self, timeout: float = 30.0) -> RedisServer:
        """Start (again) on the same port; waits until it answers PING."""
        if self.process is not None and self.process.alive():
            return self
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.root),
            "--databases",
            str(self.databases),
        ]
        self.process = ManagedProcess("redis", args, log_path=self.root / "redis.log", cwd=self.root)
        try:
            wait_for(self.ping, timeout=timeout, what=f"Redis on port {self.port}")
        except ServerError as error:
            raise self.process.startup_error(str(error)) from None
        return self

    def ping(self) -> bool:
        assert self.process is not None
        if not self.process.alive():
            raise self.process.startup_error("exited")
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    def stop(self) -> None:
        """Stop the server now; clients see refused connections until `start()`."""
        if self.process is not None:
            self.process.stop(signal.SIGTERM, timeout=10)
            wait_for(lambda: not port_is_open(self.port), timeout=10, what=f"Redis to release port {self.port}")

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


# ----------------------------------------------------------------------------- the portal


def procfile_commands(path: Path = PROCFILE) -> dict[str, str]:
    """The Procfile's process types and command lines, as honcho reads them."""
    commands: dict[str, str] = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_-]+):\s*(.+)$", line.strip())
        if match:
            commands[match.group(1)] = match.group(2)
    return commands


@dataclass
class StackOptions:
    web: bool = True
    worker: bool = True
    beat: bool = False
    concurrency: int = 2
    pool: str = "prefork"
    heartbeat_seconds: float = 1.0


class PortalStack:
    """The portal's processes for one database and broker: web (gunicorn), worker, beat.

    Each is started from the Procfile's command line in its own process group, with the
    environment in `env`, logging to a file under `root`.
    """

    def __init__(
        self,
        *,
        database_url: str,
        broker_url: str,
        root: Path,
        options: StackOptions,
        extra_env: Optional[Mapping[str, str]] = None,
    ) -> None:
        self.database_url = database_url
        self.broker_url = broker_url
        self.root = root
        self.options = options
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.var_dir = root / "var"
        self.var_dir.mkdir(parents=True, exist_ok=True)
        self.env: dict[str, str] = {
            **os.environ,
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "DJANGO_SETTINGS_MODULE": "partner_portal.settings",
            "PYTHONUNBUFFERED": "1",
            "PORTAL_ENV": "development",
            "PORTAL_VAR_DIR": str(self.var_dir),
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": broker_url,
            "SANDBOX_ENABLED": "1",
            "PORTAL_BASE_URL": self.base_url,
            "REALGEEKS_API_URL": f"{self.base_url}/sandbox/rest",
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            # One web process is plenty for tests on a two-core machine; threads serve the rest.
            "GUNICORN_WORKERS": "1",
            "CELERY_CONCURRENCY": str(options.concurrency),
            "WORKER_HEARTBEAT_SECONDS": str(options.heartbeat_seconds),
            "LOG_LEVEL": "INFO",
        }
        self.env.pop("REQUIRE_REAL_SERVERS", None)
        self.env.update(extra_env or {})
        self.processes: dict[str, ManagedProcess] = {}
        self.demo_output = ""
        self._worker_count = 0
        self._commands = procfile_commands()

    # -- management commands

    def manage(self, *args: str, timeout: float = 180.0) -> str:
        """Run `manage.py ARGS` in the stack's environment; its stdout. Raises on a non-zero exit."""
        result = subprocess.run(
            [sys.executable, str(REPO_DIR / "manage.py"), *args],
            env=self.env,
            cwd=REPO_DIR,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        with open(self.root / "manage.log", "a") as log:
            log.write(f"$ manage.py {shlex.join(args)}  (exit {result.returncode})\n{result.stdout}{result.stderr}\n")
        if result.returncode != 0:
            raise ServerError(
                f"manage.py {shlex.join(args)} exited with {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result.stdout

    def prepare(self, *, collectstatic: bool) -> None:
        """Migrate, collect static files when asked, and create the demo (its output kept)."""
        self.manage("migrate", "--noinput")
        if collectstatic:
            self.manage("collectstatic", "--noinput", "--verbosity", "0")
        self.demo_output = self.manage("demo_setup")

    # -- processes

    def _spawn(self, name: str, procfile_type: str, extra_args: Sequence[str] = ()) -> ManagedProcess:
        command = self._commands[procfile_type]
        if extra_args:
            command = f"{command} {shlex.join(extra_args)}"
        process = ManagedProcess(
            name,
            ["/bin/sh", "-c", f"exec {command}"],
            log_path=self.root / f"{name}.log",
            env=self.env,
            cwd=REPO_DIR,
        )
        self.processes[name] = process
        return process

    def start_web(self, timeout: float = 60.0) -> ManagedProcess:
        process = self._spawn("web", "web")

        def answering() -> bool:
            if not process.alive():
                raise process.startup_error("exited during start-up")
            status, _, _ = http_get(f"{self.base_url}/login/", timeout=5)
            return status == 200

        self._wait(process, answering, timeout, f"gunicorn to answer on {self.base_url}")
        return process

    def start_worker(
        self, *, concurrency: Optional[int] = None, pool: Optional[str] = None, timeout: float = 60.0
    ) -> ManagedProcess:
        """Start another worker (named worker1, worker2, ...); waits for Celery's "ready" line."""
        self._worker_count += 1
        name = f"worker{self._worker_count}"
        args = ["--hostname", f"{name}@%h", "--pool", pool or self.options.pool]
        args += ["--concurrency", str(concurrency or self.options.concurrency)]
        process = self._spawn(name, "worker", args)
        self._wait_for_log(process, " ready.", timeout)
        return process

    def start_beat(self, timeout: float = 60.0) -> ManagedProcess:
        process = self._spawn("beat", "beat")
        self._wait_for_log(process, "beat: Starting", timeout)
        return process

    def workers(self) -> list[ManagedProcess]:
        return [p for name, p in self.processes.items() if name.startswith("worker") and p.alive()]

    def kill_worker(self, sig: int = signal.SIGKILL, name: Optional[str] = None) -> ManagedProcess:
        """Send `sig` to a running worker's whole process group (the newest, or `name`).

        SIGKILL is a crash: tasks in flight are lost to that worker. SIGTERM is Celery's warm
        shutdown. Waits for the process to be gone.
        """
        process = self.processes[name] if name else self.workers()[-1]
        process.stop(sig, timeout=30)
        return process

    def _wait(self, process: ManagedProcess, condition: Callable[[], Any], timeout: float, what: str) -> None:
        try:
            wait_for(condition, timeout=timeout, what=what, interval=0.3)
        except ServerError as error:
            raise process.startup_error(str(error)) from None

    def _wait_for_log(self, process: ManagedProcess, marker: str, timeout: float) -> None:
        def logged() -> bool:
            if not process.alive():
                raise process.startup_error("exited during start-up")
            return marker in process.log_text()

        self._wait(process, logged, timeout, f"{process.name} to log {marker.strip()!r}")

    def start(self) -> PortalStack:
        if self.options.web:
            self.start_web()
        if self.options.worker:
            self.start_worker()
        if self.options.beat:
            self.start_beat()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every process: SIGTERM, then SIGKILL for any still there after `timeout` s.

        A Celery worker's warm shutdown takes several seconds even when idle; at teardown
        nothing depends on it finishing, so the bound is short.
        """
        running = [process for process in self.processes.values() if process.alive()]
        for process in running:
            process.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            process.stop(signal.SIGTERM, timeout=max(deadline - time.monotonic(), 0.1))

    # -- looking inside

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of a query on the stack's PostgreSQL database (read what the processes wrote)."""
        with psycopg.connect(self.database_url) as conn:
            return list(conn.execute(query, params).fetchall())

    def sandbox_requests(self, lead_id: str) -> list[dict[str, Any]]:
        """What the sandbox received for a lead, oldest first, read from its request log's table
        (its pages are a signed-in staff member's)."""
        columns = ("method", "path", "status", "router_destinations")
        rows = self.sql(
            f"SELECT {', '.join(columns)} FROM sandbox_sandboxrequest WHERE lead_id = %s ORDER BY id",
            (str(uuid.UUID(lead_id)),),
        )
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def sandbox_lead(self, site: str, lead_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The lead's data as the sandbox holds it, and its activities in arrival order."""
        ((pk, data),) = self.sql(
            "SELECT id, data FROM sandbox_sandboxlead WHERE site_uuid = %s AND lead_id = %s", (site, lead_id)
        )
        activities = self.sql("SELECT data FROM sandbox_sandboxactivity WHERE lead_id = %s ORDER BY id", (pk,))
        return data, [activity for (activity,) in activities]

    def get(self, path: str, *, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
        return http_get(f"{self.base_url}{path}", timeout=timeout)

    def describe(self) -> str:
        """The tail of every process log and of the management commands run (for failure reports)."""
        parts = [p.describe() for p in self.processes.values()]
        parts.append(f"--- manage.py, {self.root / 'manage.log'}:\n{tail(self.root / 'manage.log')}")
        return "\n".join(parts)
